using MkbVpn.Devices;
using MkbVpn.Storage;

namespace MkbVpn.Clients;

/// <summary>Which clients a page shows.</summary>
public enum ClientStateFilter
{
    All,
    Enabled,
    Blocked,
    Online,
    Offline,
}

/// <summary>One page of clients with their live status, and how many match in all.</summary>
/// <param name="Damaged">Client rows that do not parse, left out of the page (one line each, naming the client).</param>
public sealed record ClientPage(ServerSettings Server, bool InterfaceUp, int Total, int Page, int PageSize, IReadOnlyList<ClientService.ClientStatus> Items,
    IReadOnlyList<string> Damaged);

/// <summary>Counts for /metrics and the page header.</summary>
public sealed record ClientCounts(bool InterfaceUp, int Total, int Enabled, int Online);

/// <summary>
/// The read side for the web page and the REST API: filtered and paged in the store, so a page
/// with 10,000 clients reads only the rows it shows (plus, when the interface is up, one read
/// of the live peers).
/// </summary>
public sealed partial class ClientService
{
    public const int MaxPageSize = 500;

    public ClientPage Query(string? text, ClientStateFilter state, int page, int pageSize)
    {
        if (page < 1)
            throw new UserInputException("page: must be 1 or more");
        if (pageSize is < 1 or > MaxPageSize)
            throw new UserInputException($"page_size: must be between 1 and {MaxPageSize}");
        using var store = OpenStore();
        var server = store.RequireServer();
        var (up, live) = ReadLiveOrReports(store, server);
        var now = Now;
        ClientStatus StatusOf(Client c) => LiveStatus(c, live, now);
        long offset = (long)(page - 1) * pageSize;
        // A row that does not parse is named, not a failed page: the page and the API show everyone else.
        var damaged = new List<string>();
        if (state is ClientStateFilter.Online or ClientStateFilter.Offline)
        {
            // Online is a live fact, not a column: filter what the interface says, then page.
            var (all, _) = store.QueryClients(text, state == ClientStateFilter.Online ? true : null, 0, int.MaxValue, damaged);
            var matching = all.Select(StatusOf).Where(s => s.Online == (state == ClientStateFilter.Online)).ToList();
            return new ClientPage(server, up, matching.Count, page, pageSize, [.. matching.Skip((int)Math.Min(offset, int.MaxValue)).Take(pageSize)], damaged);
        }
        bool? enabled = state switch { ClientStateFilter.Enabled => true, ClientStateFilter.Blocked => false, _ => null };
        var (items, total) = store.QueryClients(text, enabled, (int)Math.Min(offset, int.MaxValue), pageSize, damaged);
        return new ClientPage(server, up, total, page, pageSize, [.. items.Select(StatusOf)], damaged);
    }

    /// <summary>One client with what the live interface says of it.</summary>
    public ClientStatus StatusOf(string name)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var client = store.RequireClient(name);
        client = client with { Groups = store.GroupsOf(client.Id) };
        var (_, live) = ReadLiveOrReports(store, server);
        return LiveStatus(client, live, Now);
    }

    public ClientCounts Counts()
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var (up, _) = ReadLive(store, server);
        var (_, live) = ReadLiveOrReports(store, server);   // on a registry of gateways: online as the gateways report it
        var (total, enabled) = store.CountClients();
        var now = Now;
        int online = live.Values.Count(p => p.LastHandshake is { } hs && now - hs < OnlineWindow);
        return new ClientCounts(up, total, enabled, online);
    }

    /// <summary>
    /// The live peers: on a registry whose gateways report, what the fresh gateways (reported within
    /// <see cref="GatewayStaleAfter"/>) last said, per client its most recent handshake and endpoint
    /// with the bytes summed over its gateways ("up" when a gateway is online); else the local interface.
    /// </summary>
    private (bool Up, Dictionary<WireGuard.Protocol.WireGuardKey, PeerState> Peers) ReadLiveOrReports(Store store, ServerSettings server)
    {
        var gateways = store.ListGateways();
        if (!gateways.Any(g => g.LastSeen is not null))
            return ReadLive(store, server);
        var now = Now;
        var fresh = gateways.Where(g => IsOnline(g, now)).Select(g => g.Id).ToHashSet();
        // Blocked and expired clients are on no gateway's interface: their old reports are not live.
        // A client row that does not parse has no key to match reports with; the caller's listing names it.
        var keys = store.ListClients(damaged: []).Where(c => c.Enabled && !c.IsExpired(now)).ToDictionary(c => c.Id, c => c.PublicKey);
        var peers = new Dictionary<WireGuard.Protocol.WireGuardKey, PeerState>();
        foreach (var group in store.ListGatewayPeers().Where(r => keys.ContainsKey(r.ClientId)).GroupBy(r => r.ClientId))
        {
            var best = group.Where(r => fresh.Contains(r.GatewayId) && r.LastHandshake is not null).MaxBy(r => r.LastHandshake);
            peers[keys[group.Key]] = new PeerState
            {
                PublicKey = keys[group.Key],
                Endpoint = best?.Endpoint,
                LastHandshake = best?.LastHandshake,
                RxBytes = group.Sum(r => r.RxBytes),
                TxBytes = group.Sum(r => r.TxBytes),
            };
        }
        return (fresh.Count > 0, peers);
    }

    private (bool Up, Dictionary<WireGuard.Protocol.WireGuardKey, PeerState> Peers) ReadLive(Store store, ServerSettings server)
    {
        var device = Devices.Find(server.Interface);
        if (device is null)
            return (false, []);
        Privileges.RequireRoot("reading the live interface");
        var state = device.Read();
        // Another gateway's interface of the same name (a gateway's host) says nothing of the server's clients.
        if (OtherGatewayWith(store, server, state.PrivateKey) is not null)
            return (false, []);
        return (true, state.Peers.ToDictionary(p => p.PublicKey));
    }
}

/// <summary>What one gateway last reported of one client it serves; <see cref="Stale"/> when the gateway has not reported lately.</summary>
public sealed record GatewayPeerStatus(Gateways.Gateway Gateway, Gateways.GatewayPeerReport? Report, bool Online, bool Stale);

/// <summary>A client with the reports of every gateway that serves it.</summary>
public sealed record GatewayClientStatus(Client Client, IReadOnlyList<GatewayPeerStatus> Gateways)
{
    public bool Online => Gateways.Any(g => g.Online);

    /// <summary>The report with the most recent handshake (online ones first), or null when no gateway reported one.</summary>
    public GatewayPeerStatus? Best => Gateways.Where(g => g.Report?.LastHandshake is not null)
        .OrderByDescending(g => g.Online).ThenByDescending(g => g.Report!.LastHandshake).FirstOrDefault();
}

/// <summary>'status' on a registry of gateways: each gateway's state and, per client, what each of its gateways reported.</summary>
public sealed record GatewayStatusReport(ServerSettings Registry, IReadOnlyList<GatewayView> Gateways, IReadOnlyList<GatewayClientStatus> Clients);

public sealed partial class ClientService
{
    /// <summary>
    /// The status as the gateways report it to the registry (docs/gateways.md): every gateway (or
    /// only <paramref name="gateway"/>) with its state, and each client with one entry per gateway
    /// that serves it. Null when no gateway was named and none has ever reported (a single-host
    /// server: its status is the local interface's).
    /// </summary>
    public GatewayStatusReport? GatewayStatus(string? gateway, string? client = null)
    {
        using var store = OpenStore();
        var registry = store.RequireServer();
        var all = store.ListGateways();
        var shown = all;
        if (gateway is not null)
        {
            var g = all.FirstOrDefault(x => string.Equals(x.Name, gateway, StringComparison.OrdinalIgnoreCase))
                ?? throw new FieldException("gateway", $"gateway: no gateway named '{UserInputException.Shown(gateway)}' (see 'mkb-vpn gateway list')", ExitCodes.NotFound);
            shown = [g];
        }
        else if (all.All(g => g.LastSeen is null))
            return null;
        var clients = client is null ? store.ListClients() : [store.RequireClient(client)];
        var members = store.LoadGatewayMemberships();
        var reports = (gateway is null ? store.ListGatewayPeers() : store.ListGatewayPeers(shown[0].Id))
            .ToDictionary(r => (r.GatewayId, r.ClientId));
        var now = Now;
        var views = shown.Select(g => new GatewayView(g, clients.Count(c => ServedBy(c, g.Id, members))) { Online = IsOnline(g, now) }).ToList();
        var list = new List<GatewayClientStatus>(clients.Count);
        foreach (var c in clients)
        {
            var entries = new List<GatewayPeerStatus>();
            foreach (var v in views)
            {
                if (!ServedBy(c, v.Gateway.Id, members))
                    continue;
                reports.TryGetValue((v.Gateway.Id, c.Id), out var r);
                bool online = v.Online && c.Enabled && !c.IsExpired(now) && r?.LastHandshake is { } hs && now - hs < OnlineWindow;
                entries.Add(new GatewayPeerStatus(v.Gateway, r, online, !v.Online));
            }
            if (gateway is null || entries.Count > 0)
                list.Add(new GatewayClientStatus(c, entries));
        }
        if (client is not null && gateway is not null && list.Count == 0)
            throw new FieldException("gateway", $"gateway: '{shown[0].Name}' does not serve '{clients[0].Name}'", ExitCodes.NotFound);
        return new GatewayStatusReport(registry, views, list);
    }

    /// <summary>The gateways that serve one client, with what each reported of it (the client's page and JSON).</summary>
    public IReadOnlyList<GatewayPeerStatus> GatewaysServing(string client) =>
        GatewayStatus(null, client) is { } report ? report.Clients.Single().Gateways : GatewayStatusAll(client);

    private IReadOnlyList<GatewayPeerStatus> GatewayStatusAll(string client)
    {
        // No gateway ever reported: the gateways that serve it, nothing reported.
        using var store = OpenStore();
        store.RequireServer();
        var c = store.RequireClient(client);
        var members = store.LoadGatewayMemberships();
        return [.. store.ListGateways().Where(g => ServedBy(c, g.Id, members)).Select(g => new GatewayPeerStatus(g, null, false, true))];
    }

    private static bool IsOnline(Gateways.Gateway g, DateTimeOffset now) => g.LastSeen is { } seen && now - seen < GatewayStaleAfter;
}
