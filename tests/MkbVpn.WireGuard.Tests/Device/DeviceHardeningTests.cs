using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using MkbVpn.WireGuard.Device;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Tests.Device;

/// <summary>Issue 7, in-process: junk floods, pre-shared key rotation, padding on the wire, the drop counters.</summary>
public sealed class DeviceHardeningTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_flood_of_junk_initiations_does_not_make_a_legitimate_peer_pay_a_cookie_round_trip()
    {
        using var pair = new DevicePair();
        var attacker = new IPEndPoint(IPAddress.Parse("198.18.0.66"), 6666);
        var target = new IPEndPoint(DevicePair.UnderlayB, 51821);
        // 148-byte type-1 datagrams without our public key (no valid mac1): what costs an attacker nothing.
        var junk = new byte[64][];
        for (int i = 0; i < junk.Length; i++)
        {
            junk[i] = new byte[HandshakeInitiation.Size];
            Random.Shared.NextBytes(junk[i]);
            junk[i][0] = 1;
            junk[i][1] = junk[i][2] = junk[i][3] = 0;
        }
        long attempted = 0;
        var floodTime = TimeSpan.FromSeconds(5);
        var flooder = new Thread(() =>
        {
            // 500 every 10 ms: 50,000 per second, bounded by time (and therefore by count).
            var sw = Stopwatch.StartNew();
            for (long slot = 0; sw.Elapsed < floodTime; slot++)
            {
                for (int k = 0; k < 500; k++)
                {
                    pair.Network.Deliver(junk[k % junk.Length], attacker, target);
                    attempted++;
                }
                TimeSpan next = TimeSpan.FromMilliseconds(10 * (slot + 1));
                if (next > sw.Elapsed)
                    Thread.Sleep(next - sw.Elapsed);
            }
        });
        var floodClock = Stopwatch.StartNew();
        flooder.Start();
        try
        {
            // Let the flood run a second, so any load meter it could trip is tripped.
            Assert.True(DevicePair.Eventually(() => Interlocked.Read(ref pair.B.Counters.InvalidMac) > 20_000, Within), "the flood did not arrive");
            byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 7);
            var handshake = Stopwatch.StartNew();
            pair.TunA.Inject(ping);
            // A cookie round trip costs the initiator its 5 s retry: a session well before that, with no cookie
            // sent, means none happened (normally well under 1 s; the margin is for a loaded machine).
            Assert.True(DevicePair.Receives(pair.TunB, ping, TimeSpan.FromSeconds(4)), "no session within 4 s during the flood");
            Assert.True(handshake.Elapsed < TimeSpan.FromSeconds(4.5), $"the handshake took {handshake.Elapsed.TotalSeconds:0.0} s");
            Assert.Equal(0, Interlocked.Read(ref pair.B.Counters.CookiesSent));
        }
        finally
        {
            flooder.Join();
        }
        double rate = attempted / floodClock.Elapsed.TotalSeconds;
        Assert.True(attempted >= 200_000, $"only {attempted} junk datagrams sent ({rate:0}/s)");
        Assert.True(Interlocked.Read(ref pair.B.Counters.InvalidMac) > 100_000, "the junk was not counted as dropped");
    }

    [Fact]
    public void A_preshared_key_change_keeps_the_session_and_its_replay_history()
    {
        using var pair = new DevicePair();
        var initiations = new ConcurrentQueue<byte[]>();
        pair.Network.Tap = (data, from, to) =>
        {
            if (data[0] == 1)
                initiations.Enqueue(data);
        };
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, Within));
        byte[] captured = Assert.Single(initiations);
        Tunnel tunnelA = pair.PeerBOnA.Tunnel!, tunnelB = pair.PeerAOnB.Tunnel!;

        WireGuardKey psk = WireGuardKeys.NewPresharedKey();
        pair.A.SetPresharedKey(pair.PeerBOnA, psk);
        pair.B.SetPresharedKey(pair.PeerAOnB, psk);
        Assert.Same(tunnelA, pair.PeerBOnA.Tunnel);
        Assert.Same(tunnelB, pair.PeerAOnB.Tunnel);

        // Traffic goes on without a new handshake.
        byte[] next = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 2);
        pair.TunA.Inject(next);
        Assert.True(DevicePair.Receives(pair.TunB, next, Within));
        Assert.Single(initiations);

        // The initiation captured before the change is still a replay.
        long failed = tunnelB.Counters.Errors(TunnelError.HandshakeFailed);
        Assert.True(pair.Network.Deliver(captured, new IPEndPoint(DevicePair.UnderlayA, 51820), new IPEndPoint(DevicePair.UnderlayB, 51821)));
        Assert.True(DevicePair.Eventually(() => tunnelB.Counters.Errors(TunnelError.HandshakeFailed) == failed + 1, Within));
        Assert.Equal(pair.A.PublicKey, pair.A.PublicKey);
        Assert.Equal(psk, DevicePair.Status(pair.B).PresharedKey);
    }

    [Fact]
    public void A_full_size_packet_is_sent_as_a_datagram_that_fits_a_1500_byte_ipv6_link()
    {
        using var pair = new DevicePair();
        var sizes = new ConcurrentQueue<int>();
        pair.Network.Tap = (data, from, to) =>
        {
            if (data[0] == 4)
                sizes.Enqueue(data.Length);
        };
        byte[] warm = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(warm);
        Assert.True(DevicePair.Receives(pair.TunB, warm, Within));
        sizes.Clear();
        byte[] full = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, payload: 1400, fill: 3); // 1420 bytes, the MTU
        pair.TunA.Inject(full);
        Assert.True(DevicePair.Receives(pair.TunB, full, Within));
        Assert.Equal(1452, Assert.Single(sizes)); // + 48 (IPv6 + UDP) = 1500
    }

    [Fact]
    public void Large_batches_are_encrypted_and_decrypted_over_the_lanes_intact_and_in_order()
    {
        using var pair = new DevicePair(cryptoLanes: 2);
        byte[] warm = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, fill: 1);
        pair.TunA.Inject(warm);
        Assert.True(DevicePair.Receives(pair.TunB, warm, Within));
        // Bursts of 256 distinct packets (batches of 32 on both sides: above the parallel threshold).
        var sent = new List<byte[]>();
        for (int burst = 0; burst < 4; burst++)
            for (int i = 0; i < 256; i++)
            {
                byte[] p = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB, payload: 100 + (i * 7) % 1300, fill: (byte)i);
                p[8] = (byte)burst; // TTL field marks the burst, so every packet is unique
                p[10] = (byte)i;
                sent.Add(p);
                pair.TunA.Inject(p);
            }
        var got = new List<byte[]>();
        var sw = Stopwatch.StartNew();
        while (got.Count < sent.Count && sw.Elapsed < Within)
            if (pair.TunB.Delivered.TryTake(out byte[]? p, TimeSpan.FromMilliseconds(100)))
                got.Add(p);
        Assert.Equal(sent.Count, got.Count);
        for (int i = 0; i < sent.Count; i++)
            Assert.True(sent[i].AsSpan().SequenceEqual(got[i]), $"packet {i} differs or is out of order");
        Assert.Equal(0, Interlocked.Read(ref pair.A.Counters.PeerErrors) + Interlocked.Read(ref pair.B.Counters.PeerErrors));
        // The lanes really were used (batches of 8 or more), on both sides.
        Assert.True(pair.A.ParallelCryptoRuns.Encrypted > 0, "no batch was encrypted over the lanes");
        Assert.True(pair.B.ParallelCryptoRuns.Decrypted > 0, "no run was decrypted over the lanes");
    }

    [Fact]
    public void Drop_counters_are_written_to_the_log_on_request_and_at_exit()
    {
        var log = new StringWriter();
        var network = new ChannelNetwork();
        var device = new MkbVpn.WireGuard.Device.Device(new ChannelTun(), port => network.Open(DevicePair.UnderlayB, port), log: new EngineLog(TextWriter.Synchronized(log)));
        device.SetPrivateKey(WireGuardKeys.NewPrivateKey());
        device.SetListenPort(51821);
        device.Start();
        try
        {
            Assert.True(network.Deliver(new byte[] { 9, 9, 9 }, new IPEndPoint(IPAddress.Parse("198.18.0.9"), 9), new IPEndPoint(DevicePair.UnderlayB, 51821)));
            Assert.True(DevicePair.Eventually(() => Interlocked.Read(ref device.Counters.Malformed) == 1, Within));
            device.LogCounters("SIGUSR1");
            Assert.Contains("drop_counters: SIGUSR1: dropped=1 malformed=1 ", log.ToString());
        }
        finally
        {
            device.Dispose();
        }
        Assert.Contains("drop_counters: stopping: dropped=1 malformed=1 ", log.ToString());
    }
}
