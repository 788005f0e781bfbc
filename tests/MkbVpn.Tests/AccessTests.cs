using System.Net;
using MkbVpn.Access;
using MkbVpn.Clients;
using MkbVpn.Network;

namespace MkbVpn.Tests;

/// <summary>Rule resolution, the firewall model and its differences, 'check', expiry parsing: pure, no store.</summary>
public sealed class AccessTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    internal static AccessRule Rule(long id, SubjectKind kind, string target, long? subject = null, string? name = null,
        Protocol proto = Protocol.Any, int? from = null, int? to = null) => new()
    {
        Id = id,
        Subject = kind,
        SubjectId = subject,
        SubjectName = name,
        Target = target,
        Protocol = proto,
        PortFrom = from,
        PortTo = to,
        CreatedAt = Now,
    };

    internal static readonly IReadOnlyList<AccessRule> DefaultRules =
        [Rule(1, SubjectKind.Everyone, AccessRule.Internal), Rule(2, SubjectKind.Everyone, AccessRule.Server)];

    private static Client C(long id, string name, int host) => Fixtures.Client(name, c => c with
    {
        Id = id,
        Address4 = IPAddress.Parse($"203.0.113.{host}"),
        Address6 = IPAddress.Parse($"fd00:1234:5678::{host:x}"),
    });

    private static readonly ServerSettings Server = Fixtures.Server(s => s with
    {
        InternalNetworks = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("fd00:aaaa::/48")],
        Dns = ["198.51.100.1"],
    });

    // alice: staff; bob: accounting; carol: no group, one rule of her own; dave: staff + accounting.
    private static readonly Client Alice = C(1, "alice", 2), Bob = C(2, "bob", 3), Carol = C(3, "carol", 4), Dave = C(4, "dave", 5);
    private static readonly Group Staff = new(10, "staff", "", Now), Accounting = new(11, "accounting", "", Now);

    private static AccessPolicy Policy(IReadOnlyList<AccessRule> rules, ServerSettings? server = null, IReadOnlyList<Client>? clients = null) => new(
        server ?? Server, clients ?? [Alice, Bob, Carol, Dave], [Staff, Accounting],
        new Dictionary<long, List<long>> { [1] = [10], [2] = [11], [4] = [10, 11] }, rules);

    private static readonly IReadOnlyList<AccessRule> LeastPrivilege =
    [
        Rule(3, SubjectKind.Group, AccessRule.Internal, 10, "staff"),
        Rule(4, SubjectKind.Group, "198.51.100.20/32", 11, "accounting", Protocol.Tcp, 443),
        Rule(5, SubjectKind.Client, "198.51.100.30/32", 3, "carol", Protocol.Tcp, 8000, 8100),
        Rule(6, SubjectKind.Everyone, AccessRule.Server, proto: Protocol.Icmp),
    ];

    [Fact]
    public void A_client_gets_the_union_of_everyone_its_groups_and_its_own_rules()
    {
        var p = Policy(LeastPrivilege);
        Assert.Equal([3L, 6], p.RulesFor(Alice).Select(r => r.Id));
        Assert.Equal([4L, 6], p.RulesFor(Bob).Select(r => r.Id));
        Assert.Equal([5L, 6], p.RulesFor(Carol).Select(r => r.Id));
        Assert.Equal([3L, 4, 6], p.RulesFor(Dave).Select(r => r.Id));
    }

    [Fact]
    public void Default_rules_render_the_historical_split_tunnel_routes()
    {
        var p = Policy(DefaultRules);
        foreach (var c in p.Clients)
            Assert.Equal(Server.DefaultClientAllowedIps(), p.ConfigAllowedIps(c));
    }

    [Fact]
    public void A_restricted_client_routes_only_what_its_rules_allow_plus_its_dns()
    {
        var p = Policy(LeastPrivilege);
        Assert.Equal(["203.0.113.0/24", "fd00:1234:5678::/64", "198.51.100.0/24", "fd00:aaaa::/48"], p.ConfigAllowedIps(Alice).Select(n => n.ToString()));
        Assert.Equal(["203.0.113.0/24", "fd00:1234:5678::/64", "198.51.100.1/32", "198.51.100.20/32"], p.ConfigAllowedIps(Bob).Select(n => n.ToString()));
        // Own AllowedIPs and full tunnel win over the rules.
        var own = Bob with { AllowedIps = [IPNetwork.Parse("198.51.100.0/24")] };
        Assert.Equal(["198.51.100.0/24"], p.ConfigAllowedIps(own).Select(n => n.ToString()));
        var full = Policy(LeastPrivilege, Server with { FullTunnel = true });
        Assert.Equal(["0.0.0.0/0", "::/0"], full.ConfigAllowedIps(Bob).Select(n => n.ToString()));
    }

    [Theory]
    [InlineData("bob", "198.51.100.20", 443, Protocol.Tcp, Verdict.Allow, new long[] { 4 })]
    [InlineData("bob", "198.51.100.20", 22, Protocol.Tcp, Verdict.Deny, new long[0])]
    [InlineData("bob", "198.51.100.20", 443, Protocol.Udp, Verdict.Deny, new long[0])]
    [InlineData("bob", "198.51.100.21", 443, Protocol.Tcp, Verdict.Deny, new long[0])]
    [InlineData("alice", "198.51.100.21", 22, Protocol.Tcp, Verdict.Allow, new long[] { 3 })]
    [InlineData("alice", "fd00:aaaa::7", null, Protocol.Icmp, Verdict.Allow, new long[] { 3 })]
    [InlineData("dave", "198.51.100.20", 443, Protocol.Tcp, Verdict.Allow, new long[] { 3, 4 })]
    [InlineData("carol", "198.51.100.30", 8050, Protocol.Tcp, Verdict.Allow, new long[] { 5 })]
    [InlineData("carol", "198.51.100.30", 8101, Protocol.Tcp, Verdict.Deny, new long[0])]
    [InlineData("carol", "203.0.113.1", null, Protocol.Icmp, Verdict.Allow, new long[] { 6 })]
    [InlineData("carol", "203.0.113.1", 22, Protocol.Tcp, Verdict.Deny, new long[0])]
    public void Check_names_the_deciding_rules(string who, string dest, int? port, Protocol proto, Verdict verdict, long[] rules)
    {
        var p = Policy(LeastPrivilege);
        var r = p.Check(p.Clients.Single(c => c.Name == who), IPAddress.Parse(dest), port, proto, Now);
        Assert.Equal(verdict, r.Verdict);
        Assert.Equal(rules, r.Deciding.Select(x => x.Id));
        if (verdict == Verdict.Deny)
            Assert.NotNull(r.Reason);
    }

    [Fact]
    public void Check_explains_partial_dns_blocked_expired_and_outside_destinations()
    {
        var p = Policy(LeastPrivilege);
        var partial = p.Check(Bob, IPAddress.Parse("198.51.100.20"), null, null, Now);
        Assert.Equal(Verdict.Partial, partial.Verdict);
        Assert.Equal([4L], partial.Partial.Select(r => r.Id));

        var dns = p.Check(Bob, IPAddress.Parse("198.51.100.1"), 53, Protocol.Udp, Now);
        Assert.Equal(Verdict.Allow, dns.Verdict);
        Assert.Contains("DNS", dns.Reason);

        var blocked = p.Check(Bob with { Enabled = false }, IPAddress.Parse("198.51.100.20"), 443, Protocol.Tcp, Now);
        Assert.Equal(Verdict.Deny, blocked.Verdict);
        Assert.Contains("blocked", blocked.Reason);

        var expired = p.Check(Bob with { ExpiresAt = Now.AddMinutes(-1) }, IPAddress.Parse("198.51.100.20"), 443, Protocol.Tcp, Now);
        Assert.Equal(Verdict.Deny, expired.Verdict);
        Assert.Contains("expired", expired.Reason);

        var outside = p.Check(Alice, IPAddress.Parse("192.0.2.1"), 443, Protocol.Tcp, Now);
        Assert.Equal(Verdict.Deny, outside.Verdict);
        Assert.Contains("split tunnel", outside.Reason);
        var full = Policy(LeastPrivilege, Server with { FullTunnel = true }).Check(Alice, IPAddress.Parse("192.0.2.1"), 443, Protocol.Tcp, Now);
        Assert.Equal(Verdict.Allow, full.Verdict);

        var peer = p.Check(Alice, IPAddress.Parse("203.0.113.3"), null, null, Now);
        Assert.Equal(Verdict.Deny, peer.Verdict);
        Assert.Contains("client-to-client", peer.Reason);
    }

    // ---- the firewall model ----------------------------------------------

    [Fact]
    public void Clients_map_to_their_group_chain_or_their_own()
    {
        var fw = AccessFirewall.Build(Policy(LeastPrivilege));
        Assert.Equal("jump g10", fw.Map4["203.0.113.2"]);          // alice: one group, nothing of her own
        Assert.Equal("jump g11", fw.Map6["fd00:1234:5678::3"]);    // bob
        Assert.Equal("jump c3", fw.Map4["203.0.113.4"]);           // carol: a rule of her own
        Assert.Equal("jump c4", fw.Map4["203.0.113.5"]);           // dave: two groups
        Assert.Equal(["jump g10", "jump g11"], fw.Chains["c4"]);
        Assert.Equal(["ip daddr 198.51.100.30 tcp dport 8000-8100 accept comment \"rule 5\""], fw.Chains["c3"]);
        Assert.Equal(["ip daddr @internal4 accept comment \"rule 3\"", "ip6 daddr @internal6 accept comment \"rule 3\""], fw.Chains["g10"]);
        Assert.Equal(
            ["ip daddr 203.0.113.1 meta l4proto 1 accept comment \"rule 6\"", "ip6 daddr fd00:1234:5678::1 meta l4proto 58 accept comment \"rule 6\"",
             "ip daddr 198.51.100.1 meta l4proto { 6, 17 } th dport 53 accept comment \"dns\""],
            fw.Chains[AccessFirewall.Everyone]);
    }

    [Fact]
    public void A_client_without_groups_or_rules_has_no_map_element()
    {
        var fw = AccessFirewall.Build(Policy(DefaultRules));
        Assert.Equal(0, fw.ElementCount);
        Assert.Equal([AccessFirewall.Everyone], fw.Chains.Keys);
    }

    [Fact]
    public void Rule_lines_for_each_protocol_and_port_form()
    {
        string One(Protocol p, int? a = null, int? b = null, string target = "198.51.100.0/25") =>
            string.Join(" | ", AccessFirewall.RuleLines(Rule(9, SubjectKind.Everyone, target, proto: p, from: a, to: b), Server));
        Assert.Equal("ip daddr 198.51.100.0/25 accept comment \"rule 9\"", One(Protocol.Any));
        Assert.Equal("ip daddr 198.51.100.0/25 meta l4proto { 6, 17 } th dport 53 accept comment \"rule 9\"", One(Protocol.Any, 53));
        Assert.Equal("ip daddr 198.51.100.0/25 meta l4proto 6 accept comment \"rule 9\"", One(Protocol.Tcp));
        Assert.Equal("ip daddr 198.51.100.0/25 udp dport 5000-5010 accept comment \"rule 9\"", One(Protocol.Udp, 5000, 5010));
        Assert.Equal("ip6 daddr fd00:aaaa::/64 meta l4proto 58 accept comment \"rule 9\"", One(Protocol.Icmp, target: "fd00:aaaa::/64"));
    }

    [Fact]
    public void A_new_group_rule_touches_only_that_group_chain()
    {
        var before = AccessFirewall.Build(Policy(LeastPrivilege));
        var after = AccessFirewall.Build(Policy([.. LeastPrivilege, Rule(7, SubjectKind.Group, "198.51.100.40/32", 11, "accounting", Protocol.Udp, 514)]));
        var diff = AccessFirewall.Diff(before, after, "mkb_vpn");
        Assert.Equal(
            "flush chain inet mkb_vpn g11\n" +
            "add rule inet mkb_vpn g11 ip daddr 198.51.100.20 tcp dport 443 accept comment \"rule 4\"\n" +
            "add rule inet mkb_vpn g11 ip daddr 198.51.100.40 udp dport 514 accept comment \"rule 7\"\n", diff);
        Assert.Equal("", AccessFirewall.Diff(after, after, "mkb_vpn"));
    }

    [Fact]
    public void Changing_one_clients_groups_touches_only_its_map_elements()
    {
        var before = AccessFirewall.Build(Policy(LeastPrivilege));
        var p2 = new AccessPolicy(Server, [Alice, Bob, Carol, Dave], [Staff, Accounting],
            new Dictionary<long, List<long>> { [1] = [10], [2] = [10], [4] = [10, 11] }, LeastPrivilege);
        var diff = AccessFirewall.Diff(before, AccessFirewall.Build(p2), "mkb_vpn");
        Assert.Equal(
            "delete element inet mkb_vpn clients4 { 203.0.113.3 }\n" +
            "add element inet mkb_vpn clients4 { 203.0.113.3 : jump g10 }\n" +
            "delete element inet mkb_vpn clients6 { fd00:1234:5678::3 }\n" +
            "add element inet mkb_vpn clients6 { fd00:1234:5678::3 : jump g10 }\n", diff);
    }

    [Fact]
    public void A_group_losing_its_last_rule_is_unmapped_before_its_chain_is_deleted()
    {
        var before = AccessFirewall.Build(Policy(LeastPrivilege));
        var after = AccessFirewall.Build(Policy([.. LeastPrivilege.Where(r => r.Id != 4)]));
        var diff = AccessFirewall.Diff(before, after, "mkb_vpn");
        // bob loses his element; dave (staff + accounting) now maps straight to staff's chain; both chains go last.
        int unmap = diff.IndexOf("delete element inet mkb_vpn clients4 { 203.0.113.3, 203.0.113.5 }", StringComparison.Ordinal);
        int remap = diff.IndexOf("add element inet mkb_vpn clients4 { 203.0.113.5 : jump g10 }", StringComparison.Ordinal);
        int deleteOwn = diff.IndexOf("delete chain inet mkb_vpn c4", StringComparison.Ordinal);
        int delete = diff.IndexOf("delete chain inet mkb_vpn g11", StringComparison.Ordinal);
        Assert.True(unmap >= 0 && remap > unmap && deleteOwn > remap && delete > deleteOwn, diff);
        Assert.DoesNotContain("clients4 { 203.0.113.2", diff);   // alice is not touched
    }

    [Fact]
    public void The_whole_table_declares_chains_before_the_maps_use_them()
    {
        string nft = NetworkSetup.RenderRules(Server, AccessFirewall.Build(Policy(LeastPrivilege)));
        Assert.Contains("203.0.113.2 : jump g10", nft);
        Assert.Contains("chain access {\n    jump everyone\n    ip saddr vmap @clients4\n    ip6 saddr vmap @clients6\n    counter drop", nft);
        Assert.Contains("iifname \"mkbunit0\" ip daddr 203.0.113.1 goto access", nft);
        Assert.Contains("iifname \"mkbunit0\" ct state established,related accept", nft);
    }

    [Fact]
    public void A_change_compared_on_the_clients_it_names_gives_the_same_difference_as_on_everybody()
    {
        // The service compares policies of the clients a change can concern only (a group's members,
        // one client); the nft script must be exactly what comparing everybody would give.
        var memberships = new Dictionary<long, List<long>> { [1] = [10], [2] = [11], [4] = [10, 11] };
        AccessPolicy P(IReadOnlyList<Client> clients, IReadOnlyList<AccessRule> rules, Dictionary<long, List<long>>? m = null) =>
            new(Server, clients, [Staff, Accounting, new Group(12, "empty", "", Now)], m ?? memberships, rules);
        var all = new List<Client> { Alice, Bob, Carol, Dave };
        string Full(IReadOnlyList<AccessRule> a, IReadOnlyList<AccessRule> b, Dictionary<long, List<long>>? ma = null, Dictionary<long, List<long>>? mb = null) =>
            AccessFirewall.Diff(AccessFirewall.Build(P(all, a, ma)), AccessFirewall.Build(P(all, b, mb)), "t");
        string Scoped(IReadOnlyList<Client> only, IReadOnlyList<AccessRule> a, IReadOnlyList<AccessRule> b, Dictionary<long, List<long>>? ma = null, Dictionary<long, List<long>>? mb = null) =>
            AccessFirewall.Diff(AccessFirewall.Build(P(only, a, ma)), AccessFirewall.Build(P(only, b, mb)), "t");

        // A rule for accounting (members bob and dave), and accounting's last rule revoked.
        IReadOnlyList<AccessRule> more = [.. LeastPrivilege, Rule(8, SubjectKind.Group, "198.51.100.50/32", 11, "accounting")];
        Assert.Equal(Full(LeastPrivilege, more), Scoped([Bob, Dave], LeastPrivilege, more));
        IReadOnlyList<AccessRule> fewer = [.. LeastPrivilege.Where(r => r.Id != 4)];
        Assert.Equal(Full(LeastPrivilege, fewer), Scoped([Bob, Dave], LeastPrivilege, fewer));
        // A rule for a group with no members and none before; one for a client.
        IReadOnlyList<AccessRule> empty = [.. LeastPrivilege, Rule(9, SubjectKind.Group, AccessRule.Internal, 12, "empty")];
        Assert.Equal(Full(LeastPrivilege, empty), Scoped([], LeastPrivilege, empty));
        IReadOnlyList<AccessRule> own = [.. LeastPrivilege, Rule(10, SubjectKind.Client, "198.51.100.60/32", 1, "alice")];
        Assert.Equal(Full(LeastPrivilege, own), Scoped([Alice], LeastPrivilege, own));
        // bob moves from accounting to staff.
        var moved = new Dictionary<long, List<long>> { [1] = [10], [2] = [10], [4] = [10, 11] };
        Assert.Equal(Full(LeastPrivilege, LeastPrivilege, memberships, moved), Scoped([Bob], LeastPrivilege, LeastPrivilege, memberships, moved));
        Assert.NotEqual("", Scoped([Bob], LeastPrivilege, LeastPrivilege, memberships, moved));
    }

    // ---- when -------------------------------------------------------------

    [Theory]
    [InlineData("14d", "2026-06-15T12:00:00Z")]
    [InlineData("12h", "2026-06-02T00:00:00Z")]
    [InlineData("30m", "2026-06-01T12:30:00Z")]
    [InlineData("2w", "2026-06-15T12:00:00Z")]
    [InlineData("2026-12-31", "2027-01-01T00:00:00Z")]
    [InlineData("2026-12-31T18:00Z", "2026-12-31T18:00:00Z")]
    [InlineData("2026-12-31T18:00+02:00", "2026-12-31T16:00:00Z")]
    [InlineData("2026-12-31T18:00", "2026-12-31T18:00:00Z")]
    public void Expiry_forms(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), When.ParseExpiry(text, Now, zone: TimeZoneInfo.Utc));

    [Theory]
    [InlineData("never")]
    [InlineData("NEVER")]
    public void Never_is_no_expiry(string text) => Assert.Null(When.ParseExpiry(text, Now));

    [Theory]
    [InlineData("2026-05-31")]
    [InlineData("2020-01-01T00:00Z")]
    [InlineData("tomorrow")]
    [InlineData("14x")]
    [InlineData("0d")]
    [InlineData("2026-13-01")]
    [InlineData("")]
    public void Bad_or_past_expiries_are_refused_with_one_line(string text)
    {
        var e = Assert.Throws<FieldException>(() => When.ParseExpiry(text, Now, zone: TimeZoneInfo.Utc));
        Assert.Equal("expires", e.Field);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Since_goes_back()
    {
        Assert.Equal(Now.AddDays(-7), When.ParseSince("7d", Now));
        Assert.Equal(Now.AddHours(-24), When.ParseSince("24h ago", Now));
        Assert.Equal(new DateTimeOffset(2026, 5, 1, 0, 0, 0, TimeSpan.Zero), When.ParseSince("2026-05-01", Now, zone: TimeZoneInfo.Utc));
    }

    // ---- destinations -----------------------------------------------------

    [Theory]
    [InlineData("198.51.100.20", "198.51.100.20", null, null)]
    [InlineData("198.51.100.20:443", "198.51.100.20", 443, Protocol.Tcp)]
    [InlineData("198.51.100.20:53/udp", "198.51.100.20", 53, Protocol.Udp)]
    [InlineData("198.51.100.20/icmp", "198.51.100.20", null, Protocol.Icmp)]
    [InlineData("[fd00:aaaa::1]:443/tcp", "fd00:aaaa::1", 443, Protocol.Tcp)]
    [InlineData("fd00:aaaa::1", "fd00:aaaa::1", null, null)]
    [InlineData("198.51.100.20/any", "198.51.100.20", null, null)]
    public void Destinations(string text, string address, int? port, Protocol? proto)
    {
        var (a, p, pr) = ClientService.ParseDestination(text);
        Assert.Equal(IPAddress.Parse(address), a);
        Assert.Equal(port, p);
        Assert.Equal(proto, pr);
    }

    [Theory]
    [InlineData("198.51.100")]
    [InlineData("198.51.100.20:0")]
    [InlineData("198.51.100.20:99999")]
    [InlineData("198.51.100.20:22/icmp")]
    [InlineData("198.51.100.20/sctp")]
    [InlineData("[fd00::1")]
    [InlineData("host.example:22")]
    public void Bad_destinations(string text)
    {
        var e = Assert.Throws<FieldException>(() => ClientService.ParseDestination(text));
        Assert.Equal("destination", e.Field);
    }
}
