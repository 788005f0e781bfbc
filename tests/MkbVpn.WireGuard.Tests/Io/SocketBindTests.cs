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
