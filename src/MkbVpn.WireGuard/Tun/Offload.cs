using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
        // The payload is summed as it is copied; the headers (an even length: 4-byte multiples) are summed below.
        ulong payloadSum = CopyAndSum(packet.Slice(headersLength + payloadStart, payloadLength), destination[headersLength..], 0);
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
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)~Fold(Sum(tcp[..(headersLength - ipHeader)], pseudo + payloadSum)));
        return length;
    }

    /// <summary>
    /// Whether <paramref name="next"/> continues the TCP segment <paramref name="previous"/> for GRO: same flow,
    /// same headers but for length / id / checksums / sequence, IPv4 without options or fragmentation, only ACK
    /// (and PSH on the segment that ends a run) set, the sequence number right after the previous payload, and
    /// a payload no larger than the first one's (<paramref name="gsoSize"/>). <paramref name="headersLength"/> is the
    /// run's header length (the same for every member).
    /// </summary>
    public static bool CanCoalesce(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> next, int headersLength, bool isV6, int gsoSize)
    {
        if (next.Length <= headersLength || next.Length - headersLength > gsoSize || previous.Length - headersLength != gsoSize)
            return false; // only the last member may be shorter; a run ends after it
        if (TcpHeadersLength(next, out bool nextIsV6) != headersLength || nextIsV6 != isV6)
            return false;
        if (!isV6 && ((previous[0] & 0xf) != 5 || (BinaryPrimitives.ReadUInt16BigEndian(previous[6..]) & 0x3fff) != 0))
            return false;
        int ip = isV6 ? 40 : 20;
        if (isV6)
        {
            // version, traffic class, flow label, next header, hop limit; addresses
            if (!previous[..4].SequenceEqual(next[..4]) || previous[6] != next[6] || previous[7] != next[7] ||
                !previous.Slice(8, 32).SequenceEqual(next.Slice(8, 32)))
                return false;
        }
        else
        {
            if ((next[0] & 0xf) != 5 || next[1] != previous[1] || next[8] != previous[8] ||
                (BinaryPrimitives.ReadUInt16BigEndian(next[6..]) & 0x3fff) != 0 || // MF or a fragment offset
                !previous.Slice(12, 8).SequenceEqual(next.Slice(12, 8)))
                return false;
        }
        ReadOnlySpan<byte> a = previous[ip..];
        ReadOnlySpan<byte> b = next[ip..];
        if ((a[13] & ~0x10) != 0 || (b[13] & ~0x18) != 0 || (b[13] & 0x10) == 0)
            return false; // the previous one ACK only; the next ACK, maybe PSH
        if (!a[..4].SequenceEqual(b[..4]) || !a.Slice(8, 4).SequenceEqual(b.Slice(8, 4)) || !a.Slice(14, 2).SequenceEqual(b.Slice(14, 2)))
            return false; // ports, acknowledgement number, window
        if (!a[20..(headersLength - ip)].SequenceEqual(b[20..(headersLength - ip)]))
            return false; // options (timestamps included) must match
        uint expected = unchecked(BinaryPrimitives.ReadUInt32BigEndian(a[4..]) + (uint)(previous.Length - headersLength));
        return BinaryPrimitives.ReadUInt32BigEndian(b[4..]) == expected;
    }

    /// <summary>
    /// Turns the headers of the first segment of a run (copied into <paramref name="headers"/>) into those of the
    /// coalesced packet of <paramref name="totalLength"/> bytes, and writes the virtio header asking the kernel
    /// for GSO at <paramref name="gsoSize"/> with the TCP checksum left partial (the pseudo-header sum in the field).
    /// </summary>
    public static void WriteCoalescedHeaders(Span<byte> virtio, Span<byte> headers, bool isV6, int totalLength, int gsoSize, bool push)
    {
        int ip = isV6 ? 40 : 20;
        ulong pseudo;
        if (isV6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(headers[4..], (ushort)(totalLength - 40));
            pseudo = Sum(headers.Slice(8, 32), 0) + (ulong)(totalLength - 40) + 6;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(headers[2..], (ushort)totalLength);
            headers[10] = headers[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(headers[10..], (ushort)~Fold(Sum(headers[..20], 0)));
            pseudo = Sum(headers.Slice(12, 8), 0) + (ulong)(totalLength - 20) + 6;
        }
        if (push)
            headers[ip + 13] |= 0x08;
        BinaryPrimitives.WriteUInt16BigEndian(headers[(ip + 16)..], Fold(pseudo));
        virtio.Clear();
        virtio[0] = FlagNeedsChecksum;
        virtio[1] = isV6 ? GsoTcpV6 : GsoTcpV4;
        BinaryPrimitives.WriteUInt16LittleEndian(virtio[2..], (ushort)headers.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(virtio[4..], (ushort)gsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(virtio[6..], (ushort)ip);
        BinaryPrimitives.WriteUInt16LittleEndian(virtio[8..], 16);
    }

    /// <summary>
    /// Ones' complement sum (RFC 1071) of big-endian 16-bit words, added to <paramref name="initial"/> (sums of this
    /// kind, unfolded). The data is summed in native order, 32 or 16 bytes a step (widened to 64-bit lanes), and the folded
    /// result byte-swapped (RFC 1071 section 2(B): the sum does not depend on byte order): this runs for every byte
    /// the engine sends (each TSO segment's TCP checksum).
    /// </summary>
    public static ulong Sum(ReadOnlySpan<byte> data, ulong initial)
    {
        if (!BitConverter.IsLittleEndian)
            return initial + SumBigEndianWords(data);
        return initial + BinaryPrimitives.ReverseEndianness(Fold(NativeSum(ref MemoryMarshal.GetReference(data), ref Unsafe.NullRef<byte>(), data.Length, s_width)));
    }

    /// <summary>
    /// Copies <paramref name="source"/> to the start of <paramref name="destination"/> and returns
    /// <see cref="Sum"/>(<paramref name="source"/>, <paramref name="initial"/>), reading each byte once: a TSO
    /// segment's payload is summed as it is cut out of the super packet.
    /// </summary>
    public static ulong CopyAndSum(ReadOnlySpan<byte> source, Span<byte> destination, ulong initial) =>
        CopyAndSum(source, destination, initial, s_width);

    // The widest vector steps this machine (and build) runs: 32 bytes, 16 (what a build for the baseline instruction
    // set runs, as the NativeAOT engine) or none (8-byte words).
    private static readonly int s_width = Vector256.IsHardwareAccelerated ? 32 : Vector128.IsHardwareAccelerated ? 16 : 8;

    /// <summary><see cref="CopyAndSum(ReadOnlySpan{byte}, Span{byte}, ulong)"/> with vector steps of
    /// <paramref name="width"/> bytes (32 or 16; else none): the tests check each one this machine can run.</summary>
    internal static ulong CopyAndSum(ReadOnlySpan<byte> source, Span<byte> destination, ulong initial, int width)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("the destination is shorter than the source", nameof(destination));
        if (!BitConverter.IsLittleEndian || source.Overlaps(destination))
        {
            source.CopyTo(destination);
            return Sum(destination[..source.Length], initial);
        }
        return initial + BinaryPrimitives.ReverseEndianness(Fold(NativeSum(ref MemoryMarshal.GetReference(source),
            ref MemoryMarshal.GetReference(destination), source.Length,
            width == 32 && !Vector256.IsHardwareAccelerated || width == 16 && !Vector128.IsHardwareAccelerated ? 8 : width)));
    }

    // The unfolded sum of native-order 32-bit words (then 16-bit, then the odd byte); copied to copy unless it is a
    // null reference. Each 64-bit lane gains less than 2^32 a step: no overflow for any span (< 2^31 bytes).
    private static ulong NativeSum(ref byte start, ref byte copy, int length, int width)
    {
        bool copying = !Unsafe.IsNullRef(ref copy);
        int i = 0;
        ulong sum = 0;
        if (width == 32 && length >= 32)
        {
            Vector256<ulong> a = Vector256<ulong>.Zero, b = Vector256<ulong>.Zero;
            for (; i + 32 <= length; i += 32)
            {
                Vector256<byte> v = Vector256.LoadUnsafe(ref start, (nuint)i);
                if (copying)
                    v.StoreUnsafe(ref copy, (nuint)i);
                (Vector256<ulong> low, Vector256<ulong> high) = Vector256.Widen(v.AsUInt32());
                a += low;
                b += high;
            }
            sum = Vector256.Sum(a + b);
        }
        else if (width == 16)
        {
            // What the NativeAOT engine runs (baseline x86-64: 16-byte vectors): two vectors a step, four chains,
            // 2.3x the scalar loop below per 1380-byte segment.
            Vector128<ulong> a = Vector128<ulong>.Zero, b = Vector128<ulong>.Zero, c = Vector128<ulong>.Zero, d = Vector128<ulong>.Zero;
            for (; i + 32 <= length; i += 32)
            {
                Vector128<byte> v = Vector128.LoadUnsafe(ref start, (nuint)i);
                Vector128<byte> w = Vector128.LoadUnsafe(ref start, (nuint)i + 16);
                if (copying)
                {
                    v.StoreUnsafe(ref copy, (nuint)i);
                    w.StoreUnsafe(ref copy, (nuint)i + 16);
                }
                (Vector128<ulong> low, Vector128<ulong> high) = Vector128.Widen(v.AsUInt32());
                a += low;
                b += high;
                (low, high) = Vector128.Widen(w.AsUInt32());
                c += low;
                d += high;
            }
            sum = Vector128.Sum(a + b + c + d);
        }
        else
        {
            ulong a = 0, b = 0;
            for (; i + 16 <= length; i += 16)
            {
                ulong x = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i));
                ulong y = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 8));
                if (copying)
                {
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref copy, i), x);
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref copy, i + 8), y);
                }
                a += (x & 0xffffffff) + (x >> 32);
                b += (y & 0xffffffff) + (y >> 32);
            }
            sum = a + b;
        }
        if (copying && i < length)
            MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref start, i), length - i).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref copy, i), length - i));
        for (; i + 4 <= length; i += 4)
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref start, i));
        for (; i + 2 <= length; i += 2)
            sum += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, i));
        if (i < length)
            sum += Unsafe.Add(ref start, i); // the odd last byte is the high byte of a big-endian word: low in native order
        return sum;
    }

    /// <summary>The plain definition of <see cref="Sum"/> (big-endian words, one at a time); the tests' reference.</summary>
    internal static ulong SumBigEndianWords(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
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
