using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Device;

public sealed class DeviceAttackTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);

    [Fact]
    public void Replayed_transport_packets_and_initiations_are_refused()
    {
        using var pair = new DevicePair();
        var seen = new ConcurrentQueue<byte[]>();
        pair.Network.Tap = (data, from, to) =>
        {
            if (to.Address.Equals(DevicePair.UnderlayB))
                seen.Enqueue(data);
        };
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within));
        pair.Network.Tap = null;

        byte[] initiation = Assert.Single(seen, d => d[0] == 1);
        byte[] data = Assert.Single(seen, d => d[0] == 4);
        long handshakeErrors = pair.PeerAOnB.Tunnel!.Counters.Errors(TunnelError.HandshakeFailed);
        long replays = pair.PeerAOnB.Tunnel!.Counters.Errors(TunnelError.Replay);
        var from = new IPEndPoint(DevicePair.UnderlayA, 51820);
        var to = new IPEndPoint(DevicePair.UnderlayB, 51821);
        Assert.True(pair.Network.Deliver(data, from, to));
        Assert.True(pair.Network.Deliver(initiation, from, to));

        Assert.True(DevicePair.Eventually(() =>
            pair.PeerAOnB.Tunnel!.Counters.Errors(TunnelError.Replay) == replays + 1 &&
            pair.PeerAOnB.Tunnel!.Counters.Errors(TunnelError.HandshakeFailed) == handshakeErrors + 1, Within));
        Assert.False(pair.TunB.Delivered.TryTake(out _, TimeSpan.FromMilliseconds(100)), "a replayed packet was delivered");
        // The session is untouched: traffic still flows.
        byte[] next = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 2);
        pair.TunA.Inject(next);
        Assert.True(DevicePair.Receives(pair.TunB, next, Within));
    }

    [Fact]
    public void A_handshake_flood_turns_on_cookies_and_a_legitimate_peer_still_connects()
    {
        using var pair = new DevicePair();
        WireGuardKey publicB = WireGuardKeys.PublicKeyOf(pair.KeyB);
        // Initiations with a valid mac1 (the attacker knows B's public key) from identities B does not know.
        var flood = new List<byte[]>();
        for (int i = 0; i < 64; i++)
        {
            using var identity = new StaticIdentity(WireGuardKeys.NewPrivateKey());
            using var tunnel = new Tunnel(identity, publicB, null, TimeProvider.System, RandomNumberGenerator.Create());
            var buffer = new byte[HandshakeInitiation.Size];
            Assert.Equal(TunnelResultKind.WriteToNetwork, tunnel.Encapsulate([], buffer).Kind);
            flood.Add(buffer);
        }
        var attacker = new IPEndPoint(IPAddress.Parse("198.18.0.66"), 6666);
        var target = new IPEndPoint(DevicePair.UnderlayB, 51821);
        using var stop = new CancellationTokenSource();
        var flooder = new Thread(() =>
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20); // bounded even if the test fails
            for (int i = 0; !stop.IsCancellationRequested && DateTime.UtcNow < deadline; i++)
            {
                pair.Network.Deliver(flood[i % flood.Count], attacker, target);
                // Bursts of mac1-valid initiations that land at once, far above the 128-deep backlog that means
                // "under load", whatever the host's speed: 500 every 20 ms until B answers with cookies, then
                // 300 every 400 ms, which keeps B under load (it stays so for a second after a backlog) while
                // leaving the queue room for a legitimate retry between bursts.
                bool cookies = Interlocked.Read(ref pair.B.Counters.CookiesSent) > 0;
                int burst = cookies ? 300 : 500;
                if (i % burst == burst - 1)
                    Thread.Sleep(cookies ? 400 : 20);
            }
        });
        flooder.Start();
        try
        {
            Assert.True(DevicePair.Eventually(() => Interlocked.Read(ref pair.B.Counters.CookiesSent) > 0, Within), "no cookie replies under load");

            // A's first initiation is answered with a cookie reply; its retransmission carries mac2 and gets through.
            byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
            pair.TunA.Inject(ping);
            Assert.True(DevicePair.Receives(pair.TunB, ping, TimeSpan.FromSeconds(15)), "the legitimate peer could not connect during the flood");
            Assert.NotNull(DevicePair.Status(pair.A).LastHandshake);
        }
        finally
        {
            stop.Cancel();
            flooder.Join();
        }
    }
}
