using System.Globalization;
using MkbVpn.Tests;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// Two gateways on one PostgreSQL registry, each in its own namespace with its own built-in engine
/// ('mkb-vpn up --foreground --gateway NAME'), and real wireguard-go clients:
///   gateway main   (gA): 198.18.1.1 to alice's host, 198.18.3.1 to carol's first host
///   gateway berlin (gB): 198.18.2.1 to bob's host,   198.18.4.1 to carol's second host
/// alice is served by main, bob by berlin, carol by both (one config per gateway, the same key).
/// The gateways reach PostgreSQL through its Unix socket (a path works across network namespaces).
/// Every namespace, process and socket is removed on Dispose, also after a failure.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GatewayScenarioTests(PostgresServer pg) : IDisposable
{
    private readonly GatewayBed _bed = new("mkb-vpn-gw-");

    /// <summary>What the gateways printed and what the interfaces say, for a failure's message.</summary>
    private string Diagnostics(params (string Ns, string Iface)[] ifaces)
    {
        var sb = new System.Text.StringBuilder(_bed.Log());
        foreach (var (ns, iface) in ifaces)
            sb.AppendLine($"wg show {iface}:\n{Shell.Run("ip", "netns", "exec", ns, "wg", "show", iface).StdOut}");
        return sb.ToString();
    }

    private string Ns(string role) => $"mkb{role}{_bed.Id}";

    private string If(string role) => $"mkb{role}{_bed.Id}";

    public void Dispose() => _bed.Dispose();

    private static bool Pings(string ns, string address) =>
        Shell.WaitFor(() => Shell.Run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", address).ExitCode == 0, TimeSpan.FromSeconds(15)) is not null;

    [Fact]
    public void The_registry_hosts_plain_foreground_up_applies_verbs_run_on_another_host()
    {
        var (_, store) = GatewayBed.NewRegistry(pg);
        string gA = Ns("RA");
        _bed.AddNamespace(gA);
        string ifA = If("ra");
        _bed.Track(ifA);
        _bed.VpnOk(store, "init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24", "--subnet6", "fd00:5e:7::/64",
            "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", ifA);
        _bed.VpnOk(store, "gateway", "add", "berlin", "--endpoint", "198.18.2.1:51821", "--listen-port", "51821", "--interface", If("rb"));
        _bed.VpnOk(store, "add", "alice", "--no-qr");
        _bed.VpnOk(store, "add", "carol", "--gateway", "main", "--no-qr");
        var keys = new[] { "alice", "carol" }.ToDictionary(n => n, n =>
            System.Text.Json.JsonDocument.Parse(_bed.VpnOk(store, "show", n, "--json")).RootElement.GetProperty("public_key").GetString()!);

        // The registry host runs 'up --foreground' without --gateway; the admin's verbs run on another host (no interface of the server's there).
        var server = _bed.StartServer(gA, store, "main");
        Assert.NotNull(Shell.WaitFor(() => GatewayBed.Peers(gA, ifA).SetEquals([keys["alice"], keys["carol"]]), TimeSpan.FromSeconds(30)));

        _bed.VpnOk(store, "block", "carol");
        var took = Shell.WaitFor(() => !GatewayBed.Peers(gA, ifA).Contains(keys["carol"]), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(10));
        Assert.True(took is not null, "carol still on main 10 s after a block on another host\n" + Diagnostics((gA, ifA)));
        Console.WriteLine($"a block on another host reached main's interface in {took!.Value.TotalMilliseconds:0} ms");
        _bed.VpnOk(store, "reenable", "carol");
        Assert.True(Shell.WaitFor(() => GatewayBed.Peers(gA, ifA).Contains(keys["carol"]), TimeSpan.FromSeconds(10)) is not null, "carol not back on main\n" + Diagnostics((gA, ifA)));
        _bed.VpnOk(store, "set", "alice", "--gateway", "berlin");
        Assert.True(Shell.WaitFor(() => !GatewayBed.Peers(gA, ifA).Contains(keys["alice"]), TimeSpan.FromSeconds(10)) is not null, "alice still on main\n" + Diagnostics((gA, ifA)));

        // 'down' on the registry host still stops it.
        var down = Shell.Run("ip", ["netns", "exec", gA, Testbed.MkbVpn, "--store", store, "--data-dir", Path.Combine(_bed.Root, "main"), "down"], TimeSpan.FromSeconds(60));
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.True(server.WaitForExit(TimeSpan.FromSeconds(20)), "up --foreground kept running after down\n" + _bed.Log());
        Assert.Equal(0, server.ExitCode);
        Assert.DoesNotContain("following the registry:", _bed.Log(), StringComparison.Ordinal);
    }

    [Fact]
    public void Two_gateways_follow_one_registry_block_reaches_the_other_and_a_stopped_one_catches_up()
    {
        // The registry over PostgreSQL's Unix socket (the test server trusts local connections).
        var (location, store) = GatewayBed.NewRegistry(pg);

        string gA = Ns("GA"), gB = Ns("GB"), cA = Ns("CA"), cB = Ns("CB"), cC = Ns("CC"), cD = Ns("CD");
        foreach (var ns in new[] { gA, gB, cA, cB, cC, cD })
            _bed.AddNamespace(ns);
        Testbed.Link(gA, "a0", "198.18.1.1/24", cA, "a1", "198.18.1.2/24");
        Testbed.Link(gA, "c0", "198.18.3.1/24", cC, "c1", "198.18.3.2/24");
        Testbed.Link(gB, "b0", "198.18.2.1/24", cB, "b1", "198.18.2.2/24");
        Testbed.Link(gB, "d0", "198.18.4.1/24", cD, "d1", "198.18.4.2/24");
        Shell.Check("ip", "-n", cA, "route", "add", "default", "via", "198.18.1.1");
        Shell.Check("ip", "-n", cC, "route", "add", "default", "via", "198.18.3.1");
        Shell.Check("ip", "-n", cB, "route", "add", "default", "via", "198.18.2.1");
        Shell.Check("ip", "-n", cD, "route", "add", "default", "via", "198.18.4.1");

        string ifA = If("ga"), ifB = If("gb");
        _bed.Track(ifA, ifB);
        _bed.VpnOk(store, "init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24", "--subnet6", "fd00:5e:7::/64",
            "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", ifA);
        _bed.VpnOk(store, "gateway", "add", "berlin", "--endpoint", "198.18.2.1:51821", "--listen-port", "51821", "--interface", ifB, "--internal-network", "198.51.100.0/24");
        _bed.VpnOk(store, "add", "alice", "--gateway", "main", "--no-qr");
        _bed.VpnOk(store, "add", "bob", "--gateway", "berlin", "--no-qr");
        _bed.VpnOk(store, "add", "carol", "--no-qr");
        var keys = new[] { "alice", "bob", "carol" }.ToDictionary(n => n, n =>
            System.Text.Json.JsonDocument.Parse(_bed.VpnOk(store, "show", n, "--json")).RootElement.GetProperty("public_key").GetString()!);

        // Errors are one line naming the flag, with the documented exit codes.
        foreach (var (args, exit, text) in new (string[], int, string)[]
        {
            (["show", "alice", "--gateway", "berlin"], 3, "--gateway: 'berlin' does not serve 'alice'"),
            (["add", "dave", "--gateway", "paris", "--no-qr"], 3, "--gateway: no gateway named 'paris'"),
            (["gateway", "add", "Berlin", "--endpoint", "198.18.9.1"], 4, "already exists"),
            (["gateway", "add", "x", "--endpoint", "198.18.9.1", "--internal-network", "300.0.0.0/8"], 2, "--internal-network:"),
            (["up", "--gateway", "berlin"], 2, "--gateway: a gateway follows the registry while it runs"),
            (["gateway", "add", "x", "--endpoint", "198.18.9.1", "--subnet", "203.0.113.0/25"], 2, "--subnet: 203.0.113.0/25 holds 203.0.113.1"),
            (["gateway", "add", "x", "--endpoint", "198.18.9.1", "--subnet", "203.0.113.128/25"], 4, "--subnet: 1 client(s) served by every gateway have addresses outside 203.0.113.128/25 (carol)"),
            (["gateway", "add", "x", "--endpoint", "198.18.9.1", "--subnet6", "203.0.113.128/25"], 2, "--subnet6: 203.0.113.128/25 is not an IPv6 network"),
            (["status", "--gateway", "berlin", "--history"], 2, "--gateway does not go with --history"),
        })
        {
            var r = _bed.Vpn(store, args);
            Assert.True(r.ExitCode == exit && r.StdErr.Contains(text, StringComparison.Ordinal) && r.StdErr.Trim().Split('\n').Length == 1,
                $"mkb-vpn {string.Join(' ', args)}: {r}");
        }

        var a = _bed.StartGateway(gA, store, "main");
        var b = _bed.StartGateway(gB, store, "berlin");
        Assert.NotNull(Shell.WaitFor(() => GatewayBed.Peers(gA, ifA).SetEquals([keys["alice"], keys["carol"]]), TimeSpan.FromSeconds(30)));
        Assert.NotNull(Shell.WaitFor(() => GatewayBed.Peers(gB, ifB).SetEquals([keys["bob"], keys["carol"]]), TimeSpan.FromSeconds(30)));

        _bed.ClientUp(cA, store, "alice", "main", If("ca"));
        _bed.ClientUp(cB, store, "bob", "berlin", If("cb"));
        _bed.ClientUp(cC, store, "carol", "main", If("cc"));
        _bed.ClientUp(cD, store, "carol", "berlin", If("cd"));
        Assert.True(Pings(cA, "203.0.113.1"), "alice reaches gateway main");
        Assert.True(Pings(cB, "203.0.113.1"), "bob reaches gateway berlin");
        Assert.True(Pings(cC, "203.0.113.1"), "carol reaches gateway main");
        Assert.True(Pings(cD, "203.0.113.1"), "carol reaches gateway berlin");

        // Both gateways report: 'gateway list' on any host shows them.
        Assert.NotNull(Shell.WaitFor(() =>
        {
            var list = System.Text.Json.JsonDocument.Parse(_bed.VpnOk(store, "gateway", "list", "--json")).RootElement.EnumerateArray().ToList();
            return list.Count == 2 && list.All(g => g.GetProperty("online").GetBoolean() && g.GetProperty("engine").GetString() == "builtin" && g.GetProperty("peers").GetInt32() == 2);
        }, TimeSpan.FromSeconds(20)));

        // Each gateway reported each of its connected clients' endpoint and handshake into the registry.
        Assert.NotNull(Shell.WaitFor(() => Convert.ToInt64(pg.Scalar(location,
            "SELECT count(*) FROM gateway_peers WHERE endpoint IS NOT NULL AND last_handshake IS NOT NULL"), CultureInfo.InvariantCulture) == 4, TimeSpan.FromSeconds(20)));

        // 'status' on any host shows what every gateway reported: carol once per gateway, each with her endpoint there.
        var status = System.Text.Json.JsonDocument.Parse(_bed.VpnOk(store, "status", "--json")).RootElement;
        Assert.Equal(["berlin", "main"], status.GetProperty("gateways").EnumerateArray().Select(g => g.GetProperty("name").GetString()));
        var carol = status.GetProperty("clients").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "carol");
        Assert.True(carol.GetProperty("online").GetBoolean(), status.ToString());
        var carolGateways = carol.GetProperty("gateways").EnumerateArray().ToDictionary(g => g.GetProperty("gateway").GetString()!, g => g.GetProperty("endpoint").GetString());
        Assert.Equal(2, carolGateways.Count);
        Assert.StartsWith("198.18.4.2:", carolGateways["berlin"], StringComparison.Ordinal);
        Assert.StartsWith("198.18.3.2:", carolGateways["main"], StringComparison.Ordinal);
        string berlinText = _bed.VpnOk(store, "status", "--gateway", "berlin");
        Assert.Contains("berlin: online", berlinText, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^bob\s+berlin\s+203\.0\.113\.\d+.*?\s+online\s+198\.18\.2\.2:", berlinText);
        Assert.DoesNotContain("alice", berlinText, StringComparison.Ordinal);
        var unknown = _bed.Vpn(store, "status", "--gateway", "paris");
        Assert.True(unknown.ExitCode == 3 && unknown.StdErr.Contains("--gateway: no gateway named 'paris'", StringComparison.Ordinal), unknown.ToString());

        // 'block' against the registry takes carol off gateway berlin (promise: within 1 s of its commit; the
        // figure is printed here and measured at scale by bench/gateways.sh; the deadline allows a loaded machine).
        _bed.VpnOk(store, "block", "carol");
        var took = Shell.WaitFor(() => !GatewayBed.Peers(gB, ifB).Contains(keys["carol"]), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(10));
        Console.WriteLine($"block reached gateway berlin in {took?.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) ?? "more than 10000"} ms after the command returned (promise: < 1000 ms)");
        Assert.NotNull(took);
        Assert.NotNull(Shell.WaitFor(() => !GatewayBed.Peers(gA, ifA).Contains(keys["carol"]), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(10)));
        Assert.True(Pings(cB, "203.0.113.1"), "bob still reaches berlin");

        // Gateway berlin stopped (SIGTERM: its interface goes), a change made, berlin started: it catches up.
        Shell.Check("kill", "-TERM", b.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(b.WaitForExit(20_000), "gateway berlin did not stop on SIGTERM");
        Assert.Equal(0, b.ExitCode);
        Assert.Empty(GatewayBed.Peers(gB, ifB));
        _bed.VpnOk(store, "reenable", "carol");
        _bed.VpnOk(store, "block", "bob");
        _bed.StartGateway(gB, store, "berlin");
        Assert.NotNull(Shell.WaitFor(() => GatewayBed.Peers(gB, ifB).SetEquals([keys["carol"]]), TimeSpan.FromSeconds(30)));
        Assert.True(Pings(cD, "203.0.113.1"), "carol reaches berlin again after it caught up\n" + Diagnostics((gB, ifB), (cD, If("cd"))) +
            pg.Scalar(location, "SELECT string_agg(gateway_id || ' ' || client_id || ' ' || coalesce(last_handshake, '-') || ' ' || coalesce(endpoint, '-') || ' ' || reported_at, E'\\n') FROM gateway_peers"));
        Assert.True(Pings(cC, "203.0.113.1"), "carol reaches main again");
        Assert.False(a.HasExited);
    }
}
