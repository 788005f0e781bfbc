using System.Net;
using System.Net.Sockets;
using MkbVpn.Addressing;
using MkbVpn.Configs;
using MkbVpn.Devices;
using MkbVpn.Gateways;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>What 'gateway add' may set.</summary>
public sealed record GatewayRequest(string Name)
{
    /// <summary>HOST[:PORT] clients dial; without a port, the listen port.</summary>
    public string? Endpoint { get; init; }
    public int? ListenPort { get; init; }
    public string? Interface { get; init; }
    public IReadOnlyList<string>? InternalNetworks { get; init; }
    /// <summary>The gateway's own IPv4 slice (of the registry's subnet, or a subnet of its own); null: the registry's.</summary>
    public string? Subnet4 { get; init; }
    /// <summary>The gateway's own IPv6 slice; null: the registry's.</summary>
    public string? Subnet6 { get; init; }
}

/// <summary>Where a client served by some gateways takes its addresses: the subnets all of them route, minus other gateways' slices.</summary>
internal sealed record ClientSubnets(IPNetwork? Subnet4, IPNetwork? Subnet6, IReadOnlyList<IPNetwork> Skip4, IReadOnlyList<IPNetwork> Skip6);

/// <summary>A gateway as 'gateway list' shows it: its settings, how many clients it serves, its last report.</summary>
public sealed record GatewayView(Gateway Gateway, int Served)
{
    /// <summary>Seen within the last <see cref="ClientService.GatewayStaleAfter"/>.</summary>
    public bool Online { get; init; }

    /// <summary>online, stale (reported before, not lately) or never_seen.</summary>
    public string State => Online ? "online" : Gateway.LastSeen is null ? "never_seen" : "stale";
}

public sealed partial class ClientService
{
    /// <summary>A gateway that has not reported for this long is shown as offline.</summary>
    public static readonly TimeSpan GatewayStaleAfter = TimeSpan.FromSeconds(30);

    /// <summary>The word for "every gateway" in --gateway.</summary>
    public const string AllGateways = "all";

    private static void EnsureGatewayName(string name)
    {
        if (name.Length is < 1 or > 32 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.') || !char.IsAsciiLetterOrDigit(name[0]))
            throw new FieldException("name", $"name: '{UserInputException.Shown(name)}' is not a gateway name (1-32 of a-z A-Z 0-9 _ . -, starting with a letter or digit)");
        if (string.Equals(name, AllGateways, StringComparison.OrdinalIgnoreCase))
            throw new FieldException("name", $"name: '{AllGateways}' means every gateway; choose another name");
    }

    /// <summary>Adds a gateway with a key of its own (the multi-site model, docs/gateways.md). Its clients: those served by every gateway.</summary>
    public Gateway AddGateway(GatewayRequest r)
    {
        EnsureGatewayName(r.Name);
        if (string.IsNullOrWhiteSpace(r.Endpoint))
            throw new FieldException("endpoint", "endpoint: give HOST[:PORT], the public name or address clients dial for this gateway");
        if (r.ListenPort is { } lp && lp is < 1 or > 65535)
            throw new FieldException("listen-port", $"listen-port: {lp} is not a port (1-65535)");
        int listen = r.ListenPort ?? ServerSettings.DefaultPort;
        var endpoint = AsField("endpoint", () => Cidr.ParseEndpoint(r.Endpoint, listen));
        if (r.Interface is { } iface && !IsInterfaceName(iface))
            throw new FieldException("interface", $"interface: '{UserInputException.Shown(iface)}' is not a valid interface name (1-15 of a-z A-Z 0-9 _)");
        var nets = (r.InternalNetworks ?? []).SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(x => AsField("internal-network", () => Cidr.ParseNetwork(x, "internal-network"))).Distinct().ToList();
        if (nets.Count > MaxListEntries)
            throw new FieldException("internal-network", $"internal-network: at most {MaxListEntries} networks");

        var slice4 = ParseSlice(r.Subnet4, "subnet", AddressFamily.InterNetwork);
        var slice6 = ParseSlice(r.Subnet6, "subnet6", AddressFamily.InterNetworkV6);

        return Audited("gateway add", r.Name, null, () =>
        {
            using var store = OpenStore();
            var registry = store.RequireServer();
            var priv = WireGuardKeys.NewPrivateKey();
            var g = new Gateway
            {
                Id = 0,
                Name = r.Name,
                Interface = r.Interface ?? ServerSettings.DefaultInterface,
                PrivateKey = priv,
                PublicKey = WireGuardKeys.PublicKeyOf(priv),
                ListenPort = listen,
                EndpointHost = endpoint.Host,
                EndpointPort = endpoint.Port,
                InternalNetworks = nets,
                Subnet4 = slice4,
                Subnet6 = slice6,
                CreatedAt = Now,
            };
            using var tx = store.BeginWrite();
            if (store.FindGateway(r.Name) is not null)
                throw new FieldException("name", $"name: a gateway named '{r.Name}' already exists", ExitCodes.Conflict);
            if (slice4 is not null || slice6 is not null)
            {
                var others = store.ListGateways();
                var members = store.LoadGatewayMemberships();
                var clients = store.ListClients();
                EnsureSlice(slice4, "subnet", registry.Subnet4, registry.ServerAddress4, others.Select(o => (o.Name, o.Subnet4)), clients.Select(c => (c, members.ContainsKey(c.Id), c.Address4)));
                EnsureSlice(slice6, "subnet6", registry.Subnet6, registry.ServerAddress6, others.Select(o => (o.Name, o.Subnet6)), clients.Select(c => (c, members.ContainsKey(c.Id), c.Address6)));
            }
            g = store.InsertGateway(g);
            string slices = string.Join(",", new[] { slice4, slice6 }.OfType<IPNetwork>());
            store.AppendAudit(Now, Actor, "gateway add", g.Name, null, $"endpoint {g.Endpoint}; interface {g.Interface}; internal networks {(nets.Count == 0 ? "none" : string.Join(",", nets))}{(slices.Length == 0 ? "" : $"; subnets {slices}")}");
            tx.Commit();
            return g;
        });
    }

    /// <summary>Every gateway with the number of clients it serves and whether it reported lately.</summary>
    public IReadOnlyList<GatewayView> ListGateways()
    {
        using var store = OpenStore();
        store.RequireServer();
        var gateways = store.ListGateways();
        var members = store.LoadGatewayMemberships();
        var clients = store.ListClients();
        var now = Now;
        return [.. gateways.Select(g => new GatewayView(g, clients.Count(c => ServedBy(c, g.Id, members)))
        {
            Online = g.LastSeen is { } seen && now - seen < GatewayStaleAfter,
        })];
    }

    /// <summary>One gateway as 'gateway list' shows it.</summary>
    public GatewayView GetGateway(string name) =>
        ListGateways().FirstOrDefault(v => string.Equals(v.Gateway.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new FieldException("gateway", $"gateway: no gateway named '{UserInputException.Shown(name)}' (see 'mkb-vpn gateway list')", ExitCodes.NotFound);

    /// <summary>True when the registry has gateways worth showing: more than one, or one that reports (the page and the client JSON show them then).</summary>
    public bool HasGateways()
    {
        using var store = OpenStore();
        store.RequireServer();
        var all = store.ListGateways();
        return all.Count > 1 || all.Any(g => g.LastSeen is not null);
    }

    /// <summary>The config for a QR code for one gateway (null: the registry's server).</summary>
    public string QrConfigText(string name, string? gateway)
    {
        if (gateway is null)
            return QrConfigText(name);
        var (_, c) = Get(name);
        if (c.PrivateKey is null)
            throw new UserInputException($"no QR code for '{c.Name}': it was {ClientConfig.PublicKeyOnlyNote}");
        string text = ConfigText(name, gateway);
        if (!QrCodes.Fits(text))
            throw new UserInputException($"no QR code for '{c.Name}': its config is {QrCodes.ByteCount(text)} bytes, more than a QR code holds ({QrCodes.MaxBytes}); use the config file");
        return text;
    }

    private static bool ServedBy(Client c, long gatewayId, Dictionary<long, List<long>> members) =>
        !members.TryGetValue(c.Id, out var ids) || ids.Contains(gatewayId);

    /// <summary>
    /// Removes a gateway. Refused for the last one, and for one whose interface runs on this host
    /// or that reported within <see cref="GatewayStaleAfter"/>, unless <paramref name="force"/>.
    /// Clients served only by it become served by every gateway (no membership left): on the
    /// registry server's live interface too, at once. The config
    /// files of the clients whose home it was are rewritten for their new home (on a host with a
    /// data directory, under its lock, as every verb that writes them).
    /// </summary>
    public Gateway RemoveGateway(string name, bool force)
    {
        return Audited("gateway remove", name, null, () =>
        {
            using var held = Directory.Exists(Paths.DataDir) ? Lock() : null;
            using var store = OpenStore();
            var registry = store.RequireServer();
            using var tx = store.BeginWrite();
            var g = store.FindGateway(name) ?? throw new FieldException("name", $"name: no gateway named '{name}'", ExitCodes.NotFound);
            if (!force)
            {
                if (store.ListGateways().Count == 1)
                    throw new UserInputException($"'{g.Name}' is the last gateway: without it no client can connect (use --force to remove it anyway)", ExitCodes.Conflict);
                if (Devices.Find(g.Interface) is { } d && SameKey(d, g))
                    throw new UserInputException($"'{g.Name}' runs on this host ({g.Interface} is up): stop it first, or use --force", ExitCodes.Conflict);
                if (g.LastSeen is { } seen && Now - seen < GatewayStaleAfter)
                    throw new UserInputException($"'{g.Name}' reported {(int)(Now - seen).TotalSeconds} s ago: stop 'mkb-vpn up --gateway {g.Name}' on its host first, or use --force", ExitCodes.Conflict);
            }
            // The clients whose home it is (only clients it serves by name can have it as their home).
            var named = store.LoadGatewayMemberships().Where(m => m.Value.Contains(g.Id)).Select(m => store.FindClientById(m.Key)).OfType<Client>().ToList();
            // Those it served alone are served by every gateway now, the registry's own too: their peers come
            // onto its live interface (and off it, for clients of the removed own gateway and others).
            var hereBefore = OwnGateway.Load(store, registry, named);
            var homes = ConfigHomes.Of(hereBefore, registry);
            var moved = named.Where(c => homes.GatewayOf(c)?.Id == g.Id).ToList();
            store.DeleteGateway(g.Id);
            store.AppendAudit(Now, Actor, "gateway remove", g.Name, null, force ? "forced" : null);
            var hereAfter = OwnGateway.Load(store, registry, named);
            var (peers, undo) = PeerMoves(named, hereBefore, named, hereAfter);
            if (peers.IsEmpty)
                tx.Commit();
            else
            {
                var policy = LoadPolicy(store, registry, named);
                ApplyThenCommit(LiveDevice(store, registry), peers, undo, tx, (registry, hereBefore.Firewall(policy), hereAfter.Firewall(policy)));
            }
            if (held is not null && moved.Count > 0)
            {
                var policy = LoadPolicy(store, registry, moved);
                var after = ConfigHomes.Of(hereAfter, registry);
                foreach (var c in moved)
                    WriteConfigText(c.Name, after.Render(policy, c));
            }
            return g;
        });
    }

    private static bool SameKey(IWireGuardDevice device, Gateway g)
    {
        try
        {
            return device.Read().PrivateKey is { } k && k.Equals(g.PrivateKey);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The gateway ids a --gateway list names; empty for "all" (served by every gateway).</summary>
    private static List<long> ResolveGateways(Store store, IReadOnlyList<string> names)
    {
        var list = names.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (list.Count == 0)
            throw new FieldException("gateway", "gateway: give a gateway name, or 'all'");
        if (list.Any(x => string.Equals(x, AllGateways, StringComparison.OrdinalIgnoreCase)))
            return list.Count == 1 ? [] : throw new FieldException("gateway", "gateway: 'all' cannot be combined with names");
        return [.. list.Select(n => (store.FindGateway(n) ?? throw new FieldException("gateway", $"gateway: no gateway named '{UserInputException.Shown(n)}' (see 'mkb-vpn gateway list')", ExitCodes.NotFound)).Id).Distinct()];
    }

    /// <summary>The names of the gateways that serve the client; empty: every gateway.</summary>
    public IReadOnlyList<string> GatewaysOf(string clientName)
    {
        using var store = OpenStore();
        var c = store.RequireClient(clientName);
        var ids = store.GatewaysOf(c.Id);
        return [.. store.ListGateways().Where(g => ids.Contains(g.Id)).Select(g => g.Name)];
    }

    /// <summary>
    /// The client's home gateway (<see cref="ConfigHomes"/>): the first gateway by name that serves it,
    /// when the registry's own gateway does not; null when its default config has the registry's
    /// settings (served by every gateway, or by the registry's own).
    /// </summary>
    public Gateway? HomeGateway(string name)
    {
        using var store = OpenStore();
        var registry = store.RequireServer();
        var client = store.RequireClient(name);
        return ConfigHomes.Load(store, registry, [client]).GatewayOf(client);
    }

    /// <summary>
    /// The client's config for one gateway: that gateway's public key, endpoint and internal
    /// networks. Refused for a gateway that does not serve the client.
    /// </summary>
    public string ConfigText(string name, string? gateway)
    {
        if (gateway is null)
            return ConfigText(name);
        using var store = OpenStore();
        var registry = store.RequireServer();
        var client = store.RequireClient(name);
        var g = store.FindGateway(gateway) ?? throw new FieldException("gateway", $"gateway: no gateway named '{UserInputException.Shown(gateway)}' (see 'mkb-vpn gateway list')", ExitCodes.NotFound);
        if (!ServedBy(client, g.Id, store.LoadGatewayMemberships()))
            throw new FieldException("gateway", $"gateway: '{g.Name}' does not serve '{client.Name}' (see 'mkb-vpn set {client.Name} --gateway')", ExitCodes.NotFound);
        var server = g.Serve(registry);
        return ClientConfig.Render(server, client, LoadPolicy(store, server, [client]).ConfigAllowedIps(client));
    }

    private static IPNetwork? ParseSlice(string? text, string field, AddressFamily family)
    {
        if (text is null)
            return null;
        var net = AsField(field, () => Cidr.ParseNetwork(text, field));
        if (net.BaseAddress.AddressFamily != family)
            throw new FieldException(field, $"{field}: {net} is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} network");
        AsField(field, () => { AddressPool.Validate(net); return 0; });
        return net;
    }

    /// <summary>True when <paramref name="inner"/> lies within <paramref name="outer"/> (same family).</summary>
    private static bool Within(IPNetwork outer, IPNetwork inner) =>
        inner.BaseAddress.AddressFamily == outer.BaseAddress.AddressFamily && inner.PrefixLength >= outer.PrefixLength && outer.Contains(inner.BaseAddress);

    /// <summary>
    /// A new gateway's slice: inside the registry's subnet (without its server address) or outside it,
    /// apart from every other gateway's slice, holding the addresses of the clients it will serve
    /// (those served by every gateway) and none of the others'.
    /// </summary>
    private static void EnsureSlice(IPNetwork? slice, string field, IPNetwork? registry, IPAddress? registryServer,
        IEnumerable<(string Name, IPNetwork? Slice)> others, IEnumerable<(Client Client, bool Restricted, IPAddress? Address)> clients)
    {
        if (slice is not { } s)
            return;
        if (registry is { } reg && Cidr.Overlaps(reg, s))
        {
            if (!Within(reg, s))
                throw new FieldException(field, $"{field}: {s} must lie inside the registry's subnet {reg} (a slice of it) or outside it (a subnet of its own)");
            if (registryServer is not null && s.Contains(registryServer))
                throw new FieldException(field, $"{field}: {s} holds {registryServer}, the address of the gateways without a slice; choose a slice without it");
        }
        foreach (var (name, other) in others)
        {
            if (other is { } o && Cidr.Overlaps(o, s))
                throw new FieldException(field, $"{field}: {s} overlaps the slice {o} of gateway '{name}'", ExitCodes.Conflict);
        }
        // Clients without a gateway list are served by every gateway, so by this one too: their
        // addresses must be in its slice. Clients with a list are not served by it: none of theirs may be.
        var outside = clients.Where(x => x.Address is { } a && !x.Restricted && !s.Contains(a)).Select(x => x.Client.Name).ToList();
        if (outside.Count > 0)
            throw new FieldException(field, $"{field}: {outside.Count} client(s) served by every gateway have addresses outside {s} ({Sample(outside)}); " +
                "a new gateway serves them too: name their gateways first ('mkb-vpn set NAME --gateway main')", ExitCodes.Conflict);
        var inside = clients.Where(x => x.Address is { } a && x.Restricted && s.Contains(a)).Select(x => x.Client.Name).ToList();
        if (inside.Count > 0)
            throw new FieldException(field, $"{field}: {s} holds addresses of {inside.Count} client(s) of other gateways ({Sample(inside)}); choose another slice", ExitCodes.Conflict);
    }

    private static string Sample(List<string> names) => names.Count <= 3 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(3))}, ...";

    /// <summary>
    /// The subnets a client served by <paramref name="served"/> (empty: every gateway) takes its
    /// addresses from: per family the narrowest subnet that every one of its gateways routes (its
    /// slice or the registry's subnet), without the slices of other gateways inside it. Refused
    /// (field "gateway") when two of its gateways have no address in common.
    /// </summary>
    internal static ClientSubnets SubnetsFor(ServerSettings registry, IReadOnlyList<Gateway> all, IReadOnlyList<long> served)
    {
        var mine = served.Count == 0 ? all : [.. all.Where(g => served.Contains(g.Id))];
        var s4 = Common(mine, g => g.Subnet4 ?? registry.Subnet4, registry.Subnet4, served.Count == 0);
        var s6 = Common(mine, g => g.Subnet6 ?? registry.Subnet6, registry.Subnet6, served.Count == 0);
        static List<IPNetwork> Skip(IPNetwork? pool, IEnumerable<IPNetwork?> slices) =>
            pool is { } p ? [.. slices.OfType<IPNetwork>().Where(x => x != p && Within(p, x))] : [];
        return new ClientSubnets(s4, s6, Skip(s4, all.Select(g => g.Subnet4)), Skip(s6, all.Select(g => g.Subnet6)));
    }

    private static IPNetwork? Common(IReadOnlyList<Gateway> gateways, Func<Gateway, IPNetwork?> subnet, IPNetwork? registry, bool everyGateway)
    {
        if (gateways.Count == 0)
            return registry;
        Gateway? narrowest = null;
        foreach (var g in gateways)
        {
            if (subnet(g) is not { } n)
                return null;   // a gateway without this family: the client has no address of it
            if (narrowest is null || n.PrefixLength > subnet(narrowest)!.Value.PrefixLength)
                narrowest = g;
        }
        var pool = subnet(narrowest!)!.Value;
        foreach (var g in gateways)
        {
            if (!Within(subnet(g)!.Value, pool))
                throw new FieldException("gateway", $"gateway: '{narrowest!.Name}' ({pool}) and '{g.Name}' ({subnet(g)}) have no address in common, so no client can be served by both" +
                    (everyGateway ? "; without --gateway a client is served by every gateway: name its gateways (--gateway)" : "; choose one of them"));
        }
        return pool;
    }

    /// <summary>'set --gateway': the client's addresses must be routed by each of its new gateways.</summary>
    private static void EnsureAddressesFit(Store store, ServerSettings registry, Client c, IReadOnlyList<long> served)
    {
        var subnets = SubnetsFor(registry, store.ListGateways(), served);
        foreach (var (address, pool) in new[] { (c.Address4, subnets.Subnet4), (c.Address6, subnets.Subnet6) })
        {
            if (address is not null && pool is { } p && !p.Contains(address))
                throw new FieldException("gateway", $"gateway: '{c.Name}' has the address {address}, outside {p} where its gateways serve clients; remove it and add it again with --gateway to get an address there");
        }
    }

    /// <summary>For a --gateway on 'add': validates the names early (before the lock).</summary>
    private static void EnsureGatewayList(IReadOnlyList<string>? names)
    {
        if (names is { Count: > MaxListEntries })
            throw new FieldException("gateway", $"gateway: at most {MaxListEntries}");
    }
}
