using System.Net;
using System.Net.Sockets;
using MkbVpn.Access;
using MkbVpn.Addressing;
using MkbVpn.Devices;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>What `add` may set per client.</summary>
public sealed record AddRequest(string Name)
{
    public IPAddress? Address4 { get; init; }
    public IPAddress? Address6 { get; init; }
    public IReadOnlyList<string>? Dns { get; init; }
    public IReadOnlyList<IPNetwork>? AllowedIps { get; init; }
    public int? Keepalive { get; init; }
    /// <summary>Groups the client joins (they must exist).</summary>
    public IReadOnlyList<string>? Groups { get; init; }
    /// <summary>An expiry as an admin writes it ("2026-12-31", "14d", "never").</summary>
    public string? Expires { get; init; }
    /// <summary>The gateways that serve the client (they must exist); null or ["all"]: every gateway.</summary>
    public IReadOnlyList<string>? Gateways { get; init; }
}

/// <summary>The outcome of a verb: the clients it touched and whether the live interface changed.</summary>
public sealed record VerbResult(IReadOnlyList<Client> Clients, bool Live, IReadOnlyList<string> Unchanged)
{
    /// <summary>'add': the clients (by name) whose config is for a home gateway other than the registry's server (<see cref="ConfigHomes"/>).</summary>
    public IReadOnlyDictionary<string, Gateways.Gateway> HomeGateways { get; init; } = new Dictionary<string, Gateways.Gateway>();

    /// <summary>
    /// 'add': an interface of the registry server's name runs here with another key (a gateway's host): it was not
    /// changed (the service's <see cref="ClientService.Note"/> said so); <see cref="Live"/> is false without it being down.
    /// </summary>
    public bool OtherInterfaceHere { get; init; }
}

public sealed partial class ClientService
{
    public VerbResult Add(IReadOnlyList<AddRequest> requests) =>
        Audited("add", requests.Count == 1 ? requests[0].Name : $"{requests.Count} clients", requests.Count == 1 ? requests[0].Name : null, () => AddCore(requests));

    private VerbResult AddCore(IReadOnlyList<AddRequest> requests)
    {
        if (requests.Count == 0)
            throw new UserInputException("add: give at least one client name");
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var now = Now;
        var expiries = new Dictionary<string, DateTimeOffset?>(StringComparer.OrdinalIgnoreCase);
        foreach (var r in requests)
        {
            ClientName.EnsureValid(r.Name);
            if (!seen.Add(r.Name))
                throw new UserInputException($"client name '{r.Name}' is given twice");
            if (r.Keepalive is < 0 or > 65535)
                throw new FieldException("keepalive", $"keepalive: {r.Keepalive} is out of range (0-65535 seconds)");
            if (r.Dns is { Count: > 8 })
                throw new FieldException("dns", "dns: at most 8 servers");
            if (r.AllowedIps is { Count: > MaxListEntries })
                throw new FieldException("allowed-ips", $"allowed-ips: at most {MaxListEntries} networks");
            if (r.Groups is { Count: > MaxListEntries })
                throw new FieldException("groups", $"groups: at most {MaxListEntries}");
            EnsureGatewayList(r.Gateways);
            expiries[r.Name] = r.Expires is { } e ? When.ParseExpiry(e, now) : null;
        }

        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = LiveDevice(store, server, out bool elsewhere);
        SweepExpired(store, server, device);
        // Adding clients touches only their own map elements: compare policies of the new clients alone.
        var before = LoadPolicy(store, server, []);
        var added = new List<Client>();
        var away = new Dictionary<string, Gateways.Gateway>(StringComparer.OrdinalIgnoreCase);
        using (var tx = store.BeginWrite())
        {
            // Each client's addresses come from the subnet its gateways share (a gateway's slice or the registry's).
            var gateways = store.ListGateways();
            var usage4 = server.Subnet4 is not null || gateways.Any(g => g.Subnet4 is not null) ? store.LoadAddressUsage(v4: true) : null;
            var usage6 = server.Subnet6 is not null || gateways.Any(g => g.Subnet6 is not null) ? store.LoadAddressUsage(v4: false) : null;
            var groups = store.ListGroups();
            foreach (var r in requests)
            {
                if (store.FindClient(r.Name) is not null)
                    throw new UserInputException($"a client named '{r.Name}' already exists", ExitCodes.Conflict);
                var memberOf = (r.Groups ?? []).Select(g => groups.FirstOrDefault(x => string.Equals(x.Name, g, StringComparison.OrdinalIgnoreCase))
                    ?? throw new FieldException("group", $"group: no group named '{g}' (create it with 'mkb-vpn group add {g}')", ExitCodes.NotFound)).ToList();
                var served = r.Gateways is not null ? ResolveGateways(store, r.Gateways) : [];
                var subnets = SubnetsFor(server, gateways, served);
                var a4 = Allocate(subnets.Subnet4 is { } s4 ? new AddressPool(s4) : null, usage4, r.Address4, "IPv4", subnets.Skip4);
                var a6 = Allocate(subnets.Subnet6 is { } s6 ? new AddressPool(s6) : null, usage6, r.Address6, "IPv6", subnets.Skip6);
                var priv = WireGuardKeys.NewPrivateKey();
                var client = store.InsertClient(new Client
                {
                    Id = 0,
                    Name = r.Name,
                    PrivateKey = priv,
                    PublicKey = WireGuardKeys.PublicKeyOf(priv),
                    PresharedKey = WireGuardKeys.NewPresharedKey(),
                    Address4 = a4,
                    Address6 = a6,
                    Enabled = true,
                    CreatedAt = now,
                    Dns = r.Dns,
                    AllowedIps = r.AllowedIps,
                    Keepalive = r.Keepalive,
                    ExpiresAt = expiries[r.Name],
                });
                if (memberOf.Count > 0)
                    store.SetMemberships(client.Id, memberOf.Select(g => g.Id));
                if (served.Count > 0)
                    store.SetGatewayMemberships(client.Id, served);
                client = client with { Groups = [.. memberOf.Select(g => g.Name)] };
                var detail = new List<string> { client.AddressText };
                if (memberOf.Count > 0)
                    detail.Add($"groups {string.Join(",", client.Groups)}");
                if (client.ExpiresAt is { } x)
                    detail.Add($"expires {When.Format(x)}");
                store.AppendAudit(now, Actor, "add", client.Name, client.Name, string.Join("; ", detail));
                added.Add(client);
            }
            var after = LoadPolicy(store, server, added);
            // The live interface (the registry's own gateway) gets the new clients it serves, not those of other gateways only.
            var here = OwnGateway.Load(store, server, added);
            var homes = ConfigHomes.Of(here, server);
            var live = here.Filter(added);
            var change = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
            var undo = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Remove(c.PublicKey))] };
            // Config files are written before the commit under temporary names and put in place
            // after it, so a full disk fails the whole add instead of leaving clients without files.
            var staged = new List<string>();
            try
            {
                foreach (var c in added)
                {
                    if (homes.GatewayOf(c) is { } home)
                        away[c.Name] = home;
                    string text = homes.Render(after, c);
                    EnsureQrFits(c, text);
                    staged.Add(StageConfig(c.Name, text));
                }
                ApplyThenCommit(device, change, undo, tx, (server, before, here.Firewall(after)));
            }
            catch
            {
                foreach (var tmp in staged)
                    File.Delete(tmp);
                throw;
            }
            for (int i = 0; i < added.Count; i++)
                File.Move(staged[i], Paths.ClientConfig(added[i].Name), overwrite: true);
        }
        return new VerbResult(added, device is not null, []) { HomeGateways = away, OtherInterfaceHere = elsewhere };
    }

    private static IPAddress? Allocate(AddressPool? pool, Store.AddressUsage? usage, IPAddress? wanted, string family, IReadOnlyList<IPNetwork>? skip = null)
    {
        skip ??= [];
        if (pool is null || usage is null)
        {
            if (wanted is not null)
                throw new UserInputException($"an {family} address was asked for, but the server has no {family} subnet");
            return null;
        }
        if (wanted is not null)
        {
            if (!pool.IsAssignable(wanted))
                throw new UserInputException($"{wanted} is not a client address in {pool.Subnet} (the first host address is the server's)");
            if (skip.Where(x => x.Contains(wanted)).Select(x => (IPNetwork?)x).FirstOrDefault() is { } slice)
                throw new UserInputException($"{wanted} is in {slice}, the slice of another gateway");
            var n = AddressPool.ToNumber(wanted);
            if (usage.InUse.Contains(n))
                throw new UserInputException($"address {wanted} is already taken", ExitCodes.Conflict);
            usage.InUse.Add(n);
            return wanted;
        }
        var next = pool.Next(usage.InUse, usage.Released, usage.ReleasedSet, skip)
            ?? throw new UserInputException($"the {family} pool {pool.Subnet} is full: remove clients or widen the subnet", ExitCodes.PoolFull);
        usage.InUse.Add(AddressPool.ToNumber(next));
        return next;
    }

    public VerbResult Remove(IReadOnlyList<string> names) =>
        Audited("remove", string.Join(",", names), names.Count == 1 ? names[0] : null, () => RemoveCore(names));

    private VerbResult RemoveCore(IReadOnlyList<string> names)
    {
        var unique = ValidateNames(names);
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var clients = unique.Select(store.RequireClient).ToList();
        var device = LiveDevice(store, server);
        SweepExpired(store, server, device);
        clients = [.. clients.Select(c => store.RequireClient(c.Name))];
        var before = LoadPolicy(store, server, clients);
        // Read before the delete takes their gateway lists along: only the peers of clients this interface serves are on it.
        var here = OwnGateway.Load(store, server, clients);
        var live = clients.Where(c => c.Enabled && here.Serves(c)).ToList();
        using (var tx = store.BeginWrite())
        {
            foreach (var c in clients)
            {
                var rules = before.Rules.Where(r => r.Subject == SubjectKind.Client && r.SubjectId == c.Id).ToList();
                store.DeleteClient(c, Now);
                store.AppendAudit(Now, Actor, "remove", c.Name, c.Name,
                    c.AddressText + (rules.Count > 0 ? $"; its rules removed: {string.Join("; ", rules.Select(r => $"#{r.Id} {r}"))}" : ""));
            }
            var after = LoadPolicy(store, server, []);
            var change = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Remove(c.PublicKey))] };
            var undo = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
            ApplyThenCommit(device, change, undo, tx, (server, here.Firewall(before), after));
        }
        foreach (var c in clients)
            DeleteConfig(c.Name);
        return new VerbResult(clients, device is not null, []);
    }

    public VerbResult Block(IReadOnlyList<string> names) => SetEnabled(names, enabled: false);

    public VerbResult Reenable(IReadOnlyList<string> names) => SetEnabled(names, enabled: true);

    private VerbResult SetEnabled(IReadOnlyList<string> names, bool enabled) =>
        Audited(enabled ? "reenable" : "block", string.Join(",", names), names.Count == 1 ? names[0] : null, () => SetEnabledCore(names, enabled));

    private VerbResult SetEnabledCore(IReadOnlyList<string> names, bool enabled)
    {
        var unique = ValidateNames(names);
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = LiveDevice(store, server);
        SweepExpired(store, server, device);
        var clients = unique.Select(store.RequireClient).ToList();
        if (enabled && clients.FirstOrDefault(c => c.IsExpired(Now)) is { } expired)
            throw new UserInputException($"{expired.Name} expired at {When.Format(expired.ExpiresAt!.Value)}: set a new expiry first ('mkb-vpn set {expired.Name} --expires 30d' or '--expires never'), then reenable");
        var toChange = clients.Where(c => c.Enabled != enabled).ToList();
        var unchanged = clients.Where(c => c.Enabled == enabled).Select(c => c.Name).ToList();
        if (toChange.Count == 0)
            return new VerbResult([], device is not null, unchanged);
        using (var tx = store.BeginWrite())
        {
            if (!enabled && device is not null)
            {
                // Remember where the user was, so that reenable can reach them at once.
                var state = device.Read();
                store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
                toChange = [.. toChange.Select(c => store.RequireClient(c.Name))];
            }
            foreach (var c in toChange)
            {
                store.SetEnabled(c, enabled);
                store.AppendAudit(Now, Actor, enabled ? "reenable" : "block", c.Name, c.Name, null);
            }
            // Only the clients this interface serves have (or get) a peer here; other gateways follow the registry.
            var live = OwnGateway.Load(store, server, toChange).Filter(toChange);
            DeviceChanges change, undo;
            if (enabled)
            {
                change = new DeviceChanges
                {
                    Peers = [
                        .. live.Select(c => (PeerChange)new PeerChange.Upsert(SpecOf(c))),
                        .. live.Where(ShouldKick).Select(c => new PeerChange.Kick(c.PublicKey, c.LastEndpoint!)),
                    ],
                };
                undo = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Remove(c.PublicKey))] };
            }
            else
            {
                change = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Remove(c.PublicKey))] };
                undo = new DeviceChanges { Peers = [.. live.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
            }
            ApplyThenCommit(device, change, undo, tx);
        }
        var result = toChange.Select(c => c with { Enabled = enabled }).ToList();
        return new VerbResult(result, device is not null, unchanged);
    }

    /// <summary>Re-contact a client at its last endpoint when it was seen recently.</summary>
    private bool ShouldKick(Client c) =>
        c.LastEndpoint is not null && c.LastHandshake is { } hs && Now - hs < RecoveryWindow;

    private static List<string> ValidateNames(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
            throw new UserInputException("give at least one client name");
        var unique = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var n in names)
        {
            ClientName.EnsureValid(n);
            if (seen.Add(n))
                unique.Add(n);
        }
        return unique;
    }
}
