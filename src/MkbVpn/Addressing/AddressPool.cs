using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace MkbVpn.Addressing;

/// <summary>
/// Hands out host addresses of one subnet (IPv4 or IPv6, any prefix length).
/// The first host address belongs to the server; for IPv4 the network and broadcast
/// addresses are never handed out. Addresses that were used before (released) are only
/// reused when no never-used address is left, oldest release first, so a revoked device
/// does not inherit someone's traffic by accident.
/// </summary>
public sealed class AddressPool
{
    private readonly UInt128 _first;   // first assignable client address
    private readonly UInt128 _last;    // last assignable client address
    private readonly bool _v4;

    public AddressPool(IPNetwork subnet)
    {
        Subnet = subnet;
        _v4 = subnet.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
        int bits = _v4 ? 32 : 128;
        UInt128 network = ToNumber(subnet.BaseAddress);
        UInt128 size = subnet.PrefixLength == 0 ? (_v4 ? uint.MaxValue : UInt128.MaxValue) : (UInt128.One << (bits - subnet.PrefixLength)) - 1;
        UInt128 top = network + size;
        ServerAddress = FromNumber(network + 1, _v4);
        _first = network + 2;
        _last = _v4 ? top - 1 : top;   // IPv4: skip broadcast
        if (_first > _last)
            throw new UserInputException($"subnet {subnet} is too small: it needs room for the server and at least one client");
    }

    public IPNetwork Subnet { get; }

    /// <summary>Throws a one-line error when the subnet cannot hold the server and a client.</summary>
    public static void Validate(IPNetwork subnet) => _ = new AddressPool(subnet);

    public IPAddress ServerAddress { get; }

    /// <summary>How many client addresses the subnet holds (capped for huge IPv6 subnets).</summary>
    public UInt128 Capacity => _last - _first + 1;

    public bool Contains(IPAddress address) => Subnet.Contains(address);

    /// <summary>True when <paramref name="address"/> may be given to a client.</summary>
    public bool IsAssignable(IPAddress address)
    {
        if (!Subnet.Contains(address))
            return false;
        UInt128 n = ToNumber(address);
        return n >= _first && n <= _last;
    }

    /// <summary>
    /// The next address to give out, or null when the pool is full.
    /// <paramref name="inUse"/>: addresses held by clients. <paramref name="released"/>: addresses
    /// used before, oldest release first.
    /// </summary>
    public IPAddress? Next(ISet<UInt128> inUse, IReadOnlyCollection<UInt128> released, ISet<UInt128> releasedSet) =>
        Next(inUse, released, releasedSet, []);

    /// <summary>
    /// As <see cref="Next(ISet{UInt128}, IReadOnlyCollection{UInt128}, ISet{UInt128})"/>, never handing
    /// out an address inside <paramref name="skip"/> (other gateways' slices of this subnet).
    /// </summary>
    public IPAddress? Next(ISet<UInt128> inUse, IReadOnlyCollection<UInt128> released, ISet<UInt128> releasedSet, IReadOnlyList<IPNetwork> skip)
    {
        var ranges = skip.Select(Range).ToList();
        // Never-used addresses first, lowest first. The loop is bounded by the number of
        // addresses taken (in use + released) and skipped ranges, so it is fast even for huge IPv6 subnets.
        UInt128 n = _first;
        while (n <= _last)
        {
            int hit = ranges.FindIndex(r => n >= r.Low && n <= r.High);
            if (hit >= 0)
            {
                if (ranges[hit].High >= _last)
                    break;
                n = ranges[hit].High + 1;
                continue;
            }
            if (!inUse.Contains(n) && !releasedSet.Contains(n))
                return FromNumber(n, _v4);
            if (n == _last)
                break;
            n++;
        }
        foreach (UInt128 r in released)
        {
            if (!inUse.Contains(r) && r >= _first && r <= _last && !ranges.Any(x => r >= x.Low && r <= x.High))
                return FromNumber(r, _v4);
        }
        return null;
    }

    /// <summary>The first and last address of a network as numbers.</summary>
    public static (UInt128 Low, UInt128 High) Range(IPNetwork net)
    {
        int bits = net.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        UInt128 low = ToNumber(net.BaseAddress);
        UInt128 size = net.PrefixLength == 0 ? (bits == 32 ? uint.MaxValue : UInt128.MaxValue) : (UInt128.One << (bits - net.PrefixLength)) - 1;
        return (low, low + size);
    }

    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int written);
        UInt128 value = UInt128.Zero;
        for (int i = 0; i < written; i++)
            value = (value << 8) | bytes[i];
        return value;
    }

    public static IPAddress FromNumber(UInt128 value, bool v4)
    {
        int len = v4 ? 4 : 16;
        Span<byte> bytes = stackalloc byte[len];
        for (int i = len - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xFF);
            value >>= 8;
        }
        return new IPAddress(bytes);
    }
}
