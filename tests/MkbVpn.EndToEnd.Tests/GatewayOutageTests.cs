using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MkbVpn.Tests;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// PostgreSQL goes down under a running gateway (issue 13: "PostgreSQL stopped: traffic continues,
/// add fails clearly, PostgreSQL back: all resumes"). The office of <see cref="Testbed"/>: gateway
/// 'berlin' runs 'mkb-vpn up --foreground --gateway berlin' in the server namespace (its registry
/// over PostgreSQL's Unix socket), a real wireguard-go client reaches the internal host through it;
/// the admin's verbs run on the host (over TCP), on a data directory without any interface.
/// The registry's own server (gateway 'main') never runs, so only the follower can change the
/// gateway's interface: what reaches it after the outage came through the registry.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class GatewayOutageTests(PostgresServer pg) : IDisposable
{
    private readonly Testbed _tb = new();
    private readonly GatewayBed _bed = new("mkb-vpn-outage-");

    public void Dispose()
    {
        _bed.Dispose();   // first: the gateway stops while its namespace is still there
        _tb.Dispose();
    }

    private int GatewayLogCount(string text) => Regex.Count(_bed.Log(), Regex.Escape(text));

    private HashSet<string> Peers(string iface) => GatewayBed.Peers(_tb.Server, iface);

    /// <summary>Probes through the tunnel: how many of <paramref name="count"/> pings, one every half second, were answered.</summary>
    private int Probes(string ns, string address, int count)
    {
        var r = Shell.Run("ip", ["netns", "exec", ns, "ping", "-n", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", "0.5", "-W", "5", address], TimeSpan.FromSeconds(60));
        var m = ReceivedRegex().Match(r.StdOut);
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"(\d+) (?:packets )?received")]
    private static partial Regex ReceivedRegex();

    private static void AssertOneLineError(Shell.Result r, int exit, string text, string what)
    {
        Assert.True(r.ExitCode == exit, $"{what}: expected exit {exit}: {r}");
        var lines = r.StdErr.Trim().Split('\n');
        Assert.True(lines.Length == 1 && lines[0].StartsWith("mkb-vpn: error: ", StringComparison.Ordinal) && lines[0].Contains(text, StringComparison.Ordinal),
            $"{what}: expected one line with '{text}': {r}");
    }

    /// <summary>What a scenario starts from: the registry (its admins' location), gateway berlin running and alice connected through it.</summary>
    private sealed record Bed(string Location, string Interface, Process Gateway, string Alice, string Bob, Func<string, string> Key);

    /// <summary>
    /// The registry (main, never run; berlin), alice and bob served by every gateway, berlin running
    /// 'up --foreground --gateway berlin' in the server namespace, alice's wireguard-go up in client A
    /// and reaching the internal host through berlin.
    /// </summary>
    private Bed StartBerlin()
    {
        // The admins' store: TCP on loopback, the password in a passfile; the gateway's: PostgreSQL's Unix socket.
        var (location, socketStore) = GatewayBed.NewRegistry(pg);
        string gwIface = $"mkbg{_tb.Id}";
        _tb.Track(gwIface);

        _bed.VpnOk(location, "init", "--endpoint", "198.18.1.1:51820", "--subnet", Testbed.VpnSubnet, "--subnet6", Testbed.VpnSubnet6,
            "--internal-network", Testbed.InternalNetwork, "--dns", "none", "--interface", _tb.ServerInterface);
        _bed.VpnOk(location, "gateway", "add", "berlin", "--endpoint", "198.18.1.1:51821", "--listen-port", "51821", "--interface", gwIface,
            "--internal-network", Testbed.InternalNetwork);
        _bed.VpnOk(location, "add", "alice", "--no-qr");
        _bed.VpnOk(location, "add", "bob", "--no-qr");
        string Key(string name) => JsonDocument.Parse(_bed.VpnOk(location, "show", name, "--json")).RootElement.GetProperty("public_key").GetString()!;
        string alice = Key("alice"), bob = Key("bob");

        var gateway = _bed.StartGateway(_tb.Server, socketStore, "berlin");
        Assert.True(Shell.WaitFor(() => Peers(gwIface).SetEquals([alice, bob]), TimeSpan.FromSeconds(30)) is not null, "gateway berlin did not come up:\n" + _bed.Log());

        string conf = Path.Combine(_bed.Root, $"mkba{_tb.Id}.conf");
        File.WriteAllText(conf, _bed.VpnOk(location, "show", "alice", "--gateway", "berlin"));
        File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _tb.ClientUp(_tb.ClientA, conf);
        Assert.True(Shell.WaitFor(() => _tb.Ping(_tb.ClientA, Testbed.InternalHost), TimeSpan.FromSeconds(20)) is not null,
            "alice does not reach the internal host through gateway berlin:\n" + _bed.Log());

        return new Bed(location, gwIface, gateway, alice, bob, Key);
    }

    [Fact]
    public void PostgreSQL_stopped_traffic_continues_verbs_fail_cleanly_and_the_gateway_follows_again_when_it_returns()
    {
        var (location, gwIface, gateway, alice, bob, Key) = StartBerlin();
        var down = pg.Stopped();
        var outage = Stopwatch.StartNew();
        try
        {
            Assert.True(Shell.WaitFor(() => GatewayLogCount("registry unreachable") > 0, TimeSpan.FromSeconds(30)) is not null,
                "the gateway did not notice the registry going:\n" + _bed.Log());

            // The data plane never waits for the database: alice keeps reaching the internal host, probe after probe.
            int answered = Probes(_tb.ClientA, Testbed.InternalHost, 10);
            Assert.True(answered >= 9, $"{answered} of 10 probes answered while PostgreSQL was down:\n{_bed.Log()}");

            // The verbs fail in one line naming what is wrong, with the documented exit code (8), and leave nothing behind.
            var add = _bed.Vpn(location, "add", "carol", "--no-qr");
            AssertOneLineError(add, 8, "cannot reach the store postgresql://mkbtest@127.0.0.1:", "add while PostgreSQL is down");
            Assert.DoesNotContain(pg.Password, add.StdErr + add.StdOut);
            string clients = Path.Combine(_bed.AdminDir, "clients");
            Assert.False(File.Exists(Path.Combine(clients, "carol.conf")), "add wrote a config file although it failed");
            Assert.Empty(Directory.Exists(clients) ? Directory.GetFiles(clients).Where(f => !f.EndsWith(".conf", StringComparison.Ordinal)) : []);
            var block = _bed.Vpn(location, "block", "alice");
            AssertOneLineError(block, 8, "cannot reach the store", "block while PostgreSQL is down");
            Assert.Contains(alice, Peers(gwIface));
            Assert.True(gateway.HasExited is false, "the gateway exited while PostgreSQL was down:\n" + _bed.Log());
            Assert.True(_tb.Ping(_tb.ClientA, Testbed.InternalHost, 5), "alice lost the internal host during the outage");
            Console.WriteLine($"PostgreSQL was down {outage.Elapsed.TotalSeconds:0.0} s; {answered} of 10 probes answered meanwhile; add said: {add.StdErr.Trim()} (exit {add.ExitCode})");
        }
        finally
        {
            down.Dispose();
        }

        // PostgreSQL is back: the gateway reconnects (its backoff) and reconciles, then follows changes again.
        var back = Stopwatch.StartNew();
        Assert.True(Shell.WaitFor(() => GatewayLogCount("reconciled " + gwIface) > 0, TimeSpan.FromSeconds(90)) is not null,
            "the gateway did not reconnect to the registry:\n" + _bed.Log());
        Console.WriteLine($"gateway reconciled {back.Elapsed.TotalSeconds:0.0} s after PostgreSQL started again");
        Assert.Equal(0, _bed.Vpn(location, "list").ExitCode);
        Assert.False(JsonDocument.Parse(_bed.VpnOk(location, "show", "alice", "--json")).RootElement.GetProperty("state").GetString() == "blocked",
            "the block that failed during the outage was recorded after all");

        _bed.VpnOk(location, "block", "alice");
        var took = Shell.WaitFor(() => !Peers(gwIface).Contains(alice), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20));
        Assert.True(took is not null, "a block made after PostgreSQL returned did not reach the gateway:\n" + _bed.Log());
        Console.WriteLine($"block after the outage reached the gateway in {took!.Value.TotalMilliseconds:0} ms");
        Assert.True(Shell.WaitFor(() => !_tb.Ping(_tb.ClientA, Testbed.InternalHost), TimeSpan.FromSeconds(20)) is not null, "blocked alice still reaches the internal host");

        _bed.VpnOk(location, "add", "carol", "--no-qr");
        Assert.True(File.Exists(Path.Combine(_bed.AdminDir, "clients", "carol.conf")));
        string carol = Key("carol");
        Assert.True(Shell.WaitFor(() => Peers(gwIface).SetEquals([bob, carol]), TimeSpan.FromSeconds(20)) is not null,
            "an add after PostgreSQL returned did not reach the gateway:\n" + _bed.Log());

        // And it reports again: 'gateway list' shows berlin online.
        Assert.True(Shell.WaitFor(() => JsonDocument.Parse(_bed.VpnOk(location, "gateway", "list", "--json")).RootElement.EnumerateArray()
            .Any(g => g.GetProperty("name").GetString() == "berlin" && g.GetProperty("online").GetBoolean() && g.GetProperty("peers").GetInt32() == 2),
            TimeSpan.FromSeconds(20)) is not null, "gateway berlin does not report again:\n" + _bed.Log());

        Shell.Check("kill", "-TERM", gateway.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(gateway.WaitForExit(20_000), "gateway berlin did not stop on SIGTERM");
        Assert.Equal(0, gateway.ExitCode);
        Assert.Empty(Peers(gwIface));
    }

    [Fact]
    public void A_restore_into_the_registry_reaches_the_running_gateway_which_keeps_its_host_state()
    {
        var bed = StartBerlin();
        string backup = Path.Combine(_bed.Root, "registry.mkbbak");
        _bed.VpnOk(bed.Location, "backup", backup);
        _bed.VpnOk(bed.Location, "block", "alice");
        _bed.VpnOk(bed.Location, "remove", "bob", "--yes");
        _bed.VpnOk(bed.Location, "add", "carol", "--no-qr");
        string carol = bed.Key("carol");
        Assert.True(Shell.WaitFor(() => Peers(bed.Interface).SetEquals([carol]), TimeSpan.FromSeconds(20)) is not null, "the changes did not reach berlin:\n" + _bed.Log());
        Assert.True(Shell.WaitFor(() => !_tb.Ping(_tb.ClientA, Testbed.InternalHost), TimeSpan.FromSeconds(20)) is not null, "blocked alice still reaches the internal host");
        string ForwardingBefore() => pg.Scalar(bed.Location,
            "SELECT value FROM gateway_runtime r JOIN gateways g ON g.id = r.gateway_id WHERE g.name = 'berlin' AND r.key = 'forwarding_before'") as string ?? "(none)";
        string forwarding = ForwardingBefore();
        Assert.NotEqual("(none)", forwarding);

        var restored = _bed.Vpn(bed.Location, "restore", "--force", backup);
        Assert.True(restored.ExitCode == 0, restored.ToString());
        Assert.Contains("The gateways following the registry apply it now", restored.StdOut);

        // The running gateway follows the restore on its own: the backup's clients are back, carol is gone, alice gets through again.
        var took = Shell.WaitFor(() => Peers(bed.Interface).SetEquals([bed.Alice, bed.Bob]), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20));
        Assert.True(took is not null, "the restore did not reach gateway berlin:\n" + _bed.Log());
        Console.WriteLine($"restore reached the running gateway in {took!.Value.TotalMilliseconds:0} ms after the command returned");
        Assert.True(Shell.WaitFor(() => _tb.Ping(_tb.ClientA, Testbed.InternalHost), TimeSpan.FromSeconds(20)) is not null,
            "alice does not reach the internal host after the restore:\n" + _bed.Log());
        Assert.False(File.Exists(Path.Combine(_bed.AdminDir, "clients", "carol.conf")), "carol's config outlived the restore");
        // Berlin's host state is its own, not the backup's: forwarding as it was before berlin started, for its stop
        // (an end state: the follower would write it again if it were gone; BackupOnPostgresTests shows the restore keeps it).
        Assert.Equal(forwarding, ForwardingBefore());
        Assert.True(Shell.WaitFor(() => JsonDocument.Parse(_bed.VpnOk(bed.Location, "gateway", "list", "--json")).RootElement.EnumerateArray()
            .Any(g => g.GetProperty("name").GetString() == "berlin" && g.GetProperty("online").GetBoolean() && g.GetProperty("peers").GetInt32() == 2),
            TimeSpan.FromSeconds(20)) is not null, "gateway berlin does not report after the restore:\n" + _bed.Log());

        Shell.Check("kill", "-TERM", bed.Gateway.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(bed.Gateway.WaitForExit(20_000), "gateway berlin did not stop on SIGTERM");
        Assert.Equal(0, bed.Gateway.ExitCode);
    }
}
