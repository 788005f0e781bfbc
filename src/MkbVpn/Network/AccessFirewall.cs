using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MkbVpn.Access;

namespace MkbVpn.Network;

/// <summary>
/// The access rules as nftables objects in mkb-vpn's table: a chain "everyone", a chain per group
/// that has rules ("g&lt;id&gt;"), a chain per client that needs its own ("c&lt;id&gt;": several
/// groups, or rules of its own), and two verdict maps from a client's tunnel address to the chain
/// that holds its rules. A change is a difference of two models: only the chains and map elements
/// concerned are touched, in one nft transaction, so nobody else's traffic is disturbed.
/// </summary>
public sealed class AccessFirewall
{
    public const string Everyone = "everyone";

    private AccessFirewall(Dictionary<string, List<string>> chains, Dictionary<string, string> map4, Dictionary<string, string> map6,
        Dictionary<long, (string? V4, string? V6)> owners)
    {
        Chains = chains;
        Map4 = map4;
        Map6 = map6;
        _owners = owners;
    }

    /// <summary>Client id -> its map keys, for the clients that have an element (the part of the model that is theirs).</summary>
    private readonly Dictionary<long, (string? V4, string? V6)> _owners;

    /// <summary>Chain name -> its rules (nft rule text without the "add rule" prefix).</summary>
    public IReadOnlyDictionary<string, List<string>> Chains { get; }

    /// <summary>Client IPv4 address -> verdict ("jump g3").</summary>
    public IReadOnlyDictionary<string, string> Map4 { get; }

    /// <summary>Client IPv6 address -> verdict.</summary>
    public IReadOnlyDictionary<string, string> Map6 { get; }

    public int ElementCount => Map4.Count + Map6.Count;

    public static AccessFirewall Build(AccessPolicy policy)
    {
        var server = policy.Server;
        var chains = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var everyone = new List<string>();
        foreach (var r in policy.Rules.Where(r => r.Subject == SubjectKind.Everyone))
            everyone.AddRange(RuleLines(r, server));
        everyone.AddRange(DnsLines(server.Dns, policy, "dns"));
        chains[Everyone] = everyone;

        var groupChains = new Dictionary<long, string>();
        foreach (var g in policy.Rules.Where(r => r.Subject == SubjectKind.Group).GroupBy(r => r.SubjectId!.Value).OrderBy(g => g.Key))
        {
            string name = $"g{g.Key}";
            chains[name] = [.. g.SelectMany(r => RuleLines(r, server))];
            groupChains[g.Key] = name;
        }
        var personal = policy.Rules.Where(r => r.Subject == SubjectKind.Client).ToLookup(r => r.SubjectId!.Value);
        var map4 = new Dictionary<string, string>(StringComparer.Ordinal);
        var map6 = new Dictionary<string, string>(StringComparer.Ordinal);
        var owners = new Dictionary<long, (string?, string?)>();
        foreach (var c in policy.Clients)
        {
            var jumps = policy.GroupIdsOf(c).Where(groupChains.ContainsKey).Select(g => groupChains[g]).ToList();
            var own = personal[c.Id].SelectMany(r => RuleLines(r, server)).ToList();
            if (c.Dns is not null)
                own.AddRange(DnsLines(c.Dns, policy, "dns of this client"));
            string? target;
            if (own.Count == 0 && jumps.Count == 0)
                target = null;
            else if (own.Count == 0 && jumps.Count == 1)
                target = jumps[0];
            else
            {
                target = $"c{c.Id}";
                chains[target] = [.. jumps.Select(j => $"jump {j}"), .. own];
            }
            if (target is null)
                continue;
            string? k4 = c.Address4?.ToString(), k6 = c.Address6?.ToString();
            if (k4 is not null)
                map4[k4] = $"jump {target}";
            if (k6 is not null)
                map6[k6] = $"jump {target}";
            owners[c.Id] = (k4, k6);
        }
        return new AccessFirewall(chains, map4, map6, owners);
    }

    /// <summary>Whether a chain is shared (everyone's or a group's) rather than one client's own.</summary>
    private static bool Shared(string chain) => chain[0] != 'c';

    /// <summary>
    /// The part of this model that a change to <paramref name="clients"/> can touch: the shared chains
    /// (everyone, groups) and those clients' map elements and own chains. Compared with
    /// <see cref="Build"/> of a policy holding only those clients, it gives the difference to apply.
    /// </summary>
    public AccessFirewall Only(IReadOnlyCollection<long> clients)
    {
        var chains = Chains.Where(c => Shared(c.Key)).ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        var map4 = new Dictionary<string, string>(StringComparer.Ordinal);
        var map6 = new Dictionary<string, string>(StringComparer.Ordinal);
        var owners = new Dictionary<long, (string?, string?)>();
        foreach (long id in clients)
        {
            if (Chains.TryGetValue($"c{id}", out var own))
                chains[$"c{id}"] = own;
            if (!_owners.TryGetValue(id, out var keys))
                continue;
            owners[id] = keys;
            if (keys.V4 is { } k4 && Map4.TryGetValue(k4, out var v4))
                map4[k4] = v4;
            if (keys.V6 is { } k6 && Map6.TryGetValue(k6, out var v6))
                map6[k6] = v6;
        }
        return new AccessFirewall(chains, map4, map6, owners);
    }

    /// <summary>
    /// This model with <paramref name="clients"/>' part replaced by <paramref name="part"/> (built
    /// from a policy holding only those clients, which may have changed or gone): the shared chains
    /// are taken from <paramref name="part"/> (the rules as they are now), everyone else's elements and
    /// own chains are kept. The whole model after a change, without rebuilding anybody else's.
    /// </summary>
    public AccessFirewall Replace(IReadOnlyCollection<long> clients, AccessFirewall part)
    {
        var gone = clients.ToHashSet();
        var chains = Chains.Where(c => !Shared(c.Key) && !(long.TryParse(c.Key.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long id) && gone.Contains(id)))
            .ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        foreach (var (name, rules) in part.Chains)
            chains[name] = rules;
        var map4 = new Dictionary<string, string>(Map4, StringComparer.Ordinal);
        var map6 = new Dictionary<string, string>(Map6, StringComparer.Ordinal);
        var owners = new Dictionary<long, (string? V4, string? V6)>(_owners);
        foreach (long id in gone)
        {
            if (!owners.Remove(id, out var keys))
                continue;
            if (keys.V4 is { } k4)
                map4.Remove(k4);
            if (keys.V6 is { } k6)
                map6.Remove(k6);
        }
        foreach (var (id, keys) in part._owners)
        {
            owners[id] = keys;
            if (keys.V4 is { } k4)
                map4[k4] = part.Map4[k4];
            if (keys.V6 is { } k6)
                map6[k6] = part.Map6[k6];
        }
        return new AccessFirewall(chains, map4, map6, owners);
    }

    /// <summary>The nft rule lines of one access rule (one per address family it concerns).</summary>
    public static IEnumerable<string> RuleLines(AccessRule r, Clients.ServerSettings server)
    {
        string comment = $" comment \"rule {r.Id}\"";
        IEnumerable<string> destinations = r.Target switch
        {
            AccessRule.Internal => ["ip daddr @internal4", "ip6 daddr @internal6"],
            _ => AccessRule.Resolve(r.Target, server).Select(n => n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? $"ip daddr {Net(n)}" : $"ip6 daddr {Net(n)}"),
        };
        foreach (var d in destinations)
        {
            bool v6 = d.StartsWith("ip6", StringComparison.Ordinal);
            string ports = r.PortFrom is { } a ? (r.PortTo is { } b && b != a ? $"{a}-{b}" : a.ToString(CultureInfo.InvariantCulture)) : "";
            string service = (r.Protocol, r.HasPorts) switch
            {
                (Protocol.Any, false) => "",
                (Protocol.Any, true) => $" meta l4proto {{ 6, 17 }} th dport {ports}",
                (Protocol.Tcp, false) => " meta l4proto 6",
                (Protocol.Udp, false) => " meta l4proto 17",
                (Protocol.Tcp, true) => $" tcp dport {ports}",
                (Protocol.Udp, true) => $" udp dport {ports}",
                _ => v6 ? " meta l4proto 58" : " meta l4proto 1",
            };
            yield return $"{d}{service} accept{comment}";
        }
    }

    /// <summary>Port 53 to DNS servers inside the internal networks or on the server: a client that cannot resolve names is useless.</summary>
    private static IEnumerable<string> DnsLines(IEnumerable<string> dns, AccessPolicy policy, string comment)
    {
        foreach (var d in dns)
        {
            if (!IPAddress.TryParse(d, out var a) || !policy.IsGoverned(a))
                continue;
            string match = a.AddressFamily == AddressFamily.InterNetwork ? $"ip daddr {a}" : $"ip6 daddr {a}";
            yield return $"{match} meta l4proto {{ 6, 17 }} th dport 53 accept comment \"{comment}\"";
        }
    }

    private static string Net(IPNetwork n) =>
        n.PrefixLength == (n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128) ? n.BaseAddress.ToString() : n.ToString();

    /// <summary>Declarations and contents for a whole-table load (inside "table inet mkb_vpn { ... }").</summary>
    public void RenderDeclarations(StringBuilder sb)
    {
        AppendMap(sb, "clients4", "ipv4_addr", Map4);
        AppendMap(sb, "clients6", "ipv6_addr", Map6);
        // Chains are declared before use: group chains first, then clients' (which jump to groups).
        foreach (var (name, rules) in OrderedChains(Chains))
        {
            sb.Append($"  chain {name} {{\n");
            foreach (var r in rules)
                sb.Append("    ").Append(r).Append('\n');
            sb.Append("  }\n");
        }
    }

    private static void AppendMap(StringBuilder sb, string name, string type, IReadOnlyDictionary<string, string> map)
    {
        sb.Append($"  map {name} {{\n    type {type} : verdict\n");
        if (map.Count > 0)
            sb.Append("    elements = { ").AppendJoin(",\n      ", map.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key} : {e.Value}")).Append(" }\n");
        sb.Append("  }\n");
    }

    private static IEnumerable<KeyValuePair<string, List<string>>> OrderedChains(IReadOnlyDictionary<string, List<string>> chains) =>
        chains.OrderBy(c => c.Key == Everyone ? 0 : c.Key[0] == 'g' ? 1 : 2).ThenBy(c => c.Key, StringComparer.Ordinal);

    /// <summary>
    /// The nft script that turns the live state <paramref name="from"/> into <paramref name="to"/>:
    /// new chains, changed chains (flushed and refilled), map elements, then chains no longer used.
    /// Empty when nothing differs.
    /// </summary>
    public static string Diff(AccessFirewall from, AccessFirewall to, string table)
    {
        var sb = new StringBuilder();
        string t = $"inet {table}";
        foreach (var (name, _) in OrderedChains(to.Chains))
            if (!from.Chains.ContainsKey(name))
                sb.Append($"add chain {t} {name}\n");
        foreach (var (name, rules) in OrderedChains(to.Chains))
        {
            if (from.Chains.TryGetValue(name, out var old) && old.SequenceEqual(rules))
                continue;
            if (from.Chains.ContainsKey(name))
                sb.Append($"flush chain {t} {name}\n");
            foreach (var r in rules)
                sb.Append($"add rule {t} {name} {r}\n");
        }
        DiffMap(sb, t, "clients4", from.Map4, to.Map4);
        DiffMap(sb, t, "clients6", from.Map6, to.Map6);
        // Chains that nothing uses any more: emptied first (they may jump to each other), then deleted.
        var gone = from.Chains.Keys.Where(k => !to.Chains.ContainsKey(k)).OrderBy(k => k[0] == 'c' ? 0 : 1).ToList();
        foreach (var name in gone)
            sb.Append($"flush chain {t} {name}\n");
        foreach (var name in gone)
            sb.Append($"delete chain {t} {name}\n");
        return sb.ToString();
    }

    private static void DiffMap(StringBuilder sb, string t, string map, IReadOnlyDictionary<string, string> from, IReadOnlyDictionary<string, string> to)
    {
        var delete = from.Where(e => !to.TryGetValue(e.Key, out var v) || v != e.Value).Select(e => e.Key).ToList();
        var add = to.Where(e => !from.TryGetValue(e.Key, out var v) || v != e.Value).ToList();
        if (delete.Count > 0)
            sb.Append($"delete element {t} {map} {{ ").AppendJoin(", ", delete).Append(" }\n");
        if (add.Count > 0)
            sb.Append($"add element {t} {map} {{ ").AppendJoin(", ", add.Select(e => $"{e.Key} : {e.Value}")).Append(" }\n");
    }
}
