using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Device;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Device;

public sealed class DeviceTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);

    [Fact]
    public void Two_devices_handshake_and_exchange_packets_both_ways()
    {
        using var pair = new DevicePair();
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within), "B did not get A's packet");

        byte[] pong = DevicePair.Ipv4(DevicePair.TunnelB, DevicePair.TunnelA, payload: 1000, fill: 2);
        pair.TunB.Inject(pong);
        Assert.True(DevicePair.Receives(pair.TunA, pong, Within), "A did not get B's reply (B learnt A's endpoint from the handshake)");

        // wg show on either side: a handshake, and what one sent the other received, byte for byte.
        Assert.True(DevicePair.Eventually(() =>
            DevicePair.Status(pair.A).SentBytes == DevicePair.Status(pair.B).ReceivedBytes &&
            DevicePair.Status(pair.B).SentBytes == DevicePair.Status(pair.A).ReceivedBytes, Within));
        PeerStatus a = DevicePair.Status(pair.A);
        Assert.NotNull(a.LastHandshake);
        Assert.NotNull(DevicePair.Status(pair.B).LastHandshake);
        Assert.Equal(148 + 16 + 64 + 16, a.SentBytes); // initiation, then the queued 60-byte packet (padded to 64) with header and tag
        Assert.Equal(new IPEndPoint(DevicePair.UnderlayA, 51820), DevicePair.Status(pair.B).Endpoint);
    }

    [Fact]
    public void Packets_queued_before_the_handshake_are_all_delivered()
    {
        using var pair = new DevicePair();
        var packets = Enumerable.Range(0, 10).Select(i => DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: (byte)i)).ToList();
        foreach (byte[] p in packets)
            pair.TunA.Inject(p);
        foreach (byte[] p in packets)
            Assert.True(DevicePair.Receives(pair.TunB, p, Within));
    }

    [Fact]
    public void A_removed_peer_is_no_longer_served()
    {
        using var pair = new DevicePair();
        byte[] first = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(first);
        Assert.True(DevicePair.Receives(pair.TunB, first, Within));

        pair.B.RemovePeer(pair.PeerAOnB);
        Assert.Empty(pair.B.Snapshot());
        long unknownBefore = Interlocked.Read(ref pair.B.Counters.UnknownIndex);
        byte[] second = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 2);
        pair.TunA.Inject(second);
        Assert.True(DevicePair.Eventually(() => Interlocked.Read(ref pair.B.Counters.UnknownIndex) > unknownBefore, Within));
        Assert.False(pair.TunB.Delivered.TryTake(out _, TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public void A_peer_that_changes_its_source_port_is_followed()
    {
        using var pair = new DevicePair(bKnowsA: true);
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within));

        pair.B.SetListenPort(0); // B's source port changes (NAT rebinding)
        int newPort = pair.B.ListenPort;
        Assert.NotEqual(51821, newPort);
        byte[] fromNewPort = DevicePair.Ipv4(DevicePair.TunnelB, DevicePair.TunnelA, fill: 2);
        pair.TunB.Inject(fromNewPort);
        Assert.True(DevicePair.Receives(pair.TunA, fromNewPort, Within));
        Assert.Equal(new IPEndPoint(DevicePair.UnderlayB, newPort), DevicePair.Status(pair.A).Endpoint);

        byte[] back = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 3);
        pair.TunA.Inject(back);
        Assert.True(DevicePair.Receives(pair.TunB, back, Within), "A answers at B's new port");
    }

    [Fact]
    public void Switching_persistent_keepalive_on_handshakes_at_once()
    {
        using var pair = new DevicePair();
        Assert.Null(DevicePair.Status(pair.B).LastHandshake);
        pair.A.SetPersistentKeepalive(pair.PeerBOnA, TimeSpan.FromSeconds(25));
        Assert.True(DevicePair.Eventually(() => DevicePair.Status(pair.B).LastHandshake is not null && DevicePair.Status(pair.A).LastHandshake is not null, Within));
        Assert.Equal(TimeSpan.FromSeconds(25), DevicePair.Status(pair.A).PersistentKeepalive);
    }

    [Fact]
    public void A_packet_from_a_source_outside_the_allowed_ips_is_dropped()
    {
        using var pair = new DevicePair();
        byte[] ok = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ok);
        Assert.True(DevicePair.Receives(pair.TunB, ok, Within));
        // A routes 203.0.113.2 to B, but B only accepts 203.0.113.1 from A.
        byte[] spoofed = DevicePair.Ipv4(IPAddress.Parse("203.0.113.99"), DevicePair.TunnelB, fill: 2);
        pair.TunA.Inject(spoofed);
        Assert.True(DevicePair.Eventually(() => Interlocked.Read(ref pair.B.Counters.SourceNotAllowed) == 1, Within));
        Assert.False(pair.TunB.Delivered.TryTake(out _, TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public void Garbage_datagrams_are_counted_and_the_peer_still_works()
    {
        using var pair = new DevicePair();
        var attacker = new IPEndPoint(IPAddress.Parse("198.18.0.66"), 4444);
        var target = new IPEndPoint(DevicePair.UnderlayB, 51821);
        var rng = new Random(7);
        int[] sizes = [0, 1, 3, 4, 31, 32, 33, 64, 92, 147, 148, 149, 500];
        for (int i = 0; i < 3000; i++)
        {
            var d = new byte[sizes[i % sizes.Length]];
            rng.NextBytes(d);
            if (d.Length >= 4 && i % 2 == 0)
            {
                d[0] = (byte)(1 + i % 4); // a plausible type
                d[1] = d[2] = d[3] = 0;
            }
            while (!pair.Network.Deliver(d, attacker, target))
                Thread.Sleep(1); // bounded queue full: let the device drain
        }
        Assert.True(DevicePair.Eventually(() => pair.B.Counters.Dropped >= 3000, Within), pair.B.Counters.ToString());

        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within));
    }

    [Fact]
    public void A_new_private_key_restarts_sessions_but_keeps_counters()
    {
        using var pair = new DevicePair();
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within));
        long sent = DevicePair.Status(pair.A).SentBytes;
        pair.A.SetPrivateKey(pair.KeyA); // the same key again (wg setconf): nothing changes
        Assert.Same(pair.PeerBOnA.Tunnel, pair.PeerBOnA.Tunnel);
        Assert.True(pair.PeerBOnA.Tunnel!.HasSession);
        pair.A.SetPrivateKey(WireGuardKeys.NewPrivateKey());
        Assert.False(pair.PeerBOnA.Tunnel!.HasSession);
        Assert.Equal(sent, DevicePair.Status(pair.A).SentBytes);
        Assert.NotNull(pair.A.PublicKey);
        Assert.False(CryptographicOperations.FixedTimeEquals(pair.A.PublicKey!.Bytes, WireGuardKeys.PublicKeyOf(pair.KeyA).Bytes));
    }
}
