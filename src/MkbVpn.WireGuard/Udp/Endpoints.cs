using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace MkbVpn.WireGuard.Udp;

/// <summary>Reads raw socket addresses (sockaddr_in / sockaddr_in6) without allocating.</summary>
internal static class Endpoints
{
    /// <summary>sizeof(sockaddr_in6).</summary>
    public const int MaxSocketAddressSize = 28;

    /// <summary>Largest output of <see cref="WriteSourceBytes"/>: an IPv6 address and a port.</summary>
    public const int MaxSourceBytes = 18;

    /// <summary>
    /// Writes the bytes a cookie is bound to (whitepaper 5.4.7: source IP address then UDP port, big endian;
    /// IPv4-mapped IPv6 addresses as IPv4, as <c>MacLayout.SourceBytes</c> does). Returns the count, 0 if unknown.
    /// </summary>
    public static int WriteSourceBytes(SocketAddress address, Span<byte> destination)
    {
        int n = WriteAddressBytes(address, destination);
        if (n == 0)
            return 0;
        Span<byte> raw = address.Buffer.Span;
        raw.Slice(2, 2).CopyTo(destination[n..]); // sin_port / sin6_port, already network order
        return n + 2;
    }

    /// <summary>Writes the IP address (4 or 16 bytes; mapped IPv4 as 4). Returns the count, 0 if unknown.</summary>
    public static int WriteAddressBytes(SocketAddress address, Span<byte> destination)
    {
        Span<byte> raw = address.Buffer.Span[..address.Size];
        if (address.Family == AddressFamily.InterNetwork && raw.Length >= 8)
        {
            raw.Slice(4, 4).CopyTo(destination);
            return 4;
        }
        if (address.Family == AddressFamily.InterNetworkV6 && raw.Length >= 24)
        {
            ReadOnlySpan<byte> ip = raw.Slice(8, 16);
            if (IsV4Mapped(ip))
            {
                ip[12..].CopyTo(destination);
                return 4;
            }
            ip.CopyTo(destination);
            return 16;
        }
        return 0;
    }

    private static bool IsV4Mapped(ReadOnlySpan<byte> ip) =>
        BinaryPrimitives.ReadUInt64LittleEndian(ip) == 0 && BinaryPrimitives.ReadUInt32BigEndian(ip[8..]) == 0xffff;

    /// <summary>The endpoint as wg shows it: IPv4-mapped addresses as plain IPv4.</summary>
    public static IPEndPoint? ToEndPoint(SocketAddress address)
    {
        try
        {
            var template = address.Family == AddressFamily.InterNetwork ? new IPEndPoint(IPAddress.Any, 0) : new IPEndPoint(IPAddress.IPv6Any, 0);
            var ep = (IPEndPoint)template.Create(address);
            return ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Copies a received address (whose buffer is reused for the next datagram).</summary>
    public static SocketAddress Copy(SocketAddress address)
    {
        var copy = new SocketAddress(address.Family, address.Size);
        address.Buffer.Span[..address.Size].CopyTo(copy.Buffer.Span);
        return copy;
    }
}
