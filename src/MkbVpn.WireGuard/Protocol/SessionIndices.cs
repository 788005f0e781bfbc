using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// The live session indices of one interface (whitepaper 5.4.2: the sender index is a random 32-bit value;
/// wireguard-go's indextable.go). Each handshake takes a fresh random index, checked against every index
/// still in use by a pending handshake or a keypair of any peer, so sessions of one peer cannot be linked by
/// their indices and never collide. The owner (for the device: its peer) is what a receiver index routes to.
/// Thread-safe: the device's receive path looks indices up while handshakes allocate and release them.
/// </summary>
internal sealed class SessionIndexTable
{
    private readonly ConcurrentDictionary<uint, object> _live = new();
    private readonly RandomNumberGenerator _random;
    private readonly Lock _randomSync = new();

    public SessionIndexTable(RandomNumberGenerator random)
    {
        ArgumentNullException.ThrowIfNull(random);
        _random = random;
    }

    /// <summary>Indices currently in use.</summary>
    public int Count => _live.Count;

    /// <summary>A random index that no live session uses, now owned by <paramref name="owner"/>.</summary>
    public uint Allocate(object owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        Span<byte> b = stackalloc byte[4];
        while (true)
        {
            lock (_randomSync)
                _random.GetBytes(b);
            uint candidate = BinaryPrimitives.ReadUInt32LittleEndian(b);
            if (_live.TryAdd(candidate, owner))
                return candidate;
        }
    }

    /// <summary>Frees <paramref name="index"/> if <paramref name="owner"/> still holds it.</summary>
    public void Release(uint index, object owner) => _live.TryRemove(KeyValuePair.Create(index, owner));

    /// <summary>The owner of a live index, or null.</summary>
    public object? Lookup(uint index) => _live.TryGetValue(index, out object? owner) ? owner : null;

    public bool IsLive(uint index) => _live.ContainsKey(index);
}
