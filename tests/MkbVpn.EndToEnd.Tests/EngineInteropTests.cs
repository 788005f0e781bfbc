using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// mkb-vpn's own userspace engine (<c>mkb-vpn engine IFACE</c>) against Debian's wireguard-go, each in its
/// own network namespace, configured only with the stock wg(8) (see <see cref="EngineTestbed"/>).
/// </summary>
public sealed partial class EngineInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static void AssertPingsBothWays(EngineTestbed tb, bool oursFirst)
    {
        var (first, second) = oursFirst ? (tb.NsOurs, tb.NsTheirs) : (tb.NsTheirs, tb.NsOurs);
        var (firstTarget, secondTarget) = oursFirst ? (EngineTestbed.TheirsTunnel, EngineTestbed.OursTunnel) : (EngineTestbed.OursTunnel, EngineTestbed.TheirsTunnel);
        var (firstTarget6, secondTarget6) = oursFirst ? (EngineTestbed.TheirsTunnel6, EngineTestbed.OursTunnel6) : (EngineTestbed.OursTunnel6, EngineTestbed.TheirsTunnel6);
        Assert.True(tb.PingEventually(first, firstTarget), $"no IPv4 ping from {first} to {firstTarget}");
        Assert.True(tb.Ping(second, secondTarget), $"no IPv4 ping back from {second}");
        Assert.True(tb.PingEventually(first, firstTarget6, 5), $"no IPv6 ping from {first}");
        Assert.True(tb.Ping(second, secondTarget6), $"no IPv6 ping back from {second}");
    }

    // wg show on our interface reports the same handshake and exact byte counts as the far side sees.
    private void AssertCountersAgree(EngineTestbed tb)
    {
        (long Handshake, long Rx, long Tx, string Endpoint) ours = default, theirs = default;
        bool agree = Shell.WaitFor(() =>
        {
            ours = tb.PeerState(tb.NsOurs, tb.IfOurs);
            theirs = tb.PeerState(tb.NsTheirs, tb.IfTheirs);
            return ours.Rx == theirs.Tx && ours.Tx == theirs.Rx;
        }, Deadline, TimeSpan.FromMilliseconds(200)) is not null;
        output.WriteLine($"ours: handshake {ours.Handshake} rx {ours.Rx} tx {ours.Tx}; wireguard-go: handshake {theirs.Handshake} rx {theirs.Rx} tx {theirs.Tx}");
        Assert.True(agree, $"byte counters disagree: ours rx {ours.Rx} tx {ours.Tx}, wireguard-go rx {theirs.Rx} tx {theirs.Tx}");
        Assert.True(ours.Rx > 0 && ours.Tx > 0);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(ours.Handshake, now - 60, now + 1);
        Assert.InRange(Math.Abs(ours.Handshake - theirs.Handshake), 0, 2);
    }

    [Fact]
    public void Our_engine_initiates_to_wireguard_go_ipv4_underlay()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: true);
        AssertPingsBothWays(tb, oursFirst: true);
        AssertCountersAgree(tb);
        string show = tb.InOk(tb.NsOurs, "wg", "show", tb.IfOurs);
        output.WriteLine(show);
        Assert.Contains("latest handshake: ", show);
        Assert.Matches(@"transfer: [\d.]+ \w?i?B received, [\d.]+ \w?i?B sent", show);
        Assert.Contains($"endpoint: {EngineTestbed.TheirsUnderlay}:{EngineTestbed.TheirsPort}", show);
        Assert.Contains($"listening port: {EngineTestbed.OursPort}", show);
    }

    [Fact]
    public void Wireguard_go_initiates_to_our_engine_ipv6_underlay()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: false, ipv6Underlay: true);
        AssertPingsBothWays(tb, oursFirst: false);
        AssertCountersAgree(tb);
        // We learnt wireguard-go's endpoint from its handshake, over IPv6.
        Assert.Equal($"[{EngineTestbed.TheirsUnderlay6}]:{EngineTestbed.TheirsPort}", tb.PeerState(tb.NsOurs, tb.IfOurs).Endpoint);
    }

    [Fact]
    public void Removing_the_peer_with_wg_set_stops_service_at_once()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: false);
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel));

        tb.InOk(tb.NsOurs, "wg", "set", tb.IfOurs, "peer", tb.TheirsPublic, "remove");
        Assert.Equal(0, tb.PeerCount(tb.NsOurs, tb.IfOurs));
        for (int i = 0; i < 3; i++)
            Assert.False(tb.Ping(tb.NsTheirs, EngineTestbed.OursTunnel), "a removed peer was still served");
        Assert.False(tb.Ping(tb.NsOurs, EngineTestbed.TheirsTunnel), "traffic still routed to a removed peer");
    }

    [Fact]
    public void Switching_persistent_keepalive_on_handshakes_at_once()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: true);
        Assert.Equal(0, tb.PeerState(tb.NsOurs, tb.IfOurs).Handshake);
        tb.InOk(tb.NsOurs, "wg", "set", tb.IfOurs, "peer", tb.TheirsPublic, "persistent-keepalive", "25");
        // No traffic at all: the keepalive sent at once starts the handshake (mkb-vpn's fast recovery relies on it).
        Assert.NotNull(Shell.WaitFor(() => tb.PeerState(tb.NsTheirs, tb.IfTheirs).Handshake != 0, TimeSpan.FromSeconds(5)));
        Assert.NotEqual(0, tb.PeerState(tb.NsOurs, tb.IfOurs).Handshake);
        Assert.Contains("persistent keepalive: every 25 seconds", tb.InOk(tb.NsOurs, "wg", "show", tb.IfOurs));
    }

    [Fact]
    public void A_peer_that_changes_its_source_port_and_address_is_followed()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: false);
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel));
        Assert.Equal($"{EngineTestbed.TheirsUnderlay}:{EngineTestbed.TheirsPort}", tb.PeerState(tb.NsOurs, tb.IfOurs).Endpoint);

        const int newPort = 51999;
        tb.InOk(tb.NsTheirs, "wg", "set", tb.IfTheirs, "listen-port", newPort.ToString(CultureInfo.InvariantCulture));
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel), "no ping from the new port");
        Assert.Equal($"{EngineTestbed.TheirsUnderlay}:{newPort}", tb.PeerState(tb.NsOurs, tb.IfOurs).Endpoint);
        Assert.True(tb.Ping(tb.NsOurs, EngineTestbed.TheirsTunnel), "we do not answer at the new port");

        // Now its address changes too: the old underlay subnet goes away and it reaches us over another.
        tb.InOk(tb.NsOurs, "ip", "addr", "add", "198.18.70.1/24", "dev", "veo" + tb.Id);
        tb.InOk(tb.NsTheirs, "ip", "addr", "add", "198.18.70.3/24", "dev", "vet" + tb.Id);
        tb.InOk(tb.NsTheirs, "ip", "addr", "del", EngineTestbed.TheirsUnderlay + "/24", "dev", "vet" + tb.Id);
        tb.InOk(tb.NsTheirs, "wg", "set", tb.IfTheirs, "peer", tb.OursPublic, "endpoint", $"198.18.70.1:{EngineTestbed.OursPort}");
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel), "no ping from the new address");
        Assert.Equal($"198.18.70.3:{newPort}", tb.PeerState(tb.NsOurs, tb.IfOurs).Endpoint);
        Assert.True(tb.Ping(tb.NsOurs, EngineTestbed.TheirsTunnel6), "we do not answer at the new address");
    }

    [Fact]
    public void The_engine_exits_cleanly_when_its_interface_or_socket_goes()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        int pid = tb.OursPid() ?? throw new InvalidOperationException("engine process not found");
        tb.InOk(tb.NsOurs, "ip", "link", "del", tb.IfOurs);
        Assert.NotNull(Shell.WaitFor(() => !Directory.Exists($"/proc/{pid}") || File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal), Deadline));
        Assert.NotNull(Shell.WaitFor(() => !File.Exists(EngineTestbed.SocketOf(tb.IfOurs)), Deadline));

        tb.StartOurs();
        pid = tb.OursPid() ?? throw new InvalidOperationException("engine process not found");
        File.Delete(EngineTestbed.SocketOf(tb.IfOurs));
        Assert.NotNull(Shell.WaitFor(() => !Directory.Exists($"/proc/{pid}") || File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal), Deadline));
        Assert.NotNull(Shell.WaitFor(() => tb.In(tb.NsOurs, "ip", "link", "show", tb.IfOurs).ExitCode != 0, Deadline));

        tb.StartOurs();
        pid = tb.OursPid() ?? throw new InvalidOperationException("engine process not found");
        Shell.Check("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));
        Assert.NotNull(Shell.WaitFor(() => !Directory.Exists($"/proc/{pid}") || File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal), Deadline));
        Assert.False(File.Exists(EngineTestbed.SocketOf(tb.IfOurs)), "SIGTERM left the socket behind");
    }

    [Fact]
    public void A_second_engine_on_the_same_interface_is_refused()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        var r = tb.In(tb.NsOurs, EngineTestbed.MkbVpn, "engine", "--foreground", tb.IfOurs);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("error", r.StdErr, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, tb.In(tb.NsOurs, "wg", "show", tb.IfOurs).ExitCode);
    }

    [Fact]
    public void Iperf3_tcp_runs_both_directions()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: true);
        Assert.True(tb.PingEventually(tb.NsOurs, EngineTestbed.TheirsTunnel));
        foreach (bool reverse in new[] { false, true })
        {
            var run = tb.Iperf3(reverse, seconds: 3, TimeSpan.FromSeconds(30));
            Assert.NotNull(run);
            var client = run!;
            double bps = ReceivedBitsPerSecond().Matches(client.StdOut).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).LastOrDefault();
            output.WriteLine($"iperf3 {(reverse ? "wireguard-go -> ours" : "ours -> wireguard-go")}: {bps / 1e6:0} Mbit/s");
            Assert.True(bps > 0, client.ToString());
        }
    }

    [Fact]
    public void The_service_runs_on_our_engine_and_recovers_a_reenabled_client_at_once()
    {
        // mkb-vpn up with MKB_VPN_ENGINE = scripts/mkb-vpn-engine (the service runs 'ENGINE IFACE'); a real
        // client (wg-quick + wireguard-go) from the config 'add' wrote; block and reenable.
        string engine = RepoFile("scripts/mkb-vpn-engine");
        using var tb = new Testbed();
        var env = new Dictionary<string, string> { ["MKB_VPN_ENGINE"] = engine, ["MKB_VPN"] = Testbed.MkbVpn };
        Shell.Result Vpn(params string[] args) =>
            Shell.Run("ip", ["netns", "exec", tb.Server, Testbed.MkbVpn, "--data-dir", tb.DataDir, .. args], TimeSpan.FromSeconds(120), env);
        void VpnOk(params string[] args)
        {
            var r = Vpn(args);
            Assert.True(r.ExitCode == 0, $"mkb-vpn {string.Join(' ', args)}: {r}");
        }

        VpnOk("init", "--endpoint", "198.18.1.1:51820", "--subnet", Testbed.VpnSubnet, "--subnet6", Testbed.VpnSubnet6,
            "--internal-network", Testbed.InternalNetwork, "--dns", "none", "--interface", tb.ServerInterface);
        VpnOk("up");
        Assert.True(File.Exists(EngineTestbed.SocketOf(tb.ServerInterface)));
        Assert.Contains(tb.ServerInterface, File.ReadAllText("/proc/" + ServerEnginePid(tb) + "/cmdline"));
        string a = $"a{tb.Id}";
        VpnOk("add", a, "--no-qr");
        tb.ClientUp(tb.ClientA, Path.Combine(tb.DataDir, "clients", a + ".conf"));
        Assert.NotNull(Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.ServerTunnel), Deadline));
        Assert.True(tb.Ping(tb.ClientA, Testbed.InternalHost), "the client cannot reach the internal host through our engine");
        Assert.True(tb.Ping(tb.ClientA, "fd00:5e:1::1"), "no IPv6 through our engine");

        VpnOk("block", a);
        Assert.False(tb.Ping(tb.ClientA, Testbed.ServerTunnel, 1), "a blocked client is still served");
        VpnOk("reenable", a);
        var recovered = Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.ServerTunnel, 0.2), Deadline, TimeSpan.Zero);
        output.WriteLine($"served again {recovered?.TotalMilliseconds:0} ms after reenable");
        Assert.NotNull(recovered);
        Assert.True(recovered < TimeSpan.FromSeconds(5), $"recovery after reenable took {recovered}");
        VpnOk("down");
        Assert.NotNull(Shell.WaitFor(() => !File.Exists(EngineTestbed.SocketOf(tb.ServerInterface)), Deadline));
    }

    [Fact]
    public void Wg_quick_runs_our_engine_as_its_userspace_implementation()
    {
        using var tb = new EngineTestbed();
        tb.StartTheirs();
        tb.Configure(tb.NsTheirs, tb.IfTheirs,
            $"[Interface]\nPrivateKey = {tb.TheirsPrivate}\nListenPort = {EngineTestbed.TheirsPort}\n\n[Peer]\nPublicKey = {tb.OursPublic}\n" +
            $"AllowedIPs = {EngineTestbed.OursTunnel}/32, {EngineTestbed.OursTunnel6}/128\n",
            EngineTestbed.TheirsTunnel, EngineTestbed.TheirsTunnel6);

        string dir = Directory.CreateTempSubdirectory("mkb-engine-wgquick-").FullName;
        try
        {
            string conf = Path.Combine(dir, tb.IfOurs + ".conf");
            File.WriteAllText(conf,
                $"[Interface]\nPrivateKey = {tb.OursPrivate}\nAddress = {EngineTestbed.OursTunnel}/24, {EngineTestbed.OursTunnel6}/64\n\n" +
                $"[Peer]\nPublicKey = {tb.TheirsPublic}\nEndpoint = {EngineTestbed.TheirsUnderlay}:{EngineTestbed.TheirsPort}\n" +
                $"AllowedIPs = {EngineTestbed.TheirsTunnel}/32, {EngineTestbed.TheirsTunnel6}/128\nPersistentKeepalive = 25\n");
            File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var env = new Dictionary<string, string> { ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = RepoFile("scripts/mkb-vpn-engine"), ["MKB_VPN"] = EngineTestbed.MkbVpn };
            var up = Shell.Run("ip", ["netns", "exec", tb.NsOurs, "wg-quick", "up", conf], TimeSpan.FromSeconds(60), env);
            Assert.True(up.ExitCode == 0, $"wg-quick up: {up}");
            Assert.True(tb.PingEventually(tb.NsOurs, EngineTestbed.TheirsTunnel), "no ping through a wg-quick interface on our engine");
            Assert.True(tb.Ping(tb.NsTheirs, EngineTestbed.OursTunnel6));
            Assert.Contains("persistent keepalive: every 25 seconds", tb.InOk(tb.NsOurs, "wg", "show", tb.IfOurs));

            var down = Shell.Run("ip", ["netns", "exec", tb.NsOurs, "wg-quick", "down", conf], TimeSpan.FromSeconds(60), env);
            Assert.True(down.ExitCode == 0, $"wg-quick down: {down}");
            Assert.NotNull(Shell.WaitFor(() => tb.OursPid() is null && tb.In(tb.NsOurs, "ip", "link", "show", tb.IfOurs).ExitCode != 0, Deadline));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int ServerEnginePid(Testbed tb)
    {
        foreach (string line in Shell.Run("ip", "netns", "pids", tb.Server).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int pid = int.Parse(line, CultureInfo.InvariantCulture);
            if (File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("engine", StringComparison.Ordinal))
                return pid;
        }
        throw new InvalidOperationException("no engine process in the server namespace");
    }

    private static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex("\"sum_received\":\\s*\\{[^}]*\"bits_per_second\":\\s*([0-9.e+]+)")]
    private static partial Regex ReceivedBitsPerSecond();

    [Fact]
    public void Hostile_datagrams_are_dropped_and_the_peer_keeps_working()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        tb.ConfigureBoth(oursInitiates: false);
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel));
        int pid = tb.OursPid() ?? throw new InvalidOperationException("engine process not found");
        long rssBefore = EngineTestbed.RssKiB(pid);

        const int total = 1_000_000;
        var sw = Stopwatch.StartNew();
        EngineTestbed.InNamespace(tb.NsTheirs, () =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(EngineTestbed.TheirsUnderlay), 0));
            var target = new IPEndPoint(IPAddress.Parse(EngineTestbed.OursUnderlay), EngineTestbed.OursPort);
            var rng = new Random(1234);
            int[] sizes = [0, 1, 3, 4, 5, 16, 31, 32, 33, 48, 63, 64, 65, 91, 92, 93, 147, 148, 149, 1420, 1500];
            var datagram = new byte[1500];
            for (int i = 0; i < total; i++)
            {
                int size = sizes[i % sizes.Length];
                Span<byte> d = datagram.AsSpan(0, size);
                rng.NextBytes(d);
                if (size >= 4 && i % 4 != 0)
                {
                    // A plausible header: a known type, zero reserved bytes (exact sizes reach the MAC and index checks).
                    d[0] = (byte)(1 + (i / 4) % 4);
                    d[1] = d[2] = d[3] = 0;
                }
                socket.SendTo(d, SocketFlags.None, target);
                if (i % 50_000 == 0)
                    Thread.Sleep(1); // bounded pace: the veth queue drops rather than the test spinning
            }
        });
        output.WriteLine($"sent {total} hostile datagrams in {sw.Elapsed.TotalSeconds:0.0} s");

        Assert.True(Directory.Exists($"/proc/{pid}"), "the engine died under hostile input");
        Assert.True(tb.PingEventually(tb.NsTheirs, EngineTestbed.OursTunnel, 10), "the legitimate peer stopped working");
        long rssAfter = EngineTestbed.RssKiB(pid);
        output.WriteLine($"engine RSS {rssBefore} KiB before, {rssAfter} KiB after");
        Assert.True(rssAfter - rssBefore < 64 * 1024, $"RSS grew from {rssBefore} to {rssAfter} KiB");
    }
}

public sealed class UapiKeyCheckTests
{
    // The verbs' key check on a userspace interface (UapiDevice.ReadPrivateKey) reads the answer's interface lines and
    // closes the connection at the first peer. Both engines must take that (the rest of their answer unread) and
    // go on answering, and the key must be the one set, with thousands of peers behind it.
    [Fact]
    public void The_key_check_stops_at_the_first_peer_and_both_engines_answer_on()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        tb.StartTheirs();
        var random = new Random(77);
        var peers = Enumerable.Range(0, 3000).Select(i =>
        {
            var key = new byte[32];
            random.NextBytes(key);
            return (MkbVpn.Devices.PeerChange)new MkbVpn.Devices.PeerChange.Upsert(new MkbVpn.Devices.PeerSpec(
                MkbVpn.WireGuard.Protocol.WireGuardKey.FromBytes(key), MkbVpn.WireGuard.Protocol.WireGuardKeys.NewPresharedKey(),
                [IPNetwork.Parse($"fd00:77::{i:x}/128")]));
        }).ToList();
        foreach (var (iface, privateKey) in new[] { (tb.IfOurs, tb.OursPrivate), (tb.IfTheirs, tb.TheirsPrivate) })
        {
            MkbVpn.Devices.IWireGuardDevice device = new MkbVpn.Devices.UapiDevice(iface);
            var key = MkbVpn.WireGuard.Protocol.WireGuardKey.ParseBase64(privateKey);
            device.Apply(new MkbVpn.Devices.DeviceChanges { PrivateKey = key, Peers = peers });
            for (int i = 0; i < 20; i++)
                Assert.Equal(key, device.ReadPrivateKey());
            // Still answering, whole: every peer there.
            Assert.Equal(3000, device.Read().Peers.Count);
            Assert.Equal(key, device.ReadPrivateKey());
        }
    }
}

public sealed class EngineSchedulingTests
{
    // The engine's packet threads run as SCHED_BATCH (Device/ThreadScheduling.cs): their wake-ups do not preempt the
    // thread running on a core. MKB_VPN_ENGINE_SCHEDULER=normal keeps the default policy; anything else is refused.
    private const int SchedOther = 0, SchedBatch = 3;

    [Fact]
    public void The_packet_threads_run_as_batch_and_the_timers_do_not()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs();
        int pid = tb.OursPid() ?? throw new InvalidOperationException("our engine is not running");
        Dictionary<string, int>? policies = null;
        Assert.NotNull(Shell.WaitFor(() =>
        {
            policies = Policies(pid);
            return policies.GetValueOrDefault("wg-tun-read", -1) == SchedBatch && policies.GetValueOrDefault("wg-udp-receive", -1) == SchedBatch;
        }, TimeSpan.FromSeconds(10)));
        Assert.Equal(SchedOther, policies!["wg-timers"]);
        Assert.Equal(SchedOther, policies["wg-handshake-0"]);
    }

    [Fact]
    public void Normal_keeps_every_thread_on_the_default_policy()
    {
        using var tb = new EngineTestbed();
        tb.StartOurs("MKB_VPN_ENGINE_SCHEDULER=normal");
        int pid = tb.OursPid() ?? throw new InvalidOperationException("our engine is not running");
        Dictionary<string, int>? policies = null;
        // The loops name their threads as they start: wait for both, then every thread must be SCHED_OTHER.
        Assert.NotNull(Shell.WaitFor(() =>
        {
            policies = Policies(pid);
            return policies.ContainsKey("wg-tun-read") && policies.ContainsKey("wg-udp-receive");
        }, TimeSpan.FromSeconds(10)));
        Assert.All(policies!, p => Assert.True(p.Value == SchedOther, $"{p.Key}: policy {p.Value}"));
    }

    [Fact]
    public void A_bad_value_is_one_line_and_exit_2_and_no_interface()
    {
        using var tb = new EngineTestbed();
        var r = tb.In(tb.NsOurs, "env", "MKB_VPN_ENGINE_SCHEDULER=fast", EngineTestbed.MkbVpn, "engine", tb.IfOurs);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("mkb-vpn engine: error: MKB_VPN_ENGINE_SCHEDULER is batch or normal, not 'fast'", r.StdErr.Trim());
        Assert.False(File.Exists(EngineTestbed.SocketOf(tb.IfOurs)));
        Assert.NotEqual(0, tb.In(tb.NsOurs, "ip", "link", "show", tb.IfOurs).ExitCode);
    }

    // Thread name -> scheduling policy (field 41 of /proc/PID/task/TID/stat; the fields after the name's closing parenthesis start at 3).
    private static Dictionary<string, int> Policies(int pid)
    {
        var policies = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                string name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                policies[name] = int.Parse(fields[41 - 3], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }
        return policies;
    }
}
