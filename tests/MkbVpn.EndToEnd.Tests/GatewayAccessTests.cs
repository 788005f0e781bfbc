using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MkbVpn.Tests;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// Access rules on following gateways: two gateways on one PostgreSQL registry, each in its own
/// namespace with its own built-in engine ('mkb-vpn up --foreground --gateway NAME'); bob (served by
/// both) connects to gateway berlin with wireguard-go and reaches an internal host behind it only
/// as the rules allow. 'access allow', 'access revoke' and a group change, run by an admin on
/// another host, reach the nftables of both gateways (per element, not a reload) within a generous
/// deadline; the delay is measured and printed. An expiry passing takes bob off the gateways by
/// their own timer, with no change in the registry. Everything is removed on Dispose.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GatewayAccessTests(PostgresServer pg, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private const string Host = "198.51.100.10";
    private readonly GatewayBed _bed = new("mkb-vpn-gwa-");

    private string Name(string role) => $"mkx{role}{_bed.Id}";

    public void Dispose() => _bed.Dispose();

    /// <summary>The verdict the gateway's firewall maps the address to ("jump c5", "jump g2"), or null.</summary>
    private static string? Verdict(string ns, string address)
    {
        var r = Shell.Run("ip", "netns", "exec", ns, "nft", "list", "map", "inet", "mkb_vpn", "clients4");
        if (r.ExitCode != 0)
            return null;
        int at = r.StdOut.IndexOf(address + " : ", StringComparison.Ordinal);
        if (at < 0)
            return null;
        var rest = r.StdOut[(at + address.Length + 3)..];
        int end = rest.IndexOfAny([',', '\n', '}']);
        return (end < 0 ? rest : rest[..end]).Trim();
    }

    /// <summary>Polls both gateways until the condition holds on each; returns the delay after the command returned.</summary>
    private TimeSpan WaitBoth(string what, string gA, string gB, Func<string, bool> holds)
    {
        var sw = Stopwatch.StartNew();
        foreach (var ns in new[] { gA, gB })
            Assert.True(Shell.WaitFor(() => holds(ns), Deadline, TimeSpan.FromMilliseconds(10)) is not null,
                $"{what} did not reach {ns} within {Deadline.TotalSeconds} s\n{_bed.Log()}");
        var took = sw.Elapsed;
        output.WriteLine($"{what}: reached both gateways' firewalls {took.TotalMilliseconds:0} ms after the command returned (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
        return took;
    }

    /// <summary>Packets the gateway's firewall dropped so far: a reload of the table would set it back to 0.</summary>
    private static long Dropped(string ns)
    {
        var text = Shell.Run("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "mkb_vpn", "access").StdOut;
        var m = System.Text.RegularExpressions.Regex.Match(text, @"counter packets (\d+)");
        return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
    }

    private static bool Pings(string ns, string address, int tries) =>
        Enumerable.Range(0, tries).Any(_ => Shell.Run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", address).ExitCode == 0);

    [Fact]
    public void Allow_revoke_and_group_changes_reach_both_gateways_per_element_and_expiry_is_a_timer()
    {
        var (location, store) = GatewayBed.NewRegistry(pg);

        string gA = Name("A"), gB = Name("B"), cB = Name("C"), iB = Name("I");
        foreach (var ns in new[] { gA, gB, cB, iB })
            _bed.AddNamespace(ns);
        Testbed.Link(gB, "b0", "198.18.2.1/24", cB, "b1", "198.18.2.2/24");
        Testbed.Link(gB, "i0", "198.51.100.1/24", iB, "i1", $"{Host}/24");
        Shell.Check("ip", "-n", iB, "route", "add", "default", "via", "198.51.100.1");

        string ifA = Name("a"), ifB = Name("b");
        _bed.Track(ifA, ifB);
        _bed.VpnOk(store, "init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24",
            "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", ifA);
        _bed.VpnOk(store, "gateway", "add", "berlin", "--endpoint", "198.18.2.1:51821", "--listen-port", "51821", "--interface", ifB, "--internal-network", "198.51.100.0/24");
        // bob's config routes the internal network through the tunnel whatever the rules (his host has no other way there): the gateway's firewall decides.
        _bed.VpnOk(store, "add", "bob", "--no-qr", "--allowed-ips", "203.0.113.0/24,198.51.100.0/24");
        string bob = JsonDocument.Parse(_bed.VpnOk(store, "show", "bob", "--json")).RootElement.GetProperty("address4").GetString()!;
        string bobKey = JsonDocument.Parse(_bed.VpnOk(store, "show", "bob", "--json")).RootElement.GetProperty("public_key").GetString()!;
        // Least privilege: nobody reaches anything until a rule says so.
        foreach (var r in JsonDocument.Parse(_bed.VpnOk(store, "access", "list", "--json")).RootElement.EnumerateArray().ToList())
            _bed.VpnOk(store, "access", "revoke", r.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture));

        _bed.StartGateway(gA, store, "main");
        _bed.StartGateway(gB, store, "berlin");
        foreach (var (ns, iface) in new[] { (gA, ifA), (gB, ifB) })
            Assert.True(Shell.WaitFor(() => GatewayBed.Peers(ns, iface).Contains(bobKey) && Shell.Run("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "mkb_vpn", "access").ExitCode == 0,
                TimeSpan.FromSeconds(30)) is not null, $"gateway in {ns} did not come up\n{_bed.Log()}");

        _bed.ClientUp(cB, store, "bob", "berlin", Name("c"));
        Assert.False(Pings(cB, Host, 1), $"bob reaches the internal host with no rule\n{Shell.Run("ip", "netns", "exec", gB, "nft", "list", "ruleset").StdOut}\n{_bed.Log()}");
        long dropped = Dropped(gB);
        Assert.True(dropped > 0, "berlin's firewall did not count the packet it dropped");

        // A rule of bob's own: one map element on each gateway (and his own chain).
        var allowed = JsonDocument.Parse(_bed.VpnOk(store, "access", "allow", "client:bob", Host, "--json")).RootElement;
        WaitBoth("access allow client:bob", gA, gB, ns => Verdict(ns, bob) is { } v && v.StartsWith("jump c", StringComparison.Ordinal));
        Assert.True(Pings(cB, Host, 15), $"bob does not reach {Host} through berlin after 'access allow'\n{_bed.Log()}");

        _bed.VpnOk(store, "access", "revoke", allowed.GetProperty("rule").GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture));
        WaitBoth("access revoke", gA, gB, ns => Verdict(ns, bob) is null);
        Assert.False(Pings(cB, Host, 1), "bob still reaches the internal host after 'access revoke'");

        // A group's rule: a chain on each gateway, nobody's element yet; bob joins: his element points to it.
        _bed.VpnOk(store, "group", "add", "staff");
        _bed.VpnOk(store, "access", "allow", "group:staff", Host);
        _bed.VpnOk(store, "set", "bob", "--group", "staff");
        WaitBoth("set bob --group staff", gA, gB, ns => Verdict(ns, bob) is { } v && v.StartsWith("jump g", StringComparison.Ordinal));
        Assert.True(Pings(cB, Host, 15), $"bob does not reach {Host} as a member of staff\n{_bed.Log()}");

        _bed.VpnOk(store, "set", "bob", "--no-groups");
        WaitBoth("set bob --no-groups", gA, gB, ns => Verdict(ns, bob) is null);
        Assert.False(Pings(cB, Host, 1), "bob still reaches the internal host after leaving staff");

        // Rules for a group bob is in change his element only when the group gains or loses its chain.
        _bed.VpnOk(store, "set", "bob", "--group", "staff");
        WaitBoth("set bob --group staff (again)", gA, gB, ns => Verdict(ns, bob) is { } v && v.StartsWith("jump g", StringComparison.Ordinal));
        foreach (var r in JsonDocument.Parse(_bed.VpnOk(store, "access", "list", "--json")).RootElement.EnumerateArray().ToList())
            _bed.VpnOk(store, "access", "revoke", r.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture));
        WaitBoth("access revoke (the group's last rule)", gA, gB, ns => Verdict(ns, bob) is null);
        Assert.False(Pings(cB, Host, 1), "bob still reaches the internal host after his group's last rule went");

        // Nothing of this was a reload of the table (which would have reset its counter): the gateways applied each change per element.
        Assert.DoesNotContain("applied changes:", _bed.Log());
        Assert.True(Dropped(gB) >= dropped + 3, $"berlin's drop counter went from {dropped} to {Dropped(gB)}: its table was reloaded\n{_bed.Log()}");

        // An expiry passing: the gateways take bob off by their own timer; the registry is not written.
        var expires = DateTimeOffset.UtcNow.AddSeconds(8);
        expires = new DateTimeOffset(expires.Ticks - expires.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        _bed.VpnOk(store, "set", "bob", "--expires", expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        Assert.True(GatewayBed.Peers(gB, ifB).Contains(bobKey) && GatewayBed.Peers(gA, ifA).Contains(bobKey), "bob was taken off before his expiry");
        foreach (var (ns, iface) in new[] { (gB, ifB), (gA, ifA) })
        {
            Assert.True(Shell.WaitFor(() => !GatewayBed.Peers(ns, iface).Contains(bobKey), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20)) is not null,
                $"bob's expiry did not take him off the gateway in {ns}\n{_bed.Log()}");
            // First seen gone now: had a gateway taken him off early, this would be before his expiry.
            var late = DateTimeOffset.UtcNow - expires;
            output.WriteLine($"expiry: bob off the gateway in {ns} {late.TotalMilliseconds:0} ms after his expiry");
            Assert.True(late > TimeSpan.Zero, $"bob was taken off the gateway in {ns} before his expiry");
        }
        Assert.True(Shell.WaitFor(() => _bed.Log().Split('\n').Count(l => l.Contains("expired: taken off", StringComparison.Ordinal)) == 2, Deadline) is not null,
            $"the gateways did not both log the expiry\n{_bed.Log()}");
        Assert.Equal(1L, Convert.ToInt64(pg.Scalar(location, "SELECT enabled FROM clients WHERE name = 'bob'"), CultureInfo.InvariantCulture));
    }
}
