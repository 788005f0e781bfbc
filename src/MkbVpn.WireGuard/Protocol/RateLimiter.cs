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
/// Whether the device is "under load" (whitepaper 5.3), as wireguard-go decides it: its queue of handshake
/// messages waiting for a worker holds <see cref="Constants.UnderLoadQueueLength"/> or more (the device cannot keep
/// up with the Diffie-Hellman work), and for a second after that was last seen, so an attacker cannot toggle it
/// cheaply. Junk that fails mac1 costs a worker one MAC and never builds a backlog; a flood the device can afford
/// costs legitimate peers no cookie round trip. Time and the backlog are passed in. Not thread-safe.
/// </summary>
internal sealed class HandshakeLoad
{
    private static readonly TimeSpan StickyFor = TimeSpan.FromSeconds(1);
    private TimeSpan? _lastUnderLoad;

    /// <summary>Notes the current backlog and returns whether the device is under load now.</summary>
    public bool Observe(int backlog, TimeSpan now)
    {
        if (backlog >= Constants.UnderLoadQueueLength)
            _lastUnderLoad = now;
        return _lastUnderLoad is { } last && now - last < StickyFor;
    }
}
