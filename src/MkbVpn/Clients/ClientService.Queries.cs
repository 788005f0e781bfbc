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
public sealed record ClientPage(ServerSettings Server, bool InterfaceUp, int Total, int Page, int PageSize, IReadOnlyList<ClientService.ClientStatus> Items);

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
        var (up, live) = ReadLive(server);
        var now = Now;
        ClientStatus StatusOf(Client c)
        {
            live.TryGetValue(c.PublicKey, out var p);
            return new ClientStatus(c, p, c.Enabled && p?.LastHandshake is { } hs && now - hs < OnlineWindow);
        }
        long offset = (long)(page - 1) * pageSize;
        if (state is ClientStateFilter.Online or ClientStateFilter.Offline)
        {
            // Online is a live fact, not a column: filter what the interface says, then page.
            var (all, _) = store.QueryClients(text, state == ClientStateFilter.Online ? true : null, 0, int.MaxValue);
            var matching = all.Select(StatusOf).Where(s => s.Online == (state == ClientStateFilter.Online)).ToList();
            return new ClientPage(server, up, matching.Count, page, pageSize, [.. matching.Skip((int)Math.Min(offset, int.MaxValue)).Take(pageSize)]);
        }
        bool? enabled = state switch { ClientStateFilter.Enabled => true, ClientStateFilter.Blocked => false, _ => null };
        var (items, total) = store.QueryClients(text, enabled, (int)Math.Min(offset, int.MaxValue), pageSize);
        return new ClientPage(server, up, total, page, pageSize, [.. items.Select(StatusOf)]);
    }

    /// <summary>One client with what the live interface says of it.</summary>
    public ClientStatus StatusOf(string name)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var client = store.RequireClient(name);
        client = client with { Groups = store.GroupsOf(client.Id) };
        var (_, live) = ReadLive(server);
        live.TryGetValue(client.PublicKey, out var p);
        return new ClientStatus(client, p, client.Enabled && p?.LastHandshake is { } hs && Now - hs < OnlineWindow);
    }

    public ClientCounts Counts()
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var (up, live) = ReadLive(server);
        var (total, enabled) = store.CountClients();
        var now = Now;
        int online = live.Values.Count(p => p.LastHandshake is { } hs && now - hs < OnlineWindow);
        return new ClientCounts(up, total, enabled, online);
    }

    private (bool Up, Dictionary<WireGuard.Protocol.WireGuardKey, PeerState> Peers) ReadLive(ServerSettings server)
    {
        var device = Devices.Find(server.Interface);
        if (device is null)
            return (false, []);
        Privileges.RequireRoot("reading the live interface");
        return (true, device.Read().Peers.ToDictionary(p => p.PublicKey));
    }
}
