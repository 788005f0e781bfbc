using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class TunnelTests
{
    private static readonly byte[] SourceA = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.51.100.1"), 40000));
    private static readonly byte[] SourceB = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.51.100.2"), 51820));

    /// <summary>Two peers wired back to back through byte arrays.</summary>
    private sealed class Link : IDisposable
    {
        public readonly ManualTime Time = new();
        public readonly StaticIdentity IdA = new(WireGuardKeys.NewPrivateKey());
        public readonly StaticIdentity IdB = new(WireGuardKeys.NewPrivateKey());
        public readonly Tunnel A, B;
        public readonly byte[] Buffer = new byte[2048];

        public Link(WireGuardKey? psk = null, TimeSpan persistentKeepalive = default)
        {
            A = new Tunnel(IdA, IdB.PublicKey, psk, Time, RandomNumberGenerator.Create(), persistentKeepalive: persistentKeepalive);
            B = new Tunnel(IdB, IdA.PublicKey, psk, Time, RandomNumberGenerator.Create());
        }

        /// <summary>A sends <paramref name="packet"/>; the handshake runs to completion; B must deliver the packet.</summary>
        public void Establish(byte[] packet)
        {
            var init = Out(A.Encapsulate(packet, Buffer));
            Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(init));
            Assert.Equal(1, A.QueuedPackets);

            var resp = Out(B.Decapsulate(init, Buffer, SourceA));
            Assert.Equal(MessageType.HandshakeResponse, Messages.Classify(resp));
            Assert.False(B.HasSession); // the responder waits for confirmation

            var data = Out(A.Decapsulate(resp, Buffer, SourceB));
            Assert.Equal(MessageType.TransportData, Messages.Classify(data));
            Assert.Equal(0, A.QueuedPackets);
            Assert.True(A.HasSession);

            Assert.Equal(packet, Deliver(B, data));
            Assert.True(B.HasSession);
        }

        public byte[] Out(TunnelResult r)
        {
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
            return Buffer[..r.Length];
        }

        public byte[] Deliver(Tunnel to, byte[] datagram)
        {
            var dst = new byte[2048];
            var r = to.Decapsulate(datagram, dst, SourceA);
            Assert.True(r.Kind is TunnelResultKind.WriteToTunnelV4 or TunnelResultKind.WriteToTunnelV6, $"{r}");
            return dst[..r.Length];
        }

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            IdA.Dispose();
            IdB.Dispose();
        }
    }

    private static byte[] Ipv4(string source, string destination, int payload = 10)
    {
        var p = new byte[20 + payload];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 17;
        IPAddress.Parse(source).GetAddressBytes().CopyTo(p, 12);
        IPAddress.Parse(destination).GetAddressBytes().CopyTo(p, 16);
        for (int i = 20; i < p.Length; i++)
            p[i] = (byte)i;
        return p;
    }

    private static byte[] Ipv6(string source, string destination, int payload = 8)
    {
        var p = new byte[40 + payload];
        p[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)payload);
        p[6] = 17;
        p[7] = 64;
        IPAddress.Parse(source).GetAddressBytes().CopyTo(p, 8);
        IPAddress.Parse(destination).GetAddressBytes().CopyTo(p, 24);
        return p;
    }

    [Fact]
    public void TwoTunnels_Handshake_AndExchangePackets()
    {
        using var link = new Link(WireGuardKeys.NewPresharedKey());
        byte[] first = Ipv4("10.0.0.1", "10.0.0.2");
        link.Establish(first);

        // Both directions, several packets, IPv4 and IPv6.
        for (int i = 0; i < 5; i++)
        {
            byte[] ab = Ipv4("10.0.0.1", "10.0.0.2", payload: 100 + i);
            Assert.Equal(ab, link.Deliver(link.B, link.Out(link.A.Encapsulate(ab, link.Buffer))));
            byte[] ba = Ipv6("fd00::2", "fd00::1", payload: 33 + i);
            var dst = new byte[2048];
            var r = link.B.Encapsulate(ba, link.Buffer);
            byte[] wire = link.Out(r);
            var delivered = link.A.Decapsulate(wire, dst, SourceB);
            Assert.Equal(TunnelResultKind.WriteToTunnelV6, delivered.Kind);
            Assert.Equal(ba, dst[..delivered.Length]);
        }
        Assert.NotNull(link.A.LastHandshake);
        Assert.NotNull(link.B.LastHandshake);
        Assert.Equal(0, link.A.Counters.TotalErrors + link.B.Counters.TotalErrors);
    }

    [Fact]
    public void DataMessages_ArePaddedToSixteen_AndCountersIncrease()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] packet = Ipv4("10.0.0.1", "10.0.0.2", payload: 1); // 21 bytes -> 32 padded
        byte[] wire = link.Out(link.A.Encapsulate(packet, link.Buffer));
        Assert.Equal(16 + 32 + 16, wire.Length);
        Assert.Equal(1ul, TransportData.Counter(wire)); // counter 0 went with the first packet
        Assert.Equal(packet, link.Deliver(link.B, wire)); // the IP length strips the padding
    }

    [Fact]
    public void Keepalive_IsEmptyAndConsumedSilently()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] keepalive = link.Out(link.A.Encapsulate(ReadOnlySpan<byte>.Empty, link.Buffer));
        Assert.Equal(TransportData.MinSize, keepalive.Length);
        Assert.Equal(TunnelResultKind.Done, link.B.Decapsulate(keepalive, new byte[64]).Kind);
        Assert.Equal(0, link.B.Counters.TotalErrors);
    }

    [Fact]
    public void ReplayedData_IsRejected()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] wire = link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer));
        link.Deliver(link.B, wire);
        var r = link.B.Decapsulate(wire, new byte[2048]);
        Assert.Equal(TunnelError.Replay, r.Error);
        Assert.Equal(1, link.B.Counters.Errors(TunnelError.Replay));
    }

    [Fact]
    public void TamperedOrForeignData_IsRejected()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] wire = link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer));

        byte[] flipped = (byte[])wire.Clone();
        flipped[20] ^= 1;
        Assert.Equal(TunnelError.DecryptionFailed, link.B.Decapsulate(flipped, new byte[2048]).Error);

        byte[] wrongIndex = (byte[])wire.Clone();
        wrongIndex[4] ^= 0xff;
        Assert.Equal(TunnelError.UnknownIndex, link.B.Decapsulate(wrongIndex, new byte[2048]).Error);

        // The genuine packet still goes through after the forgeries (the window did not move).
        link.Deliver(link.B, wire);
    }

    [Fact]
    public void Garbage_NeverThrows_AndIsCounted()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        var rng = new Random(1234);
        var dst = new byte[2048];
        int errors = 0;
        for (int i = 0; i < 2000; i++)
        {
            var datagram = new byte[rng.Next(0, 200)];
            rng.NextBytes(datagram);
            if (datagram.Length >= 4 && rng.Next(2) == 0)
            {
                datagram[0] = (byte)rng.Next(1, 5);
                datagram[1] = datagram[2] = datagram[3] = 0;
            }
            var r = link.B.Decapsulate(datagram, dst);
            Assert.NotEqual(TunnelResultKind.WriteToTunnelV4, r.Kind);
            Assert.NotEqual(TunnelResultKind.WriteToTunnelV6, r.Kind);
            if (r.Kind == TunnelResultKind.Error)
                errors++;
        }
        Assert.Equal(errors, link.B.Counters.TotalErrors);
        Assert.True(link.B.Counters.Errors(TunnelError.Malformed) > 0);
        Assert.Equal(TunnelError.Malformed, link.B.Decapsulate(ReadOnlySpan<byte>.Empty, dst).Error);
        // Still working afterwards.
        byte[] p = Ipv4("10.0.0.1", "10.0.0.2");
        Assert.Equal(p, link.Deliver(link.B, link.Out(link.A.Encapsulate(p, link.Buffer))));
    }

    [Fact]
    public void AuthenticatedNonIpPayload_IsRejected()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] bogus = Ipv4("10.0.0.1", "10.0.0.2");
        BinaryPrimitives.WriteUInt16BigEndian(bogus.AsSpan(2), 500); // claims more than it has
        byte[] wire = link.Out(link.A.Encapsulate(bogus, link.Buffer));
        Assert.Equal(TunnelError.InvalidIpPacket, link.B.Decapsulate(wire, new byte[2048]).Error);
        byte[] notIp = new byte[30];
        notIp[0] = 0x20;
        wire = link.Out(link.A.Encapsulate(notIp, link.Buffer));
        Assert.Equal(TunnelError.InvalidIpPacket, link.B.Decapsulate(wire, new byte[2048]).Error);
    }

    [Fact]
    public void A_delivered_packet_names_its_inner_source_and_the_core_decides_nothing_about_it()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] other = link.Out(link.A.Encapsulate(Ipv4("10.9.9.9", "10.0.0.2"), link.Buffer));
        var dst = new byte[2048];
        TunnelResult r = link.B.Decapsulate(other, dst);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, r.Kind);
        Assert.Equal(new byte[] { 10, 9, 9, 9 }, r.InnerSource(dst).ToArray());
    }

    [Fact]
    public void DecapsulateInPlace_Works()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] p = Ipv4("10.0.0.1", "10.0.0.2", payload: 50);
        byte[] wire = link.Out(link.A.Encapsulate(p, link.Buffer));
        var r = link.B.Decapsulate(wire, wire.AsSpan(TransportData.HeaderSize));
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, r.Kind);
        Assert.Equal(p, wire.AsSpan(TransportData.HeaderSize, r.Length).ToArray());

        // A partial overlap is refused, not thrown.
        byte[] wire2 = link.Out(link.A.Encapsulate(p, link.Buffer));
        Assert.Equal(TunnelError.BufferTooSmall, link.B.Decapsulate(wire2, wire2.AsSpan(4)).Error);
    }

    [Fact]
    public void PacketsQueuedWhileHandshaking_AreFlushedAfterwards()
    {
        using var link = new Link();
        byte[] p1 = Ipv4("10.0.0.1", "10.0.0.2", 1), p2 = Ipv4("10.0.0.1", "10.0.0.2", 2), p3 = Ipv4("10.0.0.1", "10.0.0.2", 3);
        byte[] init = link.Out(link.A.Encapsulate(p1, link.Buffer));
        Assert.Equal(TunnelResultKind.Done, link.A.Encapsulate(p2, link.Buffer).Kind); // rate limited: no second initiation
        Assert.Equal(TunnelResultKind.Done, link.A.Encapsulate(p3, link.Buffer).Kind);
        Assert.Equal(3, link.A.QueuedPackets);

        byte[] resp = link.Out(link.B.Decapsulate(init, link.Buffer, SourceA));
        Assert.Equal(p1, link.Deliver(link.B, link.Out(link.A.Decapsulate(resp, link.Buffer, SourceB))));
        Assert.Equal(p2, link.Deliver(link.B, link.Out(link.A.Flush(link.Buffer))));
        Assert.Equal(p3, link.Deliver(link.B, link.Out(link.A.Flush(link.Buffer))));
        Assert.Equal(TunnelResultKind.Done, link.A.Flush(link.Buffer).Kind);
    }

    [Fact]
    public void ResponderQueues_UntilInitiatorConfirms_ThenFlushes()
    {
        using var link = new Link();
        byte[] init = link.Out(link.A.Encapsulate(ReadOnlySpan<byte>.Empty, link.Buffer));
        byte[] resp = link.Out(link.B.Decapsulate(init, link.Buffer, SourceA));
        byte[] fromB = Ipv4("10.0.0.2", "10.0.0.1");
        Assert.Equal(TunnelResultKind.Done, link.B.Encapsulate(fromB, link.Buffer).Kind); // queued, no racing initiation
        Assert.Equal(1, link.B.QueuedPackets);

        byte[] keepalive = link.Out(link.A.Decapsulate(resp, link.Buffer, SourceB)); // nothing queued at A: a keepalive
        Assert.Equal(TransportData.MinSize, keepalive.Length);
        Assert.Equal(TunnelResultKind.Done, link.B.Decapsulate(keepalive, new byte[64]).Kind);
        Assert.True(link.B.HasSession);
        Assert.Equal(fromB, link.Deliver(link.A, link.Out(link.B.Flush(link.Buffer))));
    }

    [Fact]
    public void LostResponse_IsRetransmitted_AfterRekeyTimeout()
    {
        using var link = new Link();
        link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer)); // lost
        link.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TunnelResultKind.Done, link.A.Tick(link.Buffer).Kind);
        link.Time.Advance(TimeSpan.FromSeconds(4.4));
        byte[] retry = link.Out(link.A.Tick(link.Buffer));
        Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(retry));
        Assert.Equal(TunnelResultKind.Done, link.A.Tick(link.Buffer).Kind);

        byte[] resp = link.Out(link.B.Decapsulate(retry, link.Buffer, SourceA));
        byte[] data = link.Out(link.A.Decapsulate(resp, link.Buffer, SourceB));
        link.Deliver(link.B, data);
    }

    [Fact]
    public void Handshake_GivesUp_AndDropsQueue_AfterRekeyAttemptTime()
    {
        using var link = new Link();
        link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer));
        int initiations = 1;
        for (int i = 0; i < 200; i++)
        {
            link.Time.Advance(TimeSpan.FromSeconds(1));
            var r = link.A.Tick(link.Buffer);
            if (r.Kind == TunnelResultKind.WriteToNetwork)
                initiations++;
        }
        // As wireguard-go: 20 initiations in all (the first and 19 retransmissions), then it gives up.
        Assert.Equal(20, initiations);
        Assert.Equal(0, link.A.QueuedPackets);
    }

    [Fact]
    public void Keepalive_SentByTimer_AfterReceivingWithoutReplying()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        link.Time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(TunnelResultKind.Done, link.B.Tick(link.Buffer).Kind);
        link.Time.Advance(TimeSpan.FromSeconds(1));
        byte[] keepalive = link.Out(link.B.Tick(link.Buffer));
        Assert.Equal(TransportData.MinSize, keepalive.Length);
        Assert.Equal(TunnelResultKind.Done, link.A.Decapsulate(keepalive, new byte[64]).Kind);
    }

    [Fact]
    public void PersistentKeepalive_IsSentOnSchedule()
    {
        using var link = new Link(persistentKeepalive: TimeSpan.FromSeconds(25));
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        int keepalives = 0;
        for (int i = 0; i < 100; i++)
        {
            link.Time.Advance(TimeSpan.FromSeconds(1));
            TunnelResult r;
            while ((r = link.A.Tick(link.Buffer)).Kind == TunnelResultKind.WriteToNetwork)
            {
                byte[] m = link.Buffer[..r.Length];
                if (Messages.Classify(m) == MessageType.TransportData && m.Length == TransportData.MinSize)
                {
                    keepalives++;
                    Assert.Equal(TunnelResultKind.Done, link.B.Decapsulate(m, new byte[64]).Kind);
                }
                else if (Messages.Classify(m) == MessageType.HandshakeInitiation)
                {
                    byte[] resp = link.Out(link.B.Decapsulate(m, link.Buffer, SourceA));
                    link.A.Decapsulate(resp, new byte[2048], SourceB);
                }
            }
        }
        Assert.InRange(keepalives, 3, 5); // about every 25 s over 100 s
    }

    [Fact]
    public void Initiator_Rekeys_AfterRekeyAfterTime_AndPreviousKeypairStillReceives()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] inFlight = link.Out(link.B.Encapsulate(Ipv4("10.0.0.2", "10.0.0.1"), link.Buffer));

        link.Time.Advance(Constants.RekeyAfterTime);
        byte[] p = Ipv4("10.0.0.1", "10.0.0.2");
        link.Deliver(link.B, link.Out(link.A.Encapsulate(p, link.Buffer))); // still sent on the old keys
        byte[] init = link.Out(link.A.Tick(link.Buffer));                     // ... and a rekey is due
        Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(init));

        byte[] resp = link.Out(link.B.Decapsulate(init, link.Buffer, SourceA));
        byte[] confirm = link.Out(link.A.Decapsulate(resp, link.Buffer, SourceB));
        Assert.Equal(TunnelResultKind.Done, link.B.Decapsulate(confirm, new byte[64]).Kind);

        // A packet B sent on the old keypair before the rotation still decrypts at A (previous keypair).
        link.Deliver(link.A, inFlight);
        // New traffic flows on the new keys.
        Assert.Equal(p, link.Deliver(link.B, link.Out(link.A.Encapsulate(p, link.Buffer))));
        Assert.Equal(0ul, TransportData.Counter(confirm));
    }

    [Fact]
    public void Keys_AreRejectedAfterRejectAfterTime_AndZeroedAfterThreeTimes()
    {
        using var link = new Link();
        link.Establish(Ipv4("10.0.0.1", "10.0.0.2"));
        byte[] old = link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer));
        link.Time.Advance(Constants.RejectAfterTime);
        Assert.Equal(TunnelError.ExpiredKeypair, link.B.Decapsulate(old, new byte[2048]).Error);
        Assert.False(link.A.HasSession);

        // B never hears again: after 3 x Reject-After-Time it erases everything.
        link.Time.Advance(Constants.ZeroKeysAfter);
        while (link.B.Tick(link.Buffer).Kind != TunnelResultKind.Done) { }
        Assert.Equal(TunnelError.UnknownIndex, link.B.Decapsulate(old, new byte[2048]).Error);
    }

    [Fact]
    public void UnderLoad_CookieReply_ThenHandshakeWithMac2()
    {
        using var link = new Link();
        link.B.UnderLoad = true;
        byte[] init = link.Out(link.A.Encapsulate(Ipv4("10.0.0.1", "10.0.0.2"), link.Buffer));
        byte[] cookie = link.Out(link.B.Decapsulate(init, link.Buffer, SourceA));
        Assert.Equal(MessageType.CookieReply, Messages.Classify(cookie));
        Assert.Equal(TunnelResultKind.Done, link.A.Decapsulate(cookie, link.Buffer, SourceB).Kind);

        link.Time.Advance(TimeSpan.FromSeconds(5.4));
        byte[] retry = link.Out(link.A.Tick(link.Buffer));
        Assert.Contains(retry[HandshakeInitiation.Mac2Offset..], b => b != 0);
        byte[] resp = link.Out(link.B.Decapsulate(retry, link.Buffer, SourceA));
        Assert.Equal(MessageType.HandshakeResponse, Messages.Classify(resp));
        link.Deliver(link.B, link.Out(link.A.Decapsulate(resp, link.Buffer, SourceB)));

        // The cookie is bound to A's address: the same mac2 from elsewhere earns another cookie reply.
        byte[] again = link.Out(link.B.Decapsulate(retry, link.Buffer, SourceB));
        Assert.Equal(MessageType.CookieReply, Messages.Classify(again));
    }

    [Fact]
    public void WrongPeer_InitiationIsRefused()
    {
        using var link = new Link();
        using var strangerId = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var stranger = new Tunnel(strangerId, link.IdB.PublicKey, null, link.Time, RandomNumberGenerator.Create());
        byte[] init = link.Out(stranger.Encapsulate(ReadOnlySpan<byte>.Empty, link.Buffer));
        var r = link.B.Decapsulate(init, link.Buffer, SourceA);
        Assert.Equal(TunnelError.HandshakeFailed, r.Error);
        Assert.Equal(HandshakeStatus.UnknownPeer, r.Handshake);
    }
}

public sealed class TunnelEdgeTests
{
    [Fact]
    public void SimultaneousInitiations_ConvergeAfterRetransmit()
    {
        var time = new ManualTime();
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create());
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create());
        var buf = new byte[2048];
        byte[] pa = new byte[20], pb = new byte[20];
        pa[0] = pb[0] = 0x45;
        pa[3] = pb[3] = 20;
        pb[15] = 2;

        byte[] initA = buf[..a.Encapsulate(pa, buf).Length];
        byte[] initB = buf[..b.Encapsulate(pb, buf).Length];
        byte[] respA = buf[..a.Decapsulate(initB, buf).Length];
        byte[] respB = buf[..b.Decapsulate(initA, buf).Length];
        // Each side became the other's responder: the crossing responses no longer match.
        Assert.Equal(TunnelError.HandshakeFailed, a.Decapsulate(respB, buf).Error);
        Assert.Equal(TunnelError.HandshakeFailed, b.Decapsulate(respA, buf).Error);

        // The retransmit timers untangle it: whoever fires first completes a handshake.
        var dst = new byte[2048];
        int delivered = 0;
        for (int step = 0; step < 100 && delivered < 2; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            foreach (var (from, to) in new[] { (a, b), (b, a) })
            {
                TunnelResult r;
                while ((r = from.Tick(buf)).Kind == TunnelResultKind.WriteToNetwork || (r = from.Flush(buf)).Kind == TunnelResultKind.WriteToNetwork)
                    delivered += Pump(buf[..r.Length], from, to, dst);
            }
        }
        Assert.Equal(2, delivered);
        Assert.True(a.HasSession && b.HasSession);

        static int Pump(byte[] datagram, Tunnel from, Tunnel to, byte[] dst)
        {
            int count = 0;
            var queue = new Queue<(byte[], Tunnel, Tunnel)>();
            queue.Enqueue((datagram, from, to));
            while (queue.Count > 0)
            {
                var (d, f, t) = queue.Dequeue();
                var r = t.Decapsulate(d, dst);
                if (r.Kind == TunnelResultKind.WriteToNetwork)
                    queue.Enqueue((dst[..r.Length], t, f));
                else if (r.Kind == TunnelResultKind.WriteToTunnelV4)
                    count++;
                var flushBuf = new byte[2048];
                TunnelResult fr;
                while ((fr = t.Flush(flushBuf)).Kind == TunnelResultKind.WriteToNetwork)
                    queue.Enqueue((flushBuf[..fr.Length], t, f));
            }
            return count;
        }
    }

    [Fact]
    public void LowOrderPeerKey_GivesAnErrorResult_NotAnException()
    {
        var time = new ManualTime();
        using var id = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var t = new Tunnel(id, WireGuardKey.FromBytes(new byte[32]), null, time, RandomNumberGenerator.Create());
        var r = t.Encapsulate(new byte[20], new byte[2048]);
        Assert.Equal(TunnelError.HandshakeFailed, r.Error);
        Assert.Equal(HandshakeStatus.ZeroDiffieHellman, r.Handshake);
        Assert.Equal(1, t.Counters.Errors(TunnelError.HandshakeFailed));
    }

    [Fact]
    public void ToString_NeverShowsKeyMaterial()
    {
        var time = new ManualTime();
        var privateKey = WireGuardKeys.NewPrivateKey();
        var psk = WireGuardKeys.NewPresharedKey();
        using var id = new StaticIdentity(privateKey);
        var peer = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey());
        using var t = new Tunnel(id, peer, psk, time, RandomNumberGenerator.Create());
        using var h = new Handshake(id, peer, psk);
        string[] texts = { t.ToString(), h.ToString(), id.ToString(), privateKey.ToString(), psk.ToString() };
        foreach (string text in texts)
            foreach (var key in new[] { privateKey, psk })
            {
                Assert.DoesNotContain(key.ToBase64(), text);
                Assert.DoesNotContain(key.ToHex(), text, StringComparison.OrdinalIgnoreCase);
            }
    }
}

public sealed class DeviceStyleRoutingTests
{
    [Fact]
    public void Device_OpensInitiationOnce_RoutesByStaticKey_AndAccepts()
    {
        var time = new ManualTime();
        using var server = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var checker = new CookieChecker(server.PublicKey, RandomNumberGenerator.Create());
        using var client1 = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var client2 = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var c2 = new Tunnel(client2, server.PublicKey, null, time, RandomNumberGenerator.Create());

        // The server side: one tunnel per client sharing the checker, looked up by public key.
        var indices = new SessionIndexTable(RandomNumberGenerator.Create());
        using var s1 = new Tunnel(server, client1.PublicKey, null, time, RandomNumberGenerator.Create(), checker, indices: indices);
        using var s2 = new Tunnel(server, client2.PublicKey, null, time, RandomNumberGenerator.Create(), checker, indices: indices);
        var byKey = new Dictionary<WireGuardKey, Tunnel> { [client1.PublicKey] = s1, [client2.PublicKey] = s2 };

        var buf = new byte[2048];
        byte[] init = buf[..c2.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        Assert.Equal(MacStatus.Valid, checker.Check(init, default, s2.Now(), underLoad: false));
        Assert.Equal(HandshakeStatus.Ok, Handshake.OpenInitiation(server, init, out var opened));
        using (opened)
        {
            Tunnel peer = byKey[opened!.RemoteStatic];
            Assert.Same(s2, peer);
            var r = peer.AcceptInitiation(opened, buf);
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
            Assert.Same(s2, indices.Lookup(HandshakeResponse.Sender(buf))); // the index tells the device which tunnel
            byte[] resp = buf[..r.Length];
            byte[] keepalive = buf[..c2.Decapsulate(resp, buf).Length];
            Assert.Equal(TunnelResultKind.Done, s2.Decapsulate(keepalive, new byte[64]).Kind);
            Assert.True(s2.HasSession);

            // Accepting the same opened initiation twice is a replay.
            Assert.Equal(HandshakeStatus.ReplayedTimestamp, s2.AcceptInitiation(opened, buf).Handshake);
            Assert.Equal(HandshakeStatus.UnknownPeer, s1.AcceptInitiation(opened, buf).Handshake);
        }
    }
}

public sealed class PersistentKeepaliveReconnectTests
{
    [Fact]
    public void PersistentKeepalive_WithoutSession_StartsAHandshake()
    {
        var time = new ManualTime();
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create(), persistentKeepalive: TimeSpan.FromSeconds(25));
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create());
        var buf = new byte[2048];

        // Bring the session up with a keepalive, then let every key expire while nobody talks but A's timer.
        byte[] init = buf[..a.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        byte[] resp = buf[..b.Decapsulate(init, buf).Length];
        Assert.Equal(TunnelResultKind.WriteToNetwork, a.Decapsulate(resp, buf).Kind);
        Assert.True(a.HasSession);

        time.Advance(Constants.RejectAfterTime);
        Assert.False(a.HasSession);
        // The persistent keepalive timer (armed by the last packet sent) fires with no usable keypair: a new initiation.
        time.Advance(TimeSpan.FromSeconds(1));
        bool sawInitiation = false;
        TunnelResult r;
        while ((r = a.Tick(buf)).Kind == TunnelResultKind.WriteToNetwork)
            sawInitiation |= Messages.Classify(buf.AsSpan(0, r.Length)) == MessageType.HandshakeInitiation;
        Assert.True(sawInitiation);
    }
}

public sealed class RekeyOnReceiveTests
{
    [Fact]
    public void Initiator_RekeysWhenReceivingOnAnAgingKeypair_Once()
    {
        var time = new ManualTime();
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create());
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create());
        var buf = new byte[2048];
        var dst = new byte[2048];

        byte[] init = buf[..a.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        byte[] resp = buf[..b.Decapsulate(init, buf).Length];
        byte[] confirm = buf[..a.Decapsulate(resp, buf).Length];
        Assert.Equal(TunnelResultKind.Done, b.Decapsulate(confirm, dst).Kind);
        Assert.True(a.NextDeadline > a.Now() + TimeSpan.FromSeconds(500)); // only key erasure (540 s) is pending

        // B (the responder) keeps sending keepalives; A only receives.
        time.Advance(Constants.RekeyOnReceiveAfterTime - TimeSpan.FromSeconds(1));
        byte[] k1 = buf[..b.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        Assert.Equal(TunnelResultKind.Done, a.Decapsulate(k1, dst).Kind);
        Assert.Equal(TunnelResultKind.Done, a.Tick(buf).Kind);

        time.Advance(TimeSpan.FromSeconds(1));
        byte[] k2 = buf[..b.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        Assert.Equal(TunnelResultKind.Done, a.Decapsulate(k2, dst).Kind);
        var r = a.Tick(buf);
        Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
        Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(buf.AsSpan(0, r.Length)));
        Assert.Equal(TunnelResultKind.Done, a.Tick(buf).Kind);

        // Acted upon once: the next receive on the same keypair does not ask again (retransmits are the timer's job).
        time.Advance(TimeSpan.FromSeconds(1));
        byte[] k3 = buf[..b.Encapsulate(ReadOnlySpan<byte>.Empty, buf).Length];
        Assert.Equal(TunnelResultKind.Done, a.Decapsulate(k3, dst).Kind);
        Assert.Equal(TunnelResultKind.Done, a.Tick(buf).Kind);
    }
}

public sealed class SmallBufferTests
{
    [Fact]
    public void TooSmallDestinations_AreErrorResults_NeverExceptions()
    {
        var time = new ManualTime();
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create());
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create());
        var big = new byte[2048];
        var tiny = new byte[10];
        var packet = new byte[100];
        packet[0] = 0x45;
        packet[3] = 100;

        Assert.Equal(TunnelError.BufferTooSmall, a.Encapsulate(packet, tiny).Error);
        byte[] init = big[..a.Encapsulate(packet, big).Length];
        Assert.Equal(TunnelError.BufferTooSmall, b.Decapsulate(init, tiny).Error);
        byte[] resp = big[..b.Decapsulate(init, big).Length];
        Assert.Equal(TunnelError.BufferTooSmall, a.Decapsulate(resp, tiny).Error);
        byte[] data = big[..a.Decapsulate(resp, big).Length];
        Assert.Equal(TunnelError.BufferTooSmall, b.Decapsulate(data, new byte[50]).Error);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, b.Decapsulate(data, big).Kind);
        Assert.Equal(TunnelError.BufferTooSmall, a.Encapsulate(packet, new byte[100]).Error);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.NotEqual(TunnelResultKind.WriteToNetwork, b.Tick(tiny).Kind); // keepalive due, no room: not written
    }
}
