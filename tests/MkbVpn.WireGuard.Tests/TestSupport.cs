using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Tests;

/// <summary>A random source that hands out queued byte strings, then a counter pattern. Deterministic.</summary>
public sealed class ScriptedRandom : RandomNumberGenerator
{
    private readonly Queue<byte[]> _queued = new();
    private byte _next = 1;

    public ScriptedRandom(params byte[][] queued)
    {
        foreach (var q in queued)
            _queued.Enqueue(q);
    }

    public void Enqueue(byte[] bytes) => _queued.Enqueue(bytes);

    public override void GetBytes(byte[] data) => GetBytes(data.AsSpan());

    public override void GetBytes(Span<byte> data)
    {
        if (_queued.Count > 0)
        {
            var q = _queued.Dequeue();
            if (q.Length != data.Length)
                throw new InvalidOperationException($"scripted {q.Length} bytes, asked for {data.Length}");
            q.CopyTo(data);
            return;
        }
        for (int i = 0; i < data.Length; i++)
            data[i] = _next++;
    }
}

/// <summary>A TimeProvider whose clocks move only when the test says so.</summary>
public sealed class ManualTime : TimeProvider
{
    private DateTimeOffset _utc = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _ticks = TimeSpan.FromHours(1).Ticks;

    public override DateTimeOffset GetUtcNow() => _utc;
    public override long GetTimestamp() => _ticks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by)
    {
        _utc += by;
        _ticks += by.Ticks;
    }
}
