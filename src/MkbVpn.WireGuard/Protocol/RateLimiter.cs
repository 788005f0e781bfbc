using System.Buffers.Binary;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// Handshake rate limiting once the device is under load (whitepaper 5.3 leaves the policy to the
/// implementation; this follows wireguard-go's ratelimiter.go): a token bucket per source address,
/// <see cref="Constants.HandshakesPerSecondPerSource"/> per second with a burst of
/// <see cref="Constants.HandshakeBurstPerSource"/>. IPv6 sources are grouped by /64, since one host
/// usually owns a whole /64. Apply it only to handshakes whose mac2 (cookie) is valid: a cookie proves
/// the source address, so the limit cannot be spent by a spoofer. Time is passed in. Not thread-safe.
/// </summary>
internal sealed class HandshakeRateLimiter
{
    private static readonly TimeSpan TokenCost = TimeSpan.FromTicks(TimeSpan.TicksPerSecond / Constants.HandshakesPerSecondPerSource);
    private static readonly TimeSpan MaxTokens = TokenCost * Constants.HandshakeBurstPerSource;
    private static readonly TimeSpan IdleAfter = TimeSpan.FromSeconds(1);

    private readonly Dictionary<UInt128, Bucket> _buckets = new();
    private TimeSpan _lastSweep;

    private sealed class Bucket
    {
        public TimeSpan Tokens;
        public TimeSpan LastSeen;
    }

    public int TrackedSources => _buckets.Count;

    /// <summary>True if a handshake from <paramref name="address"/> (4 or 16 bytes) may be processed now.</summary>
    public bool Allow(ReadOnlySpan<byte> address, TimeSpan now)
    {
        if (address.Length is not (4 or 16))
            return false;
        if (now - _lastSweep > IdleAfter)
            Sweep(now);

        UInt128 key = address.Length == 4
            ? new UInt128(1, BinaryPrimitives.ReadUInt32BigEndian(address))
            : new UInt128(2, BinaryPrimitives.ReadUInt64BigEndian(address)); // the /64
        if (!_buckets.TryGetValue(key, out Bucket? bucket))
        {
            _buckets[key] = new Bucket { Tokens = MaxTokens - TokenCost, LastSeen = now };
            return true;
        }

        TimeSpan tokens = bucket.Tokens + (now - bucket.LastSeen);
        if (tokens > MaxTokens)
            tokens = MaxTokens;
        bucket.LastSeen = now;
        if (tokens < TokenCost)
        {
            bucket.Tokens = tokens;
            return false;
        }
        bucket.Tokens = tokens - TokenCost;
        return true;
    }

    /// <summary>Forgets sources idle for more than a second (their buckets would be full again anyway).</summary>
    public void Sweep(TimeSpan now)
    {
        _lastSweep = now;
        foreach (var (key, bucket) in _buckets)
            if (now - bucket.LastSeen > IdleAfter)
                _buckets.Remove(key);
    }
}

/// <summary>
/// Whether the device is "under load" (whitepaper 5.3): more than <see cref="Constants.UnderLoadHandshakesPerSecond"/>
/// handshake messages in the last second. Stays under load for a second after the rate drops, as
/// wireguard-go does, so an attacker cannot toggle it cheaply. Time is passed in. Not thread-safe.
/// </summary>
internal sealed class HandshakeLoad
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);
    private TimeSpan _windowStart;
    private int _count;
    private TimeSpan? _lastUnderLoad;

    /// <summary>Counts one handshake message and returns whether the device is now under load.</summary>
    public bool Record(TimeSpan now)
    {
        if (now - _windowStart >= Window)
        {
            _windowStart = now;
            _count = 0;
        }
        _count++;
        return IsUnderLoad(now);
    }

    public bool IsUnderLoad(TimeSpan now)
    {
        if (now - _windowStart < Window && _count > Constants.UnderLoadHandshakesPerSecond)
            _lastUnderLoad = now;
        return _lastUnderLoad is { } last && now - last < Window;
    }
}
