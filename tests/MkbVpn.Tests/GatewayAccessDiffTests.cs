using System.Net;
using MkbVpn.Access;
using MkbVpn.Clients;
using MkbVpn.Network;

namespace MkbVpn.Tests;

/// <summary>
/// How a following gateway keeps its firewall up to date per client: the part of the model that a
/// change concerns (the changed clients, the members of groups whose rules changed) is rebuilt from
/// those clients only and put in place of their old part. The result must be exactly the model a
/// full rebuild gives, and the nft difference must touch only what changed. Pure: no store, no nft.
/// </summary>
public sealed class GatewayAccessDiffTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static readonly ServerSettings Server = Fixtures.Server(s => s with
    {
        InternalNetworks = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("fd00:aaaa::/48")],
        Dns = ["198.51.100.1"],
    });

    private static Client C(long id, int host) => Fixtures.Client($"c{id}", c => c with
    {
        Id = id,
        Address4 = IPAddress.Parse($"203.0.113.{host}"),
        Address6 = IPAddress.Parse($"fd00:1234:5678::{host:x}"),
    });

    private static readonly Group[] Groups = [new(10, "staff", "", Now), new(11, "accounting", "", Now), new(12, "it", "", Now)];

    /// <summary>The registry as the tests change it.</summary>
    private sealed record World(List<Client> Clients, Dictionary<long, List<long>> Members, List<AccessRule> Rules)
    {
        public AccessPolicy Policy(IEnumerable<Client>? only = null) =>
            new(Server, [.. only ?? Clients], Groups, Members, Rules);

        public World Copy() => new([.. Clients], Members.ToDictionary(m => m.Key, m => m.Value.ToList()), [.. Rules]);
    }

    /// <summary>What the gateway does: the affected clients' part rebuilt from them alone and put in place.</summary>
    private static (AccessFirewall Whole, IReadOnlyCollection<long> Affected) Incremental(AccessFirewall live, World before, World after, IEnumerable<long> changedClients)
    {
        var (groups, named) = ClientService.SubjectsOfChangedRules(before.Rules, after.Rules);
        var affected = changedClients.Concat(named)
            .Concat(after.Members.Where(m => m.Value.Any(groups.Contains)).Select(m => m.Key)).ToHashSet();
        var part = AccessFirewall.Build(after.Policy(after.Clients.Where(c => affected.Contains(c.Id))));
        return (live.Replace(affected, part), affected);
    }

    private static void AssertSame(AccessFirewall expected, AccessFirewall actual, string what)
    {
        Assert.True(expected.Chains.Keys.Order(StringComparer.Ordinal).SequenceEqual(actual.Chains.Keys.Order(StringComparer.Ordinal)),
            $"{what}: chains {string.Join(",", expected.Chains.Keys.Order())} expected, {string.Join(",", actual.Chains.Keys.Order())} built");
        foreach (var (name, rules) in expected.Chains)
            Assert.True(rules.SequenceEqual(actual.Chains[name]), $"{what}: chain {name} differs");
        Assert.Equal(expected.Map4.OrderBy(e => e.Key, StringComparer.Ordinal), actual.Map4.OrderBy(e => e.Key, StringComparer.Ordinal));
        Assert.Equal(expected.Map6.OrderBy(e => e.Key, StringComparer.Ordinal), actual.Map6.OrderBy(e => e.Key, StringComparer.Ordinal));
        // The model knows whose elements are whose: the next step starts from it.
        Assert.Equal("", AccessFirewall.Diff(expected, actual, "t"));
    }

    private static AccessRule Rule(long id, SubjectKind kind, string target, long? subject = null) => new()
    {
        Id = id,
        Subject = kind,
        SubjectId = subject,
        SubjectName = subject?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Target = target,
        Protocol = Protocol.Any,
        CreatedAt = Now,
    };

    private static World Start() => new(
        [.. Enumerable.Range(1, 6).Select(i => C(i, i + 1))],
        new Dictionary<long, List<long>> { [1] = [10], [2] = [11], [4] = [10, 11] },
        [Rule(1, SubjectKind.Group, AccessRule.Internal, 10), Rule(2, SubjectKind.Client, "198.51.100.30/32", 3), Rule(3, SubjectKind.Everyone, AccessRule.Server)]);

    [Fact]
    public void A_client_joining_a_group_changes_one_element_and_nothing_else()
    {
        var before = Start();
        var live = AccessFirewall.Build(before.Policy());
        var after = before.Copy();
        after.Members[5] = [10];
        var (whole, affected) = Incremental(live, before, after, [5]);
        AssertSame(AccessFirewall.Build(after.Policy()), whole, "client 5 joins staff");
        Assert.Equal([5L], affected);
        Assert.Equal("add element inet t clients4 { 203.0.113.6 : jump g10 }\nadd element inet t clients6 { fd00:1234:5678::6 : jump g10 }\n",
            AccessFirewall.Diff(live, whole, "t"));
    }

    [Fact]
    public void A_rule_for_a_group_with_rules_is_one_chain_and_no_element()
    {
        var before = Start();
        var live = AccessFirewall.Build(before.Policy());
        var after = before.Copy();
        after.Rules.Add(Rule(4, SubjectKind.Group, "198.51.100.40/32", 10));
        var (whole, affected) = Incremental(live, before, after, []);
        AssertSame(AccessFirewall.Build(after.Policy()), whole, "a second rule for staff");
        Assert.Equal([1L, 4], affected.Order());
        string diff = AccessFirewall.Diff(live, whole, "t");
        Assert.StartsWith("flush chain inet t g10\n", diff, StringComparison.Ordinal);
        Assert.DoesNotContain("element", diff, StringComparison.Ordinal);
    }

    [Fact]
    public void A_group_gaining_its_first_rule_points_its_members_to_its_chain_and_losing_it_undoes_that()
    {
        var before = Start();
        var live = AccessFirewall.Build(before.Policy());
        var after = before.Copy();
        after.Rules.Add(Rule(5, SubjectKind.Group, "198.51.100.50/32", 11));
        var (whole, _) = Incremental(live, before, after, []);
        AssertSame(AccessFirewall.Build(after.Policy()), whole, "accounting's first rule");
        string diff = AccessFirewall.Diff(live, whole, "t");
        Assert.Contains("add chain inet t g11\n", diff, StringComparison.Ordinal);
        Assert.Contains("203.0.113.3 : jump g11", diff, StringComparison.Ordinal);        // client 2: accounting only
        Assert.Contains("203.0.113.5 : jump c4", diff, StringComparison.Ordinal);         // client 4: staff and accounting
        Assert.DoesNotContain("203.0.113.2", diff, StringComparison.Ordinal);             // client 1: staff only, untouched

        var (back, _) = Incremental(whole, after, before, []);
        AssertSame(live, back, "accounting's rule revoked");
        Assert.Contains("delete chain inet t g11\n", AccessFirewall.Diff(whole, back, "t"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_removed_client_and_a_moved_address_leave_no_stale_element_or_chain()
    {
        var before = Start();
        var live = AccessFirewall.Build(before.Policy());
        var after = before.Copy();
        after.Clients.RemoveAll(c => c.Id == 3);                                    // carol (own rule, own chain) removed
        after.Rules.RemoveAll(r => r.Subject == SubjectKind.Client && r.SubjectId == 3);
        after.Clients[after.Clients.FindIndex(c => c.Id == 4)] = C(4, 40);          // client 4 renumbered
        var (whole, _) = Incremental(live, before, after, [3, 4]);
        AssertSame(AccessFirewall.Build(after.Policy()), whole, "client 3 removed, client 4 moved");
        Assert.False(whole.Chains.ContainsKey("c3"));
        Assert.False(whole.Map4.ContainsKey("203.0.113.5"));
    }

    [Fact]
    public void Random_changes_applied_per_client_always_equal_a_full_rebuild()
    {
        var random = new Random(20261126);
        var world = Start();
        var live = AccessFirewall.Build(world.Policy());
        long nextRule = 100, nextClient = 100;
        for (int step = 0; step < 400; step++)
        {
            var after = world.Copy();
            var changed = new List<long>();
            var ids = after.Clients.Select(c => c.Id).ToList();
            switch (random.Next(6))
            {
                case 0 when ids.Count > 0:   // 'set --group'
                    long who = ids[random.Next(ids.Count)];
                    after.Members[who] = [.. Groups.Where(_ => random.Next(3) == 0).Select(g => g.Id)];
                    changed.Add(who);
                    break;
                case 1:   // 'access allow' for a group, a client or everyone
                    int kind = random.Next(3);
                    after.Rules.Add(kind == 0 ? Rule(nextRule++, SubjectKind.Group, $"198.51.100.{random.Next(1, 250)}/32", Groups[random.Next(Groups.Length)].Id)
                        : kind == 1 && ids.Count > 0 ? Rule(nextRule++, SubjectKind.Client, AccessRule.Internal, ids[random.Next(ids.Count)])
                        : Rule(nextRule++, SubjectKind.Everyone, $"198.51.100.{random.Next(1, 250)}/32"));
                    break;
                case 2 when after.Rules.Count > 0:   // 'access revoke'
                    after.Rules.RemoveAt(random.Next(after.Rules.Count));
                    break;
                case 3:   // 'add'
                    long id = nextClient++;
                    after.Clients.Add(C(id, (int)id - 80));
                    if (random.Next(2) == 0)
                        after.Members[id] = [Groups[random.Next(Groups.Length)].Id];
                    changed.Add(id);
                    break;
                case 4 when ids.Count > 0:   // 'remove' (its rules and memberships go with it)
                    long gone = ids[random.Next(ids.Count)];
                    after.Clients.RemoveAll(c => c.Id == gone);
                    after.Members.Remove(gone);
                    after.Rules.RemoveAll(r => r.Subject == SubjectKind.Client && r.SubjectId == gone);
                    changed.Add(gone);
                    break;
                default:   // 'set --dns' on a client: its own chain gains the DNS rule
                    if (ids.Count == 0)
                        break;
                    int at = random.Next(after.Clients.Count);
                    after.Clients[at] = after.Clients[at] with { Dns = after.Clients[at].Dns is null ? ["198.51.100.53"] : null };
                    changed.Add(after.Clients[at].Id);
                    break;
            }
            var (whole, _) = Incremental(live, world, after, changed);
            var full = AccessFirewall.Build(after.Policy());
            AssertSame(full, whole, $"step {step}");
            (world, live) = (after, whole);
        }
    }

    [Fact]
    public void Notifications_name_clients_or_all_and_anything_else_is_a_full_reconcile()
    {
        var a = ClientService.ClientIdsOf(["client:3", "client:7", "client:3"]);
        Assert.True(a is { All: false } && a.Value.Ids.SetEquals([3L, 7]));
        Assert.True(ClientService.ClientIdsOf(["all", "client:5"]) is { All: true } b && b.Ids.SetEquals([5L]));
        Assert.Null(ClientService.ClientIdsOf(["client:x"]));
        Assert.Null(ClientService.ClientIdsOf(["gateway:1"]));
        Assert.Null(ClientService.ClientIdsOf([.. Enumerable.Range(1, 300).Select(i => $"client:{i}")]));
    }

    [Fact]
    public void Only_rules_that_were_added_or_removed_count_and_a_renamed_group_is_no_change()
    {
        var before = new List<AccessRule> { Rule(1, SubjectKind.Group, AccessRule.Internal, 10), Rule(2, SubjectKind.Client, AccessRule.Internal, 3), Rule(3, SubjectKind.Everyone, AccessRule.Server) };
        var renamed = before.Select(r => r with { SubjectName = "renamed" }).ToList();
        Assert.Equal((0, 0), ClientService.SubjectsOfChangedRules(before, renamed) is var (g0, c0) ? (g0.Count, c0.Count) : default);
        var after = new List<AccessRule> { before[0], Rule(4, SubjectKind.Group, AccessRule.Server, 11), Rule(5, SubjectKind.Everyone, AccessRule.Internal) };
        var (groups, clients) = ClientService.SubjectsOfChangedRules(before, after);
        Assert.Equal([11L], groups);
        Assert.Equal([3L], clients);
    }
}
