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

    private AccessFirewall(Dictionary<string, List<string>> chains, Dictionary<string, string> map4, Dictionary<string, string> map6)
    {
        Chains = chains;
        Map4 = map4;
        Map6 = map6;
    }

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
            if (c.Address4 is { } a4)
                map4[a4.ToString()] = $"jump {target}";
            if (c.Address6 is { } a6)
                map6[a6.ToString()] = $"jump {target}";
        }
        return new AccessFirewall(chains, map4, map6);
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
