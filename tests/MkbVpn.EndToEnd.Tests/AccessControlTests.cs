using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// Access rules as a user meets them: two internal hosts (198.51.100.2 and .3) with TCP echo
/// services on ports 80 and 443 and a UDP echo on 53; clients in two groups and one with a rule of
/// its own, loaded with wg-quick from the files 'add' wrote; the whole reachability matrix checked
/// from the clients and against 'access check'; a rule granted and revoked live while another
/// user's TCP connection keeps flowing; least privilege; expiry applied by the running service;
/// the audit log.
/// </summary>
public sealed class AccessControlTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private const string Host2 = "198.51.100.2", Host3 = "198.51.100.3";
    private static readonly (string Host, string Service)[] Services =
    [
        (Host2, "80/tcp"), (Host2, "443/tcp"), (Host2, "53/udp"),
        (Host3, "80/tcp"), (Host3, "443/tcp"), (Host3, "53/udp"),
    ];

    [Theory]
    [InlineData("builtin")]
    [InlineData("wireguard-go")]
    public void Rules_decide_who_reaches_what_live_and_per_element(string engine)
    {
        using var tb = new Testbed { Engine = engine };
        tb.AddClientC();
        Shell.Check("ip", "-n", tb.Internal, "address", "add", $"{Host3}/24", "dev", "i1");
        foreach (var (host, service) in Services)
        {
            var (port, proto) = (service.Split('/')[0], service.Split('/')[1]);
            string listen = proto == "tcp" ? $"TCP-LISTEN:{port},bind={host},fork,reuseaddr" : $"UDP-RECVFROM:{port},bind={host},fork";
            tb.Spawn(tb.Internal, ["socat", listen, "EXEC:cat"]);
        }
        tb.InitServer();
        var daemon = tb.Spawn(tb.Server, [Testbed.MkbVpn, "--data-dir", tb.DataDir, "up", "--foreground"],
            new Dictionary<string, string> { ["MKB_VPN_ENGINE"] = engine });
        Assert.NotNull(Shell.WaitFor(() => tb.ServerPeers() is not null && Shell.Run("ip", "-n", tb.Server, "link", "show", tb.ServerInterface).ExitCode == 0, Deadline));
        Assert.NotNull(Shell.WaitFor(() => Shell.Run("ip", "netns", "exec", tb.Server, "nft", "list", "chain", "inet", "mkb_vpn", "access").ExitCode == 0, Deadline));
        Assert.True(Shell.WaitFor(() => ListenersUp(tb), Deadline) is not null, "the internal services did not start");

        string a = $"a{tb.Id}", b = $"b{tb.Id}", c = $"c{tb.Id}";
        tb.VpnOk("group", "add", "staff");
        tb.VpnOk("group", "add", "accounting", "--description", "Bookkeeping");
        tb.VpnOk("add", a, "--group", "staff", "--no-qr");
        tb.VpnOk("add", b, "--group", "accounting", "--no-qr");
        tb.VpnOk("add", c, "--no-qr");
        tb.VpnOk("access", "allow", "group:accounting", Host3, "--port", "443", "--proto", "tcp");
        tb.VpnOk("access", "allow", "group:staff", "internal");
        tb.VpnOk("access", "allow", $"client:{c}", Host2, "--port", "80", "--proto", "tcp");
        tb.VpnOk("access", "allow", $"client:{c}", Host2, "--port", "53", "--proto", "udp");
        var clients = new[] { (tb.ClientA, a), (tb.ClientB, b), (tb.ClientC, c) };
        foreach (var (ns, name) in clients)
            tb.ClientUp(ns, Path.Combine(tb.DataDir, "clients", name + ".conf"));
        foreach (var (ns, _) in clients)
            Assert.NotNull(Shell.WaitFor(() => tb.Ping(ns, Testbed.ServerTunnel), Deadline));

        // Before least privilege: 'everyone -> internal' (from init) lets everybody reach everything.
        foreach (var (ns, name) in clients)
            Assert.True(Probe(tb, ns, Host3, "80/tcp"), $"{name} cannot reach {Host3}:80 while everyone -> internal holds");

        // Least privilege: revoke the seed's rules.
        var rules = JsonDocument.Parse(tb.VpnOk("access", "list", "--json")).RootElement.EnumerateArray().ToList();
        foreach (var r in rules.Where(r => r.GetProperty("who").GetString() == "everyone"))
            tb.VpnOk("access", "revoke", r.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));

        var allowed = new Dictionary<string, HashSet<string>>
        {
            [a] = [.. Services.Select(s => $"{s.Host}:{s.Service}")],
            [b] = [$"{Host3}:443/tcp"],
            [c] = [$"{Host2}:80/tcp", $"{Host2}:53/udp"],
        };
        foreach (var (ns, name) in clients)
        {
            foreach (var (host, service) in Services)
            {
                bool expected = allowed[name].Contains($"{host}:{service}");
                // A dropped service never answers; an allowed one may be slow on a loaded host: it gets three tries.
                bool reached = Probe(tb, ns, host, service) || (expected && (Probe(tb, ns, host, service, 2) || Probe(tb, ns, host, service, 2)));
                Assert.True(expected == reached, $"{name} -> {host}:{service}: expected {(expected ? "reachable" : "blocked")}");
                var check = tb.Vpn("access", "check", name, $"{host}:{service}");
                Assert.True(expected == (check.ExitCode == 0), $"access check {name} {host}:{service} says {check.StdOut.Trim()}");
            }
        }
        // Nothing reaches the server's own address any more except what a rule allows.
        Assert.False(tb.Ping(tb.ClientB, Testbed.ServerTunnel, 0.5), "b still pings the server after 'everyone -> server' was revoked");

        // b's established TCP connection keeps flowing while c is granted and revoked access to the same service.
        var flow = tb.Spawn(tb.ClientB, ["bash", "-c",
            $"exec 3<>/dev/tcp/{Host3}/443; for i in $(seq 1 150); do echo line$i >&3; read -t 2 l <&3 || {{ echo LOST $i; exit 1; }}; echo $l; sleep 0.05; done"]);
        var lines = new List<string>();
        flow.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        flow.BeginOutputReadLine();
        Assert.NotNull(Shell.WaitFor(() => { lock (lines) return lines.Count >= 5; }, Deadline));

        var sw = Stopwatch.StartNew();
        var added = JsonDocument.Parse(tb.VpnOk("access", "allow", $"client:{c}", Host3, "--port", "443", "--proto", "tcp", "--json")).RootElement;
        var granted = FirstProbe(() => Probe(tb, tb.ClientC, Host3, "443/tcp", 0.3), TimeSpan.FromSeconds(15));
        Assert.NotNull(granted);
        output.WriteLine($"[{engine}] grant: reachable {sw.ElapsedMilliseconds} ms after 'access allow' started ({granted!.Value.TotalMilliseconds:0} ms after it returned)");

        tb.VpnOk("access", "revoke", added.GetProperty("rule").GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
        var revoked = FirstProbe(() => !Probe(tb, tb.ClientC, Host3, "443/tcp", 0.3), TimeSpan.FromSeconds(15));
        Assert.NotNull(revoked);
        output.WriteLine($"[{engine}] revoke: unreachable {revoked!.Value.TotalMilliseconds:0} ms after 'access revoke' returned");

        // Moving c into accounting is one map element; c now reaches what accounting reaches, a is untouched.
        tb.VpnOk("set", c, "--group", "accounting");
        var moved = FirstProbe(() => Probe(tb, tb.ClientC, Host3, "443/tcp", 0.3), TimeSpan.FromSeconds(15));
        Assert.NotNull(moved);
        output.WriteLine($"[{engine}] group change: reachable {moved!.Value.TotalMilliseconds:0} ms after 'set --group' returned");
        Assert.True(Probe(tb, tb.ClientA, Host2, "53/udp"));

        Assert.True(flow.WaitForExit(TimeSpan.FromSeconds(30)), "b's connection loop did not finish");
        // With a timeout, WaitForExit returns before the last redirected lines are delivered; without one it waits for them.
        flow.WaitForExit();
        lock (lines)
        {
            Assert.DoesNotContain(lines, l => l.StartsWith("LOST", StringComparison.Ordinal));
            Assert.Equal(150, lines.Count);
        }
        Assert.Equal(0, flow.ExitCode);

        // Expiry a few seconds ahead: the running service blocks c by itself and logs it.
        tb.VpnOk("set", c, "--expires", "3s");
        var blocked = Shell.WaitFor(() => tb.ServerPeers().Count == 2, TimeSpan.FromSeconds(15));
        Assert.NotNull(blocked);
        output.WriteLine($"[{engine}] expiry: c off the interface {blocked!.Value.TotalMilliseconds:0} ms after its expiry was set 3 s ahead");
        Assert.Contains("\"expired\"", tb.VpnOk("list", "--json"));
        Assert.False(Probe(tb, tb.ClientC, Host2, "80/tcp", 0.5));
        Assert.True(Probe(tb, tb.ClientA, Host2, "80/tcp"));
        var reenable = tb.Vpn("reenable", c);
        Assert.Equal(2, reenable.ExitCode);
        Assert.Contains("expired", reenable.StdErr);

        var log = JsonDocument.Parse(tb.VpnOk("log", "--client", c, "--json")).RootElement.EnumerateArray().ToList();
        Assert.Equal("expire", log[0].GetProperty("action").GetString());
        Assert.Equal("system", log[0].GetProperty("actor").GetString());
        Assert.Contains(log, e => e.GetProperty("action").GetString() == "access allow" && e.GetProperty("via").GetString() == "cli");
        Assert.Contains(log, e => e.GetProperty("action").GetString() == "set");
        Assert.True(log.Count >= 7, $"{log.Count} entries for {c}");

        // status shows the built-in engine's drop counters (the packets to denied services were dropped by nftables, not
        // the engine, so only their presence is checked); wireguard-go has none to show, and the member is absent.
        using (var st = JsonDocument.Parse(tb.VpnOk("status", "--json")))
        {
            bool hasDrops = st.RootElement.TryGetProperty("drops", out var drops);
            Assert.Equal(engine == "builtin", hasDrops);
            if (engine == "builtin")
                Assert.True(drops.ValueKind == JsonValueKind.Object && drops.TryGetProperty("dropped", out var total) && total.GetInt64() >= 0, drops.ToString());
        }

        // 'down' removes the rules with everything else.
        tb.VpnOk("down");
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(20)), "up --foreground kept running after down");
        Assert.NotEqual(0, Shell.Run("ip", "netns", "exec", tb.Server, "nft", "list", "table", "inet", "mkb_vpn").ExitCode);
    }

    /// <summary>
    /// When the first probe that sees the new state started, counted from now (a probe of a dropped
    /// service lasts its timeout; what matters is that the change was in force when it began).
    /// Null when no probe saw it before the deadline.
    /// </summary>
    private static TimeSpan? FirstProbe(Func<bool> probe, TimeSpan deadline)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < deadline)
        {
            var started = sw.Elapsed;
            if (probe())
                return started;
        }
        return null;
    }

    /// <summary>Sends one line to a TCP or UDP echo service and expects it back within the timeout.</summary>
    private static bool Probe(Testbed tb, string ns, string host, string service, double timeout = 0.7)
    {
        var (port, proto) = (service.Split('/')[0], service.Split('/')[1]);
        string t = timeout.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string target = proto == "tcp" ? $"TCP:{host}:{port},connect-timeout={t}" : $"UDP:{host}:{port}";
        var r = Shell.Run("ip", ["netns", "exec", ns, "socat", $"-T{t}", "-", target], TimeSpan.FromSeconds(10), stdin: "probe\n");
        return r.StdOut.Contains("probe", StringComparison.Ordinal);
    }

    private static bool ListenersUp(Testbed tb)
    {
        var r = Shell.Run("ip", "netns", "exec", tb.Internal, "ss", "-lntu");
        return Services.All(s => r.StdOut.Contains($"{s.Host}:{s.Service.Split('/')[0]}", StringComparison.Ordinal));
    }
}
