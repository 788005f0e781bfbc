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
}

/// <summary>A gateway as 'gateway list' shows it: its settings, how many clients it serves, its last report.</summary>
public sealed record GatewayView(Gateway Gateway, int Served)
{
    /// <summary>Seen within the last <see cref="ClientService.GatewayStaleAfter"/>.</summary>
    public bool Online { get; init; }
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

        return Audited("gateway add", r.Name, null, () =>
        {
            using var store = OpenStore();
            store.RequireServer();
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
                CreatedAt = Now,
            };
            using var tx = store.BeginWrite();
            if (store.FindGateway(r.Name) is not null)
                throw new FieldException("name", $"name: a gateway named '{r.Name}' already exists", ExitCodes.Conflict);
            g = store.InsertGateway(g);
            store.AppendAudit(Now, Actor, "gateway add", g.Name, null, $"endpoint {g.Endpoint}; interface {g.Interface}; internal networks {(nets.Count == 0 ? "none" : string.Join(",", nets))}");
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

    private static bool ServedBy(Client c, long gatewayId, Dictionary<long, List<long>> members) =>
        !members.TryGetValue(c.Id, out var ids) || ids.Contains(gatewayId);

    /// <summary>
    /// Removes a gateway. Refused for the last one, and for one whose interface runs on this host
    /// or that reported within <see cref="GatewayStaleAfter"/>, unless <paramref name="force"/>.
    /// Clients served only by it become served by every gateway (no membership left).
    /// </summary>
    public Gateway RemoveGateway(string name, bool force)
    {
        return Audited("gateway remove", name, null, () =>
        {
            using var store = OpenStore();
            store.RequireServer();
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
            store.DeleteGateway(g.Id);
            store.AppendAudit(Now, Actor, "gateway remove", g.Name, null, force ? "forced" : null);
            tx.Commit();
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

    /// <summary>For a --gateway on 'add': validates the names early (before the lock).</summary>
    private static void EnsureGatewayList(IReadOnlyList<string>? names)
    {
        if (names is { Count: > MaxListEntries })
            throw new FieldException("gateway", $"gateway: at most {MaxListEntries}");
    }
}
