using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Tests.Io;

public sealed class SocketBindTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void Receives_a_batch_with_source_addresses_and_answers_them(string loopback)
    {
        using var bind = SocketBind.Open(0);
        Assert.NotEqual(0, bind.Port);
        var address = IPAddress.Parse(loopback);
        using var client = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(address, 0));
        for (byte i = 1; i <= 3; i++)
            client.SendTo(new byte[] { i, i, i }, new IPEndPoint(address, bind.Port));

        var batch = new PacketBatch(8, withAddresses: true);
        int got = 0;
        var sw = Stopwatch.StartNew();
        while (got < 3 && sw.Elapsed < TimeSpan.FromSeconds(5))
        {
            int n = bind.Receive(batch);
            Assert.InRange(n, 1, 3 - got);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(3, batch.Lengths[i]);
                Assert.Equal(got + 1, batch.Buffers[i][0]);
                Assert.Equal(client.LocalEndPoint, Endpoints.ToEndPoint(batch.Addresses![i]));
                got++;
            }
        }
        Assert.Equal(3, got);

        Assert.True(bind.Send([9, 9], batch.Addresses![0]));
        var buffer = new byte[16];
        client.ReceiveTimeout = 5000;
        Assert.Equal(2, client.Receive(buffer));

        // The same endpoint, given as wg would (plain IPv4), reaches the client too.
        Assert.True(bind.Send([7], bind.ToSocketAddress((IPEndPoint)client.LocalEndPoint!)));
        Assert.Equal(1, client.Receive(buffer));
    }

    [Fact]
    public void A_batch_send_arrives_as_separate_datagrams_in_order_to_each_destination()
    {
        using var bind = SocketBind.Open(0);
        using var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var b = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        a.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        b.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        a.ReceiveTimeout = b.ReceiveTimeout = 5000;
        var toA = bind.ToSocketAddress((IPEndPoint)a.LocalEndPoint!);
        var toB = bind.ToSocketAddress((IPEndPoint)b.LocalEndPoint!);

        // Five equal-sized to A then a short one (one GSO run), two to B, one more to A.
        var batch = new PacketBatch(9);
        int[] sizes = [1200, 1200, 1200, 1200, 1200, 300, 1200, 80, 64];
        SocketAddress[] targets = [toA, toA, toA, toA, toA, toA, toB, toB, toA];
        var outgoing = new OutgoingDatagram[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
        {
            batch.Buffers[i].AsSpan(0, sizes[i]).Fill((byte)(i + 1));
            outgoing[i] = new OutgoingDatagram { Buffer = batch.Buffers[i], Length = sizes[i], Destination = targets[i] };
        }
        Assert.Equal(0, bind.SendBatch(outgoing));

        var buffer = new byte[70000];
        foreach (int i in new[] { 0, 1, 2, 3, 4, 5, 8 })
        {
            int n = a.Receive(buffer);
            Assert.Equal(sizes[i], n);
            Assert.True(buffer.AsSpan(0, n).IndexOfAnyExcept((byte)(i + 1)) < 0, $"datagram {i} content");
        }
        foreach (int i in new[] { 6, 7 })
        {
            int n = b.Receive(buffer);
            Assert.Equal(sizes[i], n);
            Assert.Equal(i + 1, buffer[0]);
        }
        Assert.True(bind.UsesGso, "UDP GSO was refused on loopback");
    }

    [Fact]
    public void A_refused_gso_send_falls_back_for_that_send_only_and_gso_stays_on()
    {
        using var bind = SocketBind.Open(0);
        // SO_NO_CHECK (UDP without checksums over IPv4): the kernel refuses every GSO send with EINVAL
        // (udp_send_skb), plain sends still work. The same happens to one oversized run on a small-MTU path.
        bind.Socket.SetRawSocketOption(1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, BitConverter.GetBytes(1));
        using var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        a.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        a.ReceiveTimeout = 5000;
        var toA = bind.ToSocketAddress((IPEndPoint)a.LocalEndPoint!);
        var batch = new PacketBatch(4);
        var outgoing = new OutgoingDatagram[4];
        for (int i = 0; i < 4; i++)
        {
            batch.Buffers[i].AsSpan(0, 1000).Fill((byte)(i + 1));
            outgoing[i] = new OutgoingDatagram { Buffer = batch.Buffers[i], Length = 1000, Destination = toA };
        }
        for (int round = 0; round < 2; round++)
        {
            Assert.Equal(0, bind.SendBatch(outgoing));
            var buffer = new byte[2048];
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal(1000, a.Receive(buffer));
                Assert.Equal(i + 1, buffer[0]);
            }
        }
        Assert.Equal(2, bind.GsoFallbacks); // each batch tried GSO, fell back for itself
        Assert.True(bind.UsesGso, "one refused send switched GSO off for good");
    }

    [Fact]
    public void A_gso_run_received_with_gro_splits_back_into_the_same_datagrams()
    {
        using var sender = SocketBind.Open(0);
        using var receiver = SocketBind.Open(0);
        var to = sender.ToSocketAddress(new IPEndPoint(IPAddress.Loopback, receiver.Port));
        var batch = new PacketBatch(20);
        var outgoing = new OutgoingDatagram[20];
        for (int i = 0; i < 20; i++)
        {
            int size = i == 19 ? 100 : 1000;
            batch.Buffers[i].AsSpan(0, size).Fill((byte)(i + 1));
            outgoing[i] = new OutgoingDatagram { Buffer = batch.Buffers[i], Length = size, Destination = to };
        }
        Assert.Equal(0, sender.SendBatch(outgoing));

        var received = new List<byte[]>();
        var rx = new PacketBatch(8, withAddresses: true);
        var sw = Stopwatch.StartNew();
        while (received.Count < 20 && sw.Elapsed < TimeSpan.FromSeconds(5))
        {
            int n = receiver.Receive(rx);
            for (int i = 0; i < n; i++)
            {
                int segment = rx.SegmentSizes[i] > 0 ? rx.SegmentSizes[i] : rx.Lengths[i];
                for (int offset = 0; offset < rx.Lengths[i]; offset += segment)
                    received.Add(rx.Buffers[i].AsSpan(offset, Math.Min(segment, rx.Lengths[i] - offset)).ToArray());
            }
        }
        Assert.Equal(20, received.Count);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(i == 19 ? 100 : 1000, received[i].Length);
            Assert.True(received[i].AsSpan().IndexOfAnyExcept((byte)(i + 1)) < 0, $"datagram {i}");
        }
    }

    [Fact]
    public void Dispose_wakes_a_blocked_receive()
    {
        var bind = SocketBind.Open(0);
        var batch = new PacketBatch(1, withAddresses: true);
        int result = -1;
        var thread = new Thread(() => result = bind.Receive(batch));
        thread.Start();
        Thread.Sleep(100); // let it block (the assertion below does not depend on this)
        bind.Dispose();
        Assert.True(thread.Join(TimeSpan.FromSeconds(5)), "Receive did not return after Dispose");
        Assert.Equal(0, result);
    }

    [Fact]
    public void A_taken_port_is_refused()
    {
        using var first = SocketBind.Open(0);
        var e = Assert.Throws<SocketException>(() => SocketBind.Open(first.Port));
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
    }

    [Fact]
    public void Source_bytes_are_the_address_and_port_with_mapped_ipv4_unmapped()
    {
        var raw = new IPEndPoint(IPAddress.Parse("198.18.0.7").MapToIPv6(), 0x1234).Serialize();
        Span<byte> bytes = stackalloc byte[Endpoints.MaxSourceBytes];
        int n = Endpoints.WriteSourceBytes(raw, bytes);
        Assert.Equal(new byte[] { 198, 18, 0, 7, 0x12, 0x34 }, bytes[..n].ToArray());
        Assert.Equal(MkbVpn.WireGuard.Protocol.MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.18.0.7"), 0x1234)), bytes[..n].ToArray());
    }
}
