using System.Net;
using System.Net.Sockets;
using MkbVpn.Clients;

namespace MkbVpn.Access;

/// <summary>
/// Everything that decides who may reach what, loaded once from the store: the server, the
/// clients, their groups and the rules. Pure: the firewall model, the client configs and
/// 'access check' are all computed from it, so they cannot disagree.
/// </summary>
public sealed class AccessPolicy
{
    private readonly Dictionary<long, List<long>> _memberships;

    public AccessPolicy(ServerSettings server, IReadOnlyList<Client> clients, IReadOnlyList<Group> groups,
        Dictionary<long, List<long>> memberships, IReadOnlyList<AccessRule> rules)
    {
        Server = server;
        Clients = clients;
        Groups = groups;
        Rules = rules;
        _memberships = memberships;
    }

    public ServerSettings Server { get; }

    /// <summary>The same clients, groups and rules on other settings (a gateway's, <see cref="Gateways.Gateway.Serve"/>): its internal networks and subnets decide the routes.</summary>
    public AccessPolicy On(ServerSettings server) => ReferenceEquals(server, Server) ? this : new(server, Clients, Groups, _memberships, Rules);

    /// <summary>The same server, groups and rules with only <paramref name="clients"/> (e.g. those one interface serves: its firewall's part).</summary>
    public AccessPolicy Of(IReadOnlyList<Client> clients) => new(Server, clients, Groups, _memberships, Rules);

    public IReadOnlyList<Client> Clients { get; }
    public IReadOnlyList<Group> Groups { get; }
    public IReadOnlyList<AccessRule> Rules { get; }

    public IReadOnlyList<long> GroupIdsOf(Client c) => _memberships.TryGetValue(c.Id, out var g) ? g : [];

    /// <summary>The rules that name the client, one of its groups, or everyone.</summary>
    public IEnumerable<AccessRule> RulesFor(Client c)
    {
        var groups = GroupIdsOf(c);
        return Rules.Where(r => r.Subject switch
        {
            SubjectKind.Everyone => true,
            SubjectKind.Group => groups.Contains(r.SubjectId!.Value),
            _ => r.SubjectId == c.Id,
        });
    }

    /// <summary>
    /// The networks a split-tunnel client routes through the VPN: its VPN subnets, then whatever its
    /// rules let it reach (whole internal networks in the server's order, then narrower targets), and
    /// a DNS server inside an internal network. With the default rule this is exactly the server's
    /// split-tunnel default, so configs written before access rules existed stay byte for byte.
    /// </summary>
    public IReadOnlyList<IPNetwork> SplitTunnelRoutes(Client c)
    {
        var list = new List<IPNetwork>();
        if (Server.Subnet4 is { } s4) list.Add(s4);
        if (Server.Subnet6 is { } s6) list.Add(s6);
        var targets = RulesFor(c).SelectMany(r => AccessRule.Resolve(r.Target, Server)).ToList();
        foreach (var dns in (c.Dns ?? Server.Dns).Select(d => IPAddress.TryParse(d, out var a) ? a : null).OfType<IPAddress>())
        {
            if (Server.InternalNetworks.Any(n => n.Contains(dns)))
                targets.Add(new IPNetwork(dns, dns.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
        }
        // Whole internal networks first, in the server's order (the historical rendering).
        foreach (var n in Server.InternalNetworks)
            if (targets.Contains(n) && !Covered(list, n))
                list.Add(n);
        foreach (var n in targets.Distinct().OrderBy(n => n.BaseAddress.AddressFamily).ThenBy(n => n.BaseAddress, AddressComparer.Instance).ThenBy(n => n.PrefixLength))
            if (!Covered(list, n))
                list.Add(n);
        return list;
    }

    private static bool Covered(List<IPNetwork> list, IPNetwork n) =>
        list.Any(x => x.BaseAddress.AddressFamily == n.BaseAddress.AddressFamily && x.PrefixLength <= n.PrefixLength && x.Contains(n.BaseAddress));

    /// <summary>What a client's config routes: its own AllowedIPs if set, full tunnel, or the split-tunnel routes.</summary>
    public IReadOnlyList<IPNetwork> ConfigAllowedIps(Client c) =>
        c.AllowedIps ?? (Server.FullTunnel ? Server.DefaultClientAllowedIps() : SplitTunnelRoutes(c));

    /// <summary>Whether the destination is governed by the rules (inside an internal network or the server's tunnel address).</summary>
    public bool IsGoverned(IPAddress dest) =>
        Server.InternalNetworks.Any(n => n.Contains(dest)) || dest.Equals(Server.ServerAddress4) || dest.Equals(Server.ServerAddress6);

    /// <summary>
    /// 'access check': may the client reach DEST (on PORT over PROTO)? Names the rules that decide.
    /// Without a protocol, the question is "any traffic"; rules for some ports only are then listed as partial.
    /// </summary>
    public CheckResult Check(Client c, IPAddress dest, int? port, Protocol? protocol, DateTimeOffset now)
    {
        var reasons = new List<string>();
        if (c.IsExpired(now))
            return new CheckResult(Verdict.Deny, [], [], $"{c.Name} expired at {When.Format(c.ExpiresAt!.Value)}: it cannot connect at all");
        if (!c.Enabled)
            return new CheckResult(Verdict.Deny, [], [], $"{c.Name} is blocked: it cannot connect at all");
        if (!IsGoverned(dest))
        {
            bool ownSubnet = Server.Subnet4 is { } s4 && s4.Contains(dest) || Server.Subnet6 is { } s6 && s6.Contains(dest);
            if (ownSubnet)
                return Server.ClientToClient
                    ? new CheckResult(Verdict.Allow, [], [], "another VPN client: client-to-client traffic is on for this server")
                    : new CheckResult(Verdict.Deny, [], [], "another VPN client: client-to-client traffic is off for this server");
            return Server.FullTunnel
                ? new CheckResult(Verdict.Allow, [], [], $"{dest} is outside the internal networks: full tunnel sends it on to the internet")
                : new CheckResult(Verdict.Deny, [], [], $"{dest} is outside the internal networks and this server is split tunnel: it is not forwarded");
        }
        bool Matches(AccessRule r) => AccessRule.Resolve(r.Target, Server).Any(n => n.Contains(dest));
        var candidates = RulesFor(c).Where(Matches).ToList();
        var deciding = new List<AccessRule>();
        var partial = new List<AccessRule>();
        foreach (var r in candidates)
        {
            if (protocol is null)
            {
                if (r.Protocol == Protocol.Any && !r.HasPorts)
                    deciding.Add(r);
                else
                    partial.Add(r);
                continue;
            }
            bool protoOk = r.Protocol == Protocol.Any ? (!r.HasPorts || protocol is Protocol.Tcp or Protocol.Udp) : r.Protocol == protocol;
            bool portOk = !r.HasPorts || (port is { } p && r.AppliesToPort(p));
            if (protoOk && portOk)
                deciding.Add(r);
            else if (protoOk && port is null && r.HasPorts)
                partial.Add(r);
        }
        bool dnsPort = port == 53 && protocol is Protocol.Tcp or Protocol.Udp;
        string? builtin = null;
        if (deciding.Count == 0 && dnsPort && (c.Dns ?? Server.Dns).Any(d => IPAddress.TryParse(d, out var a) && a.Equals(dest)))
            builtin = $"{dest} is a DNS server in {c.Name}'s config: port 53 is always open to it";
        if (deciding.Count > 0)
            return new CheckResult(Verdict.Allow, deciding, partial, null);
        if (builtin is not null)
            return new CheckResult(Verdict.Allow, [], partial, builtin);
        if (partial.Count > 0)
            return new CheckResult(Verdict.Partial, [], partial, "only some traffic is allowed: give a port and protocol to ask about one service");
        return new CheckResult(Verdict.Deny, [], [], $"no rule lets {c.Name} reach {dest}{(port is { } pp ? $" port {pp}" : "")}");
    }
}

public enum Verdict
{
    Allow,
    Deny,
    /// <summary>Some protocols or ports are allowed, not all (asked without a protocol).</summary>
    Partial,
}

/// <summary>The answer of 'access check': the verdict, the rules that decide it, and why in words.</summary>
public sealed record CheckResult(Verdict Verdict, IReadOnlyList<AccessRule> Deciding, IReadOnlyList<AccessRule> Partial, string? Reason);

/// <summary>Orders addresses of one family numerically.</summary>
public sealed class AddressComparer : IComparer<IPAddress>
{
    public static readonly AddressComparer Instance = new();

    public int Compare(IPAddress? x, IPAddress? y) =>
        Addressing.AddressPool.ToNumber(x!).CompareTo(Addressing.AddressPool.ToNumber(y!));
}
