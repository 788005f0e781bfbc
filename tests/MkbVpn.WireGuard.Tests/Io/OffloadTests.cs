using System.Buffers.Binary;
using System.Net;
using MkbVpn.WireGuard.Tun;

namespace MkbVpn.WireGuard.Tests.Io;

public sealed class OffloadTests
{
    [Fact]
    public void Sum_InNativeOrder_FoldsAsTheBigEndianDefinition_ForEveryLengthAndAlignment()
    {
        var random = new Random(1071);
        var data = new byte[1600];
        for (int round = 0; round < 4; round++)
        {
            random.NextBytes(data);
            if (round == 3)
                data.AsSpan().Fill(0xff); // sums that are multiples of 0xffff
            for (int offset = 0; offset < 8; offset++)
                for (int length = 0; length <= 1500; length += length < 70 ? 1 : 37)
                {
                    ReadOnlySpan<byte> span = data.AsSpan(offset, length);
                    ulong reference = Offload.SumBigEndianWords(span) + 0x1234;
                    Assert.Equal(Offload.Fold(reference), Offload.Fold(Offload.Sum(span, 0x1234)));
                }
        }
        Assert.Equal(0, Offload.Fold(Offload.Sum(new byte[40], 0)));
    }

    [Theory]
    [InlineData(32)]
    [InlineData(16)] // the steps a baseline build (the NativeAOT engine) runs
    [InlineData(8)] // no vectors
    public void CopyAndSum_CopiesEveryByte_AndSumsAsTheBigEndianDefinition_ForEveryLengthAndAlignment(int width)
    {
        var random = new Random(793);
        var data = new byte[1600];
        var copy = new byte[1700];
        for (int round = 0; round < 3; round++)
        {
            random.NextBytes(data);
            if (round == 2)
                data.AsSpan().Fill(0xff);
            for (int offset = 0; offset < 8; offset++)
                for (int to = 0; to < 4; to++)
                    for (int length = 0; length <= 1500; length += length < 100 ? 1 : 41)
                    {
                        copy.AsSpan().Fill(0xa5);
                        ReadOnlySpan<byte> span = data.AsSpan(offset, length);
                        ulong sum = Offload.CopyAndSum(span, copy.AsSpan(to), 0x4321, width);
                        Assert.Equal(Offload.Fold(Offload.SumBigEndianWords(span) + 0x4321), Offload.Fold(sum));
                        Assert.True(span.SequenceEqual(copy.AsSpan(to, length)));
                        Assert.Equal(0xa5, copy[to + length]); // nothing written past the copy
                    }
        }
        Assert.Throws<ArgumentException>(() => Offload.CopyAndSum(new byte[40], new byte[39], 0));
    }

    // An independent RFC 1071 checksum, 16 bits at a time.
    private static ushort Checksum(ReadOnlySpan<byte> data, uint initial = 0)
    {
        uint sum = initial;
        for (int i = 0; i + 1 < data.Length; i += 2)
            sum += (uint)(data[i] << 8 | data[i + 1]);
        if (data.Length % 2 == 1)
            sum += (uint)data[^1] << 8;
        while (sum > 0xffff)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)sum;
    }

    private static uint PseudoHeader(ReadOnlySpan<byte> addresses, int l4Length, int protocol)
    {
        uint sum = Checksum(addresses);
        return sum + (uint)l4Length + (uint)protocol;
    }

    private static byte[] TcpSuperPacket(bool v6, int payload, byte flags)
    {
        int ip = v6 ? 40 : 20;
        var p = new byte[ip + 20 + payload];
        if (v6)
        {
            p[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(20 + payload));
            p[6] = 6;
            p[7] = 64;
            IPAddress.Parse("fd00:113::1").GetAddressBytes().CopyTo(p, 8);
            IPAddress.Parse("fd00:113::2").GetAddressBytes().CopyTo(p, 24);
        }
        else
        {
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), 0xfffe); // the id wraps across segments
            p[8] = 64;
            p[9] = 6;
            IPAddress.Parse("203.0.113.1").GetAddressBytes().CopyTo(p, 12);
            IPAddress.Parse("203.0.113.2").GetAddressBytes().CopyTo(p, 16);
        }
        Span<byte> tcp = p.AsSpan(ip);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 5201);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], 0xffffff00); // the sequence number wraps too
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        for (int i = 0; i < payload; i++)
            p[ip + 20 + i] = (byte)(i * 7);
        return p;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_tcp_super_packet_is_cut_into_valid_segments(bool v6)
    {
        const int gso = 1000;
        const byte ackPshFinCwr = 0x10 | 0x08 | 0x01 | 0x80;
        byte[] super = TcpSuperPacket(v6, 2500, ackPshFinCwr);
        int headers = Offload.TcpHeadersLength(super, out bool isV6);
        Assert.Equal(v6, isV6);
        Assert.Equal((v6 ? 40 : 20) + 20, headers);
        int count = Offload.SegmentCount(super.Length, headers, gso);
        Assert.Equal(3, count);

        int ip = v6 ? 40 : 20;
        var payload = new List<byte>();
        for (int k = 0; k < count; k++)
        {
            var segment = new byte[2000];
            int length = Offload.WriteTcpSegment(super, headers, isV6, gso, k, segment);
            int expectedPayload = k < 2 ? 1000 : 500;
            Assert.Equal(headers + expectedPayload, length);
            ReadOnlySpan<byte> s = segment.AsSpan(0, length);
            if (v6)
            {
                Assert.Equal(length - 40, BinaryPrimitives.ReadUInt16BigEndian(s[4..]));
                Assert.Equal(0xffff, Checksum(s[ip..], PseudoHeader(s.Slice(8, 32), length - 40, 6)));
            }
            else
            {
                Assert.Equal(length, BinaryPrimitives.ReadUInt16BigEndian(s[2..]));
                Assert.Equal((ushort)(0xfffe + k), BinaryPrimitives.ReadUInt16BigEndian(s[4..]));
                Assert.Equal(0xffff, Checksum(s[..20]));
                Assert.Equal(0xffff, Checksum(s[ip..], PseudoHeader(s.Slice(12, 8), length - 20, 6)));
            }
            Assert.Equal(unchecked(0xffffff00u + (uint)(k * gso)), BinaryPrimitives.ReadUInt32BigEndian(s[(ip + 4)..]));
            byte flags = s[ip + 13];
            Assert.Equal(k == 2, (flags & 0x09) == 0x09); // PSH and FIN only on the last
            Assert.Equal(k == 0, (flags & 0x80) != 0);    // CWR only on the first
            Assert.True((flags & 0x10) != 0);             // ACK on all
            payload.AddRange(s[headers..].ToArray());
        }
        Assert.Equal(super.AsSpan(headers).ToArray(), payload.ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segments_coalesce_back_into_a_super_packet_that_cuts_into_the_same_segments(bool v6)
    {
        const int gso = 1000;
        byte[] super = TcpSuperPacket(v6, 2600, 0x10 | 0x08); // ACK, PSH
        int headers = Offload.TcpHeadersLength(super, out bool isV6);
        var segments = Enumerable.Range(0, 3).Select(k =>
        {
            var buffer = new byte[2000];
            return buffer.AsSpan(0, Offload.WriteTcpSegment(super, headers, isV6, gso, k, buffer)).ToArray();
        }).ToArray();

        Assert.True(Offload.CanCoalesce(segments[0], segments[1], headers, isV6, gso));
        Assert.True(Offload.CanCoalesce(segments[1], segments[2], headers, isV6, gso));
        Assert.False(Offload.CanCoalesce(segments[0], segments[2], headers, isV6, gso), "a gap in the sequence");
        Assert.False(Offload.CanCoalesce(segments[2], segments[0], headers, isV6, gso), "a short (last) segment ends a run");
        byte[] otherPort = (byte[])segments[1].Clone();
        otherPort[(v6 ? 40 : 20) + 1] ^= 1;
        Assert.False(Offload.CanCoalesce(segments[0], otherPort, headers, isV6, gso), "another flow");

        // Coalesce: the first one's headers, fixed up, then every payload.
        int total = headers + segments.Sum(x => x.Length - headers);
        var coalesced = new byte[total];
        segments[0].AsSpan(0, headers).CopyTo(coalesced);
        var virtio = new byte[Offload.VirtioHeaderSize];
        Offload.WriteCoalescedHeaders(virtio, coalesced.AsSpan(0, headers), isV6, total, gso, push: true);
        int at = headers;
        foreach (byte[] x in segments)
        {
            x.AsSpan(headers).CopyTo(coalesced.AsSpan(at));
            at += x.Length - headers;
        }
        var h = Offload.VirtioHeader.Read(virtio);
        Assert.Equal(Offload.FlagNeedsChecksum, h.Flags);
        Assert.Equal(v6 ? Offload.GsoTcpV6 : Offload.GsoTcpV4, h.GsoType);
        Assert.Equal(gso, h.GsoSize);
        Assert.Equal(headers, h.HeaderLength);
        Assert.Equal(v6 ? 40 : 20, h.ChecksumStart);
        Assert.Equal(16, h.ChecksumOffset);
        if (!v6)
            Assert.Equal(0xffff, Checksum(coalesced.AsSpan(0, 20)));
        // The partial checksum finished over the whole packet is a valid TCP checksum.
        var finished = (byte[])coalesced.Clone();
        Assert.True(Offload.FinishChecksum(finished, h.ChecksumStart, h.ChecksumOffset));
        int ip = v6 ? 40 : 20;
        Assert.Equal(0xffff, Checksum(finished.AsSpan(ip), PseudoHeader(v6 ? finished.AsSpan(8, 32) : finished.AsSpan(12, 8), total - ip, 6)));
        // And the kernel's cut of it gives back the original segments, byte for byte.
        for (int k = 0; k < 3; k++)
        {
            var again = new byte[2000];
            int n = Offload.WriteTcpSegment(coalesced, headers, isV6, gso, k, again);
            Assert.Equal(segments[k], again.AsSpan(0, n).ToArray());
        }
    }

    [Fact]
    public void A_partial_checksum_is_finished()
    {
        // A UDP packet as the kernel hands it with NEEDS_CSUM: the checksum field holds the pseudo-header sum.
        var p = new byte[20 + 8 + 33];
        p[0] = 0x45;
        p[9] = 17;
        IPAddress.Parse("203.0.113.1").GetAddressBytes().CopyTo(p, 12);
        IPAddress.Parse("203.0.113.2").GetAddressBytes().CopyTo(p, 16);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(24), 8 + 33);
        for (int i = 28; i < p.Length; i++)
            p[i] = (byte)i;
        uint pseudo = PseudoHeader(p.AsSpan(12, 8), 8 + 33, 17);
        while (pseudo > 0xffff)
            pseudo = (pseudo & 0xffff) + (pseudo >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(26), (ushort)pseudo);

        Assert.True(Offload.FinishChecksum(p, 20, 6));
        Assert.Equal(0xffff, Checksum(p.AsSpan(20), PseudoHeader(p.AsSpan(12, 8), 8 + 33, 17)));
        Assert.False(Offload.FinishChecksum(p, 20, p.Length)); // out of range: refused, not thrown
    }

    [Fact]
    public void Malformed_packets_have_no_tcp_headers()
    {
        Assert.Equal(-1, Offload.TcpHeadersLength(new byte[10], out _));
        byte[] udp = TcpSuperPacket(false, 10, 0x10);
        udp[9] = 17;
        Assert.Equal(-1, Offload.TcpHeadersLength(udp, out _));
        byte[] shortTcp = TcpSuperPacket(false, 0, 0x10);
        shortTcp[32] = 15 << 4; // a TCP header longer than the packet
        Assert.Equal(-1, Offload.TcpHeadersLength(shortTcp, out _));
    }
}
