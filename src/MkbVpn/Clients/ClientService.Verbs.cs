using System.Net;
using System.Net.Sockets;
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
}

/// <summary>The outcome of a verb: the clients it touched and whether the live interface changed.</summary>
public sealed record VerbResult(IReadOnlyList<Client> Clients, bool Live, IReadOnlyList<string> Unchanged);

public sealed partial class ClientService
{
    public VerbResult Add(IReadOnlyList<AddRequest> requests)
    {
        if (requests.Count == 0)
            throw new UserInputException("add: give at least one client name");
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var r in requests)
        {
            ClientName.EnsureValid(r.Name);
            if (!seen.Add(r.Name))
                throw new UserInputException($"client name '{r.Name}' is given twice");
            if (r.Keepalive is < 0 or > 65535)
                throw new UserInputException($"keepalive {r.Keepalive} is out of range (0-65535 seconds)");
        }

        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = LiveDevice(server);
        var now = Now;
        var added = new List<Client>();
        using (var tx = store.BeginWrite())
        {
            var usage4 = server.Subnet4 is not null ? store.LoadAddressUsage(v4: true) : null;
            var usage6 = server.Subnet6 is not null ? store.LoadAddressUsage(v4: false) : null;
            var pool4 = server.Subnet4 is { } s4 ? new AddressPool(s4) : null;
            var pool6 = server.Subnet6 is { } s6 ? new AddressPool(s6) : null;
            foreach (var r in requests)
            {
                if (store.FindClient(r.Name) is not null)
                    throw new UserInputException($"a client named '{r.Name}' already exists", ExitCodes.Conflict);
                var a4 = Allocate(pool4, usage4, r.Address4, "IPv4");
                var a6 = Allocate(pool6, usage6, r.Address6, "IPv6");
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
                });
                added.Add(client);
            }
            var change = new DeviceChanges { Peers = [.. added.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
            var undo = new DeviceChanges { Peers = [.. added.Select(c => new PeerChange.Remove(c.PublicKey))] };
            // Config files are written before the commit under temporary names and put in place
            // after it, so a full disk fails the whole add instead of leaving clients without files.
            var staged = new List<string>();
            try
            {
                foreach (var c in added)
                    staged.Add(StageConfig(server, c));
                ApplyThenCommit(device, change, undo, tx);
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
        return new VerbResult(added, device is not null, []);
    }

    private static IPAddress? Allocate(AddressPool? pool, Store.AddressUsage? usage, IPAddress? wanted, string family)
    {
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
            var n = AddressPool.ToNumber(wanted);
            if (usage.InUse.Contains(n))
                throw new UserInputException($"address {wanted} is already taken", ExitCodes.Conflict);
            usage.InUse.Add(n);
            return wanted;
        }
        var next = pool.Next(usage.InUse, usage.Released, usage.ReleasedSet)
            ?? throw new UserInputException($"the {family} pool {pool.Subnet} is full: remove clients or widen the subnet", ExitCodes.PoolFull);
        usage.InUse.Add(AddressPool.ToNumber(next));
        return next;
    }

    public VerbResult Remove(IReadOnlyList<string> names)
    {
        var unique = ValidateNames(names);
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var clients = unique.Select(store.RequireClient).ToList();
        var device = LiveDevice(server);
        using (var tx = store.BeginWrite())
        {
            foreach (var c in clients)
                store.DeleteClient(c, Now);
            var change = new DeviceChanges { Peers = [.. clients.Where(c => c.Enabled).Select(c => new PeerChange.Remove(c.PublicKey))] };
            var undo = new DeviceChanges { Peers = [.. clients.Where(c => c.Enabled).Select(c => new PeerChange.Upsert(SpecOf(c)))] };
            ApplyThenCommit(device, change, undo, tx);
        }
        foreach (var c in clients)
            DeleteConfig(c.Name);
        return new VerbResult(clients, device is not null, []);
    }

    public VerbResult Block(IReadOnlyList<string> names) => SetEnabled(names, enabled: false);

    public VerbResult Reenable(IReadOnlyList<string> names) => SetEnabled(names, enabled: true);

    private VerbResult SetEnabled(IReadOnlyList<string> names, bool enabled)
    {
        var unique = ValidateNames(names);
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var clients = unique.Select(store.RequireClient).ToList();
        var toChange = clients.Where(c => c.Enabled != enabled).ToList();
        var unchanged = clients.Where(c => c.Enabled == enabled).Select(c => c.Name).ToList();
        var device = LiveDevice(server);
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
                store.SetEnabled(c, enabled);
            DeviceChanges change, undo;
            if (enabled)
            {
                change = new DeviceChanges
                {
                    Peers = [
                        .. toChange.Select(c => (PeerChange)new PeerChange.Upsert(SpecOf(c))),
                        .. toChange.Where(ShouldKick).Select(c => new PeerChange.Kick(c.PublicKey, c.LastEndpoint!)),
                    ],
                };
                undo = new DeviceChanges { Peers = [.. toChange.Select(c => new PeerChange.Remove(c.PublicKey))] };
            }
            else
            {
                change = new DeviceChanges { Peers = [.. toChange.Select(c => new PeerChange.Remove(c.PublicKey))] };
                undo = new DeviceChanges { Peers = [.. toChange.Select(c => new PeerChange.Upsert(SpecOf(c)))] };
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
