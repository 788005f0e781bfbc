using System.Buffers.Binary;

namespace MkbVpn.WireGuard.Tun;

/// <summary>
/// TUN offloads (IFF_VNET_HDR): the kernel hands us TCP "super packets" of up to 64 KiB with a
/// virtio_net_hdr in front, and packets whose checksum it left for us to finish. This file turns them into
/// ordinary, fully checksummed IP packets (after wireguard-go's tun/offload_linux.go). Pure functions on spans.
/// </summary>
internal static class Offload
{
    /// <summary>sizeof(struct virtio_net_hdr).</summary>
    public const int VirtioHeaderSize = 10;

    public const byte FlagNeedsChecksum = 1;
    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    public const byte GsoEcn = 0x80;

    /// <summary>The parsed virtio_net_hdr.</summary>
    public readonly record struct VirtioHeader(byte Flags, byte GsoType, int HeaderLength, int GsoSize, int ChecksumStart, int ChecksumOffset)
    {
        public static VirtioHeader Read(ReadOnlySpan<byte> h) => new(h[0], h[1],
            BinaryPrimitives.ReadUInt16LittleEndian(h[2..]), BinaryPrimitives.ReadUInt16LittleEndian(h[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(h[6..]), BinaryPrimitives.ReadUInt16LittleEndian(h[8..]));
    }

    /// <summary>
    /// Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at start + offset holds the
    /// pseudo-header sum; the checksum covers everything from start. Returns false if the offsets are out of range.
    /// </summary>
    public static bool FinishChecksum(Span<byte> packet, int start, int offset)
    {
        if (start < 0 || offset < 0 || start + offset + 2 > packet.Length)
            return false;
        ushort sum = Fold(Sum(packet[start..], 0));
        BinaryPrimitives.WriteUInt16BigEndian(packet[(start + offset)..], (ushort)~sum);
        return true;
    }

    /// <summary>
    /// Number of segments a TCP super packet of <paramref name="packetLength"/> bytes with <paramref name="headersLength"/>
    /// bytes of IP + TCP header splits into at <paramref name="gsoSize"/> payload bytes each.
    /// </summary>
    public static int SegmentCount(int packetLength, int headersLength, int gsoSize) =>
        gsoSize <= 0 || packetLength <= headersLength ? 1 : (packetLength - headersLength + gsoSize - 1) / gsoSize;

    /// <summary>The length of the IP + TCP headers of a TCP packet, or -1 if it is not a well-formed IPv4/IPv6 TCP packet.</summary>
    public static int TcpHeadersLength(ReadOnlySpan<byte> packet, out bool isV6)
    {
        isV6 = false;
        if (packet.Length < 20)
            return -1;
        int ipHeader;
        if (packet[0] >> 4 == 4)
        {
            ipHeader = (packet[0] & 0xf) * 4;
            if (ipHeader < 20 || packet[9] != 6)
                return -1;
        }
        else if (packet[0] >> 4 == 6)
        {
            isV6 = true;
            ipHeader = 40;
            if (packet.Length < 40 || packet[6] != 6)
                return -1; // extension headers: not produced by the kernel's TSO for us
        }
        else
        {
            return -1;
        }
        if (packet.Length < ipHeader + 20)
            return -1;
        int tcpHeader = (packet[ipHeader + 12] >> 4) * 4;
        if (tcpHeader < 20 || packet.Length < ipHeader + tcpHeader)
            return -1;
        return ipHeader + tcpHeader;
    }

    /// <summary>
    /// Writes segment <paramref name="index"/> of the TCP super packet into <paramref name="destination"/>: the
    /// headers with length, IPv4 id and header checksum, sequence number, flags (FIN / PSH only on the last,
    /// CWR only on the first) and TCP checksum fixed, then its share of the payload. Returns the length.
    /// </summary>
    public static int WriteTcpSegment(ReadOnlySpan<byte> packet, int headersLength, bool isV6, int gsoSize, int index, Span<byte> destination)
    {
        int payloadTotal = packet.Length - headersLength;
        int payloadStart = index * gsoSize;
        int payloadLength = Math.Min(gsoSize, payloadTotal - payloadStart);
        bool last = payloadStart + payloadLength >= payloadTotal;
        int length = headersLength + payloadLength;
        packet[..headersLength].CopyTo(destination);
        packet.Slice(headersLength + payloadStart, payloadLength).CopyTo(destination[headersLength..]);
        Span<byte> segment = destination[..length];

        int ipHeader;
        ulong pseudo;
        if (isV6)
        {
            ipHeader = 40;
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)(length - 40));
            pseudo = Sum(segment.Slice(8, 32), 0) + (ulong)(length - 40) + 6;
        }
        else
        {
            ipHeader = (segment[0] & 0xf) * 4;
            BinaryPrimitives.WriteUInt16BigEndian(segment[2..], (ushort)length);
            ushort id = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], unchecked((ushort)(id + index)));
            segment[10] = segment[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(segment[10..], (ushort)~Fold(Sum(segment[..ipHeader], 0)));
            pseudo = Sum(segment.Slice(12, 8), 0) + (ulong)(length - ipHeader) + 6;
        }

        Span<byte> tcp = segment[ipHeader..];
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], unchecked(seq + (uint)payloadStart));
        if (!last)
            tcp[13] &= unchecked((byte)~0x09); // FIN, PSH
        if (index > 0)
            tcp[13] &= unchecked((byte)~0x80); // CWR
        tcp[16] = tcp[17] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)~Fold(Sum(tcp, pseudo)));
        return length;
    }

    /// <summary>Ones' complement sum (RFC 1071) of big-endian 16-bit words, accumulated in 64 bits.</summary>
    public static ulong Sum(ReadOnlySpan<byte> data, ulong initial)
    {
        ulong sum = initial;
        int i = 0;
        for (; i + 4 <= data.Length; i += 4)
            sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
        for (; i + 2 <= data.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length)
            sum += (ulong)data[i] << 8;
        return sum;
    }

    /// <summary>Folds a 64-bit ones' complement sum to 16 bits.</summary>
    public static ushort Fold(ulong sum)
    {
        while (sum > 0xffff)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)sum;
    }
}
