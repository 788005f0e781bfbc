using System.Net;
using System.Net.Sockets;
using MkbVpn.Access;
using MkbVpn.Addressing;
using MkbVpn.Audit;
using MkbVpn.Devices;
using MkbVpn.Network;
using MkbVpn.Storage;

namespace MkbVpn.Clients;

/// <summary>What 'set' changes; null leaves a field as it is.</summary>
public sealed record SetRequest(string Name)
{
    /// <summary>The client's groups (replacing the old list); empty = no groups.</summary>
    public IReadOnlyList<string>? Groups { get; init; }
    /// <summary>An expiry as an admin writes it ("2026-12-31", "14d", "never").</summary>
    public string? Expires { get; init; }
    /// <summary>DNS servers; ["none"] for none, ["default"] for the server's.</summary>
    public IReadOnlyList<string>? Dns { get; init; }
    /// <summary>AllowedIPs of the client's config; ["default"] for what the server and the rules give.</summary>
    public IReadOnlyList<string>? AllowedIps { get; init; }
    /// <summary>PersistentKeepalive seconds, or "default".</summary>
    public string? Keepalive { get; init; }
    public string? Rename { get; init; }
    /// <summary>The gateways that serve the client (replacing the old list); ["all"]: every gateway.</summary>
    public IReadOnlyList<string>? Gateways { get; init; }
}

/// <summary>'access allow': WHO may reach TO, optionally one protocol and port range.</summary>
public sealed record AllowRequest(string Who, string To)
{
    /// <summary>"443" or "8000-8100".</summary>
    public string? Port { get; init; }
    /// <summary>"tcp", "udp", "icmp" or "any" (default).</summary>
    public string? Protocol { get; init; }
}

public sealed record RuleResult(AccessRule Rule, bool Created);

public sealed record AccessCheck(Client Client, IPAddress Destination, int? Port, Protocol? Protocol, CheckResult Result);

public sealed partial class ClientService
{
    public const int MaxListEntries = 64;

    // ---- groups -----------------------------------------------------------

    public IReadOnlyList<Group> ListGroups()
    {
        using var store = OpenStore();
        store.RequireServer();
        return store.ListGroups();
    }

    public Group AddGroup(string name, string? description)
    {
        if (GroupName.Validate(name) is { } reason)
            throw new FieldException("name", $"name: {reason}");
        description = (description ?? "").Trim();
        if (description.Length > 200 || description.Any(char.IsControl))
            throw new FieldException("description", "description: at most 200 characters, on one line");
        return Write((store, server, live) =>
        {
            var g = store.InsertGroup(name, description, Now);
            store.AppendAudit(Now, Actor, "group add", $"group:{name}", null, description.Length > 0 ? description : null);
            return g;
        });
    }

    /// <summary>Removes a group. Rules that name it are refused unless <paramref name="force"/>, which removes them too.</summary>
    public (Group Group, IReadOnlyList<AccessRule> RulesRemoved) RemoveGroup(string name, bool force)
    {
        return Write((store, server, live) =>
        {
            var g = RequireGroup(store, name, "name");
            var rules = store.ListRules().Where(r => r.Subject == SubjectKind.Group && r.SubjectId == g.Id).ToList();
            if (rules.Count > 0 && !force)
                throw new FieldException("name", $"name: {rules.Count} rule(s) still name group:{g.Name} (ids {string.Join(", ", rules.Select(r => r.Id))}); revoke them, or remove the group with --force to remove them too");
            store.DeleteGroup(g.Id);   // memberships and its rules go with it (foreign keys)
            store.AppendAudit(Now, Actor, "group remove", $"group:{g.Name}", null,
                $"{g.Members} member(s)" + (rules.Count > 0 ? $"; rules removed: {string.Join("; ", rules.Select(r => $"#{r.Id} {r}"))}" : ""));
            return (g, (IReadOnlyList<AccessRule>)rules);
        }, store => store.FindGroup(name) is { } g ? store.ClientsInGroup(g.Id) : []);
    }

    private static Group RequireGroup(Store store, string name, string field = "group")
    {
        if (GroupName.Validate(name) is { } reason)
            throw new FieldException(field, $"{field}: {reason}");
        return store.FindGroup(name) ?? throw new FieldException(field, $"{field}: no group named '{name}' (see 'mkb-vpn group list')", ExitCodes.NotFound);
    }

    // ---- access rules -----------------------------------------------------

    public IReadOnlyList<AccessRule> ListRules()
    {
        using var store = OpenStore();
        store.RequireServer();
        return store.ListRules();
    }

    public RuleResult Allow(AllowRequest request)
    {
        return Write((store, server, live) =>
        {
            var rule = ParseRule(store, server, request);
            var existing = store.ListRules().FirstOrDefault(r => r.SameAs(rule));
            if (existing is not null)
                return new RuleResult(existing, Created: false);
            rule = store.InsertRule(rule);
            store.AppendAudit(Now, Actor, "access allow", $"rule #{rule.Id}", rule.Subject == SubjectKind.Client ? rule.SubjectName : null, rule.ToString());
            return new RuleResult(rule, Created: true);
        }, store => ClientsNamedBy(store, request.Who));
    }

    public AccessRule Revoke(long id)
    {
        return Write((store, server, live) =>
        {
            var rule = store.ListRules().FirstOrDefault(r => r.Id == id)
                ?? throw new FieldException("id", $"id: no access rule #{id} (see 'mkb-vpn access list')", ExitCodes.NotFound);
            store.DeleteRule(id);
            store.AppendAudit(Now, Actor, "access revoke", $"rule #{rule.Id}", rule.Subject == SubjectKind.Client ? rule.SubjectName : null, rule.ToString());
            return rule;
        }, store => store.ListRules().FirstOrDefault(r => r.Id == id) is { } rule ? ClientsNamedBy(store, rule.Who) : []);
    }

    /// <summary>Validates WHO, TO, port and protocol into a rule (not yet stored).</summary>
    private AccessRule ParseRule(Store store, ServerSettings server, AllowRequest r)
    {
        string who = (r.Who ?? "").Trim();
        SubjectKind kind;
        long? id = null;
        string? subjectName = null;
        if (who.Equals("everyone", StringComparison.OrdinalIgnoreCase))
            kind = SubjectKind.Everyone;
        else if (who.StartsWith("group:", StringComparison.OrdinalIgnoreCase))
        {
            var g = RequireGroup(store, who["group:".Length..], "who");
            (kind, id, subjectName) = (SubjectKind.Group, g.Id, g.Name);
        }
        else if (who.StartsWith("client:", StringComparison.OrdinalIgnoreCase))
        {
            string name = who["client:".Length..];
            if (ClientName.Validate(name) is { } reason)
                throw new FieldException("who", $"who: {reason}");
            var c = store.FindClient(name) ?? throw new FieldException("who", $"who: no client named '{name}'", ExitCodes.NotFound);
            (kind, id, subjectName) = (SubjectKind.Client, c.Id, c.Name);
        }
        else
            throw new FieldException("who", $"who: '{UserInputException.Shown(who)}' is not everyone, group:NAME or client:NAME");

        string to = (r.To ?? "").Trim();
        string target;
        if (to.Equals(AccessRule.Internal, StringComparison.OrdinalIgnoreCase))
            target = AccessRule.Internal;
        else if (to.Equals(AccessRule.Server, StringComparison.OrdinalIgnoreCase))
            target = AccessRule.Server;
        else
        {
            IPNetwork net;
            if (!to.Contains('/') && IPAddress.TryParse(to, out var single))
                net = new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
            else if (!Cidr.TryParseNetwork(to, out net, out var error))
                throw new FieldException("to", $"to: {error}; or use 'internal' or 'server'");
            if (!server.InternalNetworks.Any(n => n.BaseAddress.AddressFamily == net.BaseAddress.AddressFamily && n.PrefixLength <= net.PrefixLength && n.Contains(net.BaseAddress)))
                throw new FieldException("to", server.InternalNetworks.Count == 0
                    ? $"to: {net} is not inside an internal network (this server has none; add them with 'mkb-vpn init --change --internal-network CIDR')"
                    : $"to: {net} is not inside the internal networks ({string.Join(", ", server.InternalNetworks)})");
            target = net.ToString();
        }

        if (!AccessRule.TryParseProtocol(r.Protocol, out var protocol))
            throw new FieldException("proto", $"proto: '{UserInputException.Shown(r.Protocol ?? "")}' is not tcp, udp, icmp or any");
        int? from = null, toPort = null;
        if (r.Port is { } portText && portText.Trim().Length > 0)
        {
            if (protocol == Protocol.Icmp)
                throw new FieldException("port", "port: icmp has no ports; leave out --port or choose tcp or udp");
            var parts = portText.Trim().Split('-');
            if (parts.Length > 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, null, out int a) ||
                (parts.Length == 2 && !int.TryParse(parts[1], System.Globalization.NumberStyles.None, null, out _)))
                throw new FieldException("port", $"port: '{UserInputException.Shown(portText)}' is not a port or a range like 8000-8100");
            int b = parts.Length == 2 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : a;
            if (a is < 1 or > 65535 || b is < 1 or > 65535)
                throw new FieldException("port", $"port: '{UserInputException.Shown(portText)}': ports are 1-65535");
            if (b < a)
                throw new FieldException("port", $"port: '{UserInputException.Shown(portText)}': the range ends before it starts");
            (from, toPort) = (a, b == a ? null : b);
        }
        return new AccessRule
        {
            Id = 0,
            Subject = kind,
            SubjectId = id,
            SubjectName = subjectName,
            Target = target,
            Protocol = protocol,
            PortFrom = from,
            PortTo = toPort,
            CreatedAt = Now,
        };
    }

    /// <summary>'access check CLIENT DEST[:PORT][/PROTO]'.</summary>
    public AccessCheck Check(string clientName, string destination)
    {
        ClientName.EnsureValid(clientName);
        var (dest, port, protocol) = ParseDestination(destination);
        using var store = OpenStore();
        var server = store.RequireServer();
        var policy = LoadPolicy(store, server);
        var client = policy.Clients.FirstOrDefault(c => string.Equals(c.Name, clientName, StringComparison.OrdinalIgnoreCase))
            ?? throw new UserInputException($"no client named '{clientName}'", ExitCodes.NotFound);
        return new AccessCheck(client, dest, port, protocol, policy.Check(client, dest, port, protocol, Now));
    }

    /// <summary>"198.51.100.10", "198.51.100.10:443", "198.51.100.10:443/tcp", "198.51.100.10/icmp", "[fd00::1]:443/udp".</summary>
    internal static (IPAddress Address, int? Port, Protocol? Protocol) ParseDestination(string text)
    {
        text = (text ?? "").Trim();
        Protocol? protocol = null;
        int slash = text.LastIndexOf('/');
        if (slash > 0 && text[(slash + 1)..].All(char.IsAsciiLetter) && text.Length > slash + 1)
        {
            if (!AccessRule.TryParseProtocol(text[(slash + 1)..], out var p))
                throw new FieldException("destination", $"destination: '{UserInputException.Shown(text[(slash + 1)..])}' is not tcp, udp, icmp or any");
            protocol = p == Protocol.Any ? null : p;
            text = text[..slash];
        }
        int? port = null;
        string host = text;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0)
                throw new FieldException("destination", $"destination: '{UserInputException.Shown(text)}' is not ADDRESS[:PORT][/PROTO]");
            host = text[1..close];
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':')
                    throw new FieldException("destination", $"destination: '{UserInputException.Shown(text)}' is not [ADDRESS]:PORT");
                port = ParsePort(text[(close + 2)..]);
            }
        }
        else if (text.Count(c => c == ':') == 1)
        {
            int colon = text.IndexOf(':');
            host = text[..colon];
            port = ParsePort(text[(colon + 1)..]);
        }
        if (!IPAddress.TryParse(host, out var address) || (address.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') != 3))
            throw new FieldException("destination", $"destination: '{UserInputException.Shown(host)}' is not an IP address");
        if (port is not null && protocol is null)
            protocol = Protocol.Tcp;
        if (port is not null && protocol == Protocol.Icmp)
            throw new FieldException("destination", "destination: icmp has no ports");
        return (address, port, protocol);

        static int ParsePort(string s) =>
            int.TryParse(s, System.Globalization.NumberStyles.None, null, out int p) && p is >= 1 and <= 65535
                ? p : throw new FieldException("destination", $"destination: '{UserInputException.Shown(s)}' is not a port (1-65535)");
    }


    // ---- set --------------------------------------------------------------

    /// <summary>Edits a client in place; keys and addresses stay. Live at once where the interface is concerned.</summary>
    public Client Set(SetRequest r)
    {
        ClientName.EnsureValid(r.Name);
        if (r.Rename is { } newName && ClientName.Validate(newName) is { } reason)
            throw new FieldException("rename", $"rename: {reason}");
        var now = Now;
        bool expiresGiven = r.Expires is not null;
        DateTimeOffset? expires = r.Expires is { } e ? When.ParseExpiry(e, now) : null;
        var dns = r.Dns is null ? null : ParseDns(r.Dns, allowDefault: true);
        bool dnsDefault = r.Dns is ["default"];
        IReadOnlyList<IPNetwork>? allowed = null;
        bool allowedDefault = r.AllowedIps is ["default"];
        if (r.AllowedIps is not null && !allowedDefault)
            allowed = ParseAllowedIps(r.AllowedIps);
        int? keepalive = null;
        bool keepaliveDefault = r.Keepalive is "default";
        if (r.Keepalive is { } k && !keepaliveDefault)
            keepalive = ParseKeepalive(k);
        if (r.Groups is { Count: > MaxListEntries })
            throw new FieldException("groups", $"groups: at most {MaxListEntries}");
        EnsureGatewayList(r.Gateways);

        Client? result = null;
        Write((store, server, live) =>
        {
            var c = store.RequireClient(r.Name);
            var changes = new List<string>();
            var updated = c;
            if (r.Rename is { } nn && nn != c.Name)
            {
                if (!string.Equals(nn, c.Name, StringComparison.OrdinalIgnoreCase) && store.FindClient(nn) is not null)
                    throw new FieldException("rename", $"rename: a client named '{nn}' already exists", ExitCodes.Conflict);
                updated = updated with { Name = nn };
                changes.Add($"renamed to {nn}");
            }
            if (expiresGiven)
            {
                updated = updated with { ExpiresAt = expires };
                changes.Add(expires is { } x ? $"expires {When.Format(x)}" : "expires never");
            }
            if (r.Dns is not null)
            {
                updated = updated with { Dns = dnsDefault ? null : dns };
                changes.Add(dnsDefault ? "dns default" : $"dns {(dns!.Count == 0 ? "none" : string.Join(",", dns))}");
            }
            if (r.AllowedIps is not null)
            {
                updated = updated with { AllowedIps = allowedDefault ? null : allowed };
                changes.Add(allowedDefault ? "allowed-ips default" : $"allowed-ips {string.Join(",", allowed!)}");
            }
            if (r.Keepalive is not null)
            {
                updated = updated with { Keepalive = keepaliveDefault ? null : keepalive };
                changes.Add($"keepalive {(keepaliveDefault ? "default" : keepalive)}");
            }
            store.UpdateClient(updated);
            if (r.Groups is not null)
            {
                var ids = r.Groups.Select(g => RequireGroup(store, g)).ToList();
                store.SetMemberships(c.Id, ids.Select(g => g.Id));
                changes.Add(ids.Count == 0 ? "no groups" : $"groups {string.Join(",", ids.Select(g => g.Name))}");
            }
            if (r.Gateways is not null)
            {
                var served = ResolveGateways(store, r.Gateways);
                EnsureAddressesFit(store, store.RequireServer(), c, served);
                store.SetGatewayMemberships(c.Id, served);
                changes.Add(served.Count == 0 ? "gateways all" : $"gateways {string.Join(",", store.ListGateways().Where(g => served.Contains(g.Id)).Select(g => g.Name))}");
            }
            store.AppendAudit(now, Actor, "set", updated.Name, updated.Name, changes.Count == 0 ? "nothing" : string.Join("; ", changes));
            result = updated with { Groups = store.GroupsOf(c.Id) };
            return 0;
        }, store => [store.RequireClient(r.Name)], r.Name, reloadClients: true);
        return result!;
    }

    /// <summary>DNS servers as given on the command line or in a form: comma lists, "none" (and "default" where allowed).</summary>
    public static IReadOnlyList<string> ParseDns(IReadOnlyList<string> values, bool allowDefault)
    {
        var list = values.SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (list is ["none"] || (allowDefault && list is ["default"]))
            return [];
        if (list.Count > 8)
            throw new FieldException("dns", "dns: at most 8 servers");
        foreach (var d in list)
            AsField("dns", () => Cidr.ParseAddress(d, "dns"));
        return list;
    }

    /// <summary>AllowedIPs as given on the command line or in a form: comma lists of networks, at most 64.</summary>
    public static IReadOnlyList<IPNetwork> ParseAllowedIps(IReadOnlyList<string> values)
    {
        var list = values.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(x => AsField("allowed-ips", () => Cidr.ParseNetwork(x, "allowed-ips"))).Distinct().ToList();
        if (list.Count == 0)
            throw new FieldException("allowed-ips", "allowed-ips: give at least one network, or 'default'");
        if (list.Count > MaxListEntries)
            throw new FieldException("allowed-ips", $"allowed-ips: at most {MaxListEntries} networks");
        return list;
    }

    /// <summary>A client's AllowedIPs from the networks given and the full-tunnel switch (which means everything, v4 and v6).</summary>
    public static IReadOnlyList<IPNetwork>? ParseAllowedIps(IReadOnlyList<string>? values, bool fullTunnel)
    {
        if (fullTunnel && values is not null)
            throw new FieldException("full-tunnel", "full-tunnel: contradicts the allowed IPs given; give one or the other");
        if (fullTunnel)
            return [IPNetwork.Parse("0.0.0.0/0"), IPNetwork.Parse("::/0")];
        return values is null ? null : ParseAllowedIps(values);
    }

    /// <summary>A client's explicit address of one family ("address4" / "address6").</summary>
    public static IPAddress ParseClientAddress(string text, AddressFamily family, string field)
    {
        var a = AsField(field, () => Cidr.ParseAddress(text, field));
        if (a.AddressFamily != family)
            throw new FieldException(field, $"{field}: '{UserInputException.Shown(text)}' is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        return a;
    }

    /// <summary>A client's explicit addresses given together, either family ("address"; "10.99.0.50", "fd00::50/128"): at most one of each.</summary>
    public static (IPAddress? V4, IPAddress? V6) ParseClientAddresses(IReadOnlyList<string> values)
    {
        var all = values.SelectMany(a => a.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(a => AsField("address", () => Cidr.ParseAddress(a.Split('/')[0], "address"))).ToList();
        var v4 = all.Where(a => a.AddressFamily == AddressFamily.InterNetwork).ToList();
        var v6 = all.Where(a => a.AddressFamily == AddressFamily.InterNetworkV6).ToList();
        if (v4.Count > 1 || v6.Count > 1)
            throw new FieldException("address", "address: at most one IPv4 and one IPv6 address");
        return (v4.FirstOrDefault(), v6.FirstOrDefault());
    }

    /// <summary>A parser's one-line error as an error of the named field.</summary>
    private static T AsField<T>(string field, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (UserInputException e) when (e is not FieldException)
        {
            throw new FieldException(field, e.Message, e.ExitCode);
        }
    }

    internal static int ParseKeepalive(string text) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, null, out int k) && k is >= 0 and <= 65535
            ? k : throw new FieldException("keepalive", $"keepalive: '{UserInputException.Shown(text)}' is out of range (0-65535 seconds, 0 = off)");

    // ---- audit ------------------------------------------------------------

    public (IReadOnlyList<AuditEntry> Items, int Total) AuditLog(string? client, string? since, int offset = 0, int limit = 1000)
    {
        if (client is not null)
            ClientName.EnsureValid(client);
        DateTimeOffset? from = since is null ? null : When.ParseSince(since, Now);
        if (limit is < 1 or > 10000)
            throw new FieldException("limit", "limit: 1-10000");
        using var store = OpenStore();
        store.RequireServer();
        return store.QueryAudit(client, from, Math.Max(0, offset), limit);
    }

    // ---- expiry -----------------------------------------------------------

    /// <summary>
    /// Blocks every enabled client whose expiry has passed: off the live interface, recorded in the
    /// audit log as done by the system. Runs under the lock at the start of every change and in the
    /// service's loop. Returns the clients it blocked.
    /// </summary>
    private List<Client> SweepExpired(Store store, ServerSettings server, IWireGuardDevice? device)
    {
        var now = Now;
        var expired = store.ExpiredButEnabled(now).ToList();
        if (expired.Count == 0)
            return expired;
        using var tx = store.BeginWrite();
        if (device is not null)
        {
            var state = device.Read();
            store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
        }
        foreach (var c in expired)
        {
            store.SetEnabled(c, false);
            store.AppendAudit(now, Audit.Actor.System, "expire", c.Name, c.Name, $"expired at {When.Format(c.ExpiresAt!.Value)}; blocked");
        }
        var live = OwnGateway.Load(store, server, expired).Filter(expired);
        var change = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Remove(c.PublicKey))] };
        var undo = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
        ApplyThenCommit(device, change, undo, tx);
        return expired;
    }

    /// <summary>For the service loop: blocks expired clients now. Returns their names.</summary>
    public IReadOnlyList<string> ExpireDue()
    {
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = LiveDevice(store, server);
        return [.. SweepExpired(store, server, device).Select(c => c.Name)];
    }

    // ---- the policy and how a change reaches the firewall -----------------

    /// <summary>
    /// The policy with every client, or only with <paramref name="clients"/>: the firewall's
    /// per-client parts (map elements, own chains) and configs of other clients do not depend on
    /// them, so a change that concerns a few clients compares policies of those few only.
    /// </summary>
    internal static AccessPolicy LoadPolicy(Store store, ServerSettings server, IReadOnlyList<Client>? clients = null) =>
        new(server, clients ?? store.ListClients(), store.ListGroups(), store.LoadMemberships(), store.ListRules());

    /// <summary>The policy of the registry server's own interface's firewall: every client it serves (<see cref="OwnGateway"/>).</summary>
    private static AccessPolicy LoadOwnPolicy(Store store, ServerSettings server) => OwnGateway.Load(store, server).Firewall(LoadPolicy(store, server));

    /// <summary>
    /// The clients a rule's WHO names: everyone, a group's members, or one client. Only their map
    /// elements, own chains and configs can change with that rule; nobody else's are looked at.
    /// </summary>
    private static IReadOnlyList<Client> ClientsNamedBy(Store store, string? who)
    {
        who = (who ?? "").Trim();
        if (who.StartsWith("group:", StringComparison.OrdinalIgnoreCase))
            return store.FindGroup(who["group:".Length..]) is { } g ? store.ClientsInGroup(g.Id) : [];
        if (who.StartsWith("client:", StringComparison.OrdinalIgnoreCase))
            return ClientName.IsValid(who["client:".Length..]) && store.FindClient(who["client:".Length..]) is { } c ? [c] : [];
        return store.ListClients();
    }

    /// <summary>
    /// The frame of a change to groups, rules or client settings: lock, expiry sweep, one
    /// transaction; the firewall difference applied live before the commit (undone if the commit
    /// fails); then the config files whose text changed are rewritten. <paramref name="affected"/>
    /// picks the clients the change can concern (before it is made): only their part of the
    /// firewall and their configs are compared. <paramref name="reloadClients"/>: the change edits
    /// those clients' own rows. A change that fails while applying is recorded in the audit log.
    /// </summary>
    private T Write<T>(Func<Store, ServerSettings, bool, T> change, Func<Store, IReadOnlyList<Client>>? affected = null,
        string? clientName = null, bool reloadClients = false, [System.Runtime.CompilerServices.CallerMemberName] string action = "")
    {
        return Audited(action switch
        {
            nameof(AddGroup) => "group add",
            nameof(RemoveGroup) => "group remove",
            nameof(Allow) => "access allow",
            nameof(Revoke) => "access revoke",
            _ => action.ToLowerInvariant(),
        }, clientName, clientName, () => WriteCore(change, affected, reloadClients));
    }

    private T WriteCore<T>(Func<Store, ServerSettings, bool, T> change, Func<Store, IReadOnlyList<Client>>? affected, bool reloadClients)
    {
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = LiveDevice(store, server);
        SweepExpired(store, server, device);
        var before = affected is null ? null : LoadPolicy(store, server, affected(store));
        // The live interface serves the clients of the registry's own gateway, and each config is its home gateway's:
        // 'set --gateway' can move a client on or off it, and move its home.
        var hereBefore = before is null ? null : OwnGateway.Load(store, server, before.Clients);
        var homesBefore = hereBefore is null ? null : ConfigHomes.Of(hereBefore, server);
        T result;
        AccessPolicy? after = null;
        ConfigHomes? homesAfter = null;
        using (var tx = store.BeginWrite())
        {
            result = change(store, server, device is not null);
            if (before is not null)
            {
                var clients = reloadClients ? [.. before.Clients.Select(c => store.FindClientById(c.Id)).OfType<Client>()] : before.Clients;
                after = LoadPolicy(store, server, clients);
                var hereAfter = reloadClients ? OwnGateway.Load(store, server, clients) : hereBefore!;
                homesAfter = ConfigHomes.Of(hereAfter, server);
                // A client's own edit must still fit a QR code (the only place its config grows by its own fields).
                if (reloadClients)
                    foreach (var c in after.Clients)
                        EnsureQrFits(c, homesAfter.Render(after, c));
                else
                    EnsureRoutesFitQr(before, after, homesBefore!, homesAfter);
                var (peers, undo) = reloadClients ? PeerMoves(before.Clients, hereBefore!, after.Clients, hereAfter) : (new DeviceChanges(), new DeviceChanges());
                ApplyThenCommit(device, peers, undo, tx, (server, hereBefore!.Firewall(before), hereAfter.Firewall(after)));
            }
            else
                tx.Commit();
        }
        if (before is not null && after is not null)
            RewriteChangedConfigs(before, after, homesBefore!, homesAfter!);
        return result;
    }

    /// <summary>
    /// The peers a change of gateway lists moves on or off the registry server's interface ('set
    /// --gateway', 'gateway remove'): a client has a peer there while enabled, not expired and served
    /// by it (<see cref="OwnGateway"/>). A client that comes on is contacted where it was last seen, as
    /// 'reenable' does; the others' peers are not touched. Returns the change and its undo.
    /// </summary>
    private (DeviceChanges Change, DeviceChanges Undo) PeerMoves(IReadOnlyList<Client> before, OwnGateway hereBefore, IReadOnlyList<Client> after, OwnGateway hereAfter)
    {
        var now = Now;
        bool On(Client? c, OwnGateway here) => c is not null && c.Enabled && !c.IsExpired(now) && here.Serves(c);
        var old = before.ToDictionary(c => c.Id);
        var change = new List<PeerChange>();
        var undo = new List<PeerChange>();
        foreach (var c in after)
        {
            var o = old.GetValueOrDefault(c.Id);
            bool was = On(o, hereBefore), on = On(c, hereAfter);
            if (was && !on)
            {
                change.Add(new PeerChange.Remove(o!.PublicKey));
                undo.Add(new PeerChange.Upsert(SpecOf(o)));
            }
            else if (on && !was)
            {
                change.Add(new PeerChange.Upsert(SpecOf(c)));
                if (ShouldKick(c))
                    change.Add(new PeerChange.Kick(c.PublicKey, c.LastEndpoint!));
                undo.Add(new PeerChange.Remove(c.PublicKey));
            }
        }
        return (new DeviceChanges { Peers = change }, new DeviceChanges { Peers = undo });
    }

    /// <summary>Config files are renderings: rewrite those whose text changed (routes, DNS, name, home gateway, ...).</summary>
    private void RewriteChangedConfigs(AccessPolicy before, AccessPolicy after, ConfigHomes homesBefore, ConfigHomes homesAfter)
    {
        var old = before.Clients.ToDictionary(c => c.Id);
        foreach (var c in after.Clients)
        {
            var routes = homesAfter.Routes(after, c);
            if (old.TryGetValue(c.Id, out var o) && o.Name == c.Name && SameConfigFields(o, c) &&
                homesBefore.GatewayOf(o)?.Id == homesAfter.GatewayOf(c)?.Id &&
                homesBefore.Routes(before, o).SequenceEqual(routes) && File.Exists(Paths.ClientConfig(c.Name)))
                continue;
            WriteConfigText(c.Name, homesAfter.Render(after, c));
            if (o is not null && !string.Equals(o.Name, c.Name, StringComparison.Ordinal))
                DeleteConfig(o.Name);
        }
    }

    /// <summary>The client's own fields that its config shows (besides the routes).</summary>
    private static bool SameConfigFields(Client a, Client b) =>
        a.PrivateKey == b.PrivateKey && a.PresharedKey == b.PresharedKey && Equals(a.Address4, b.Address4) && Equals(a.Address6, b.Address6) &&
        a.Keepalive == b.Keepalive && a.CreatedAt == b.CreatedAt &&
        (a.Dns is null ? b.Dns is null : b.Dns is not null && a.Dns.SequenceEqual(b.Dns));
}
