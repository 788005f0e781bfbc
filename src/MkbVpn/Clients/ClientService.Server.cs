using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using MkbVpn.Addressing;
using MkbVpn.Devices;
using MkbVpn.Network;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>What init may set. Null means "default" on first init and "unchanged" with Change.</summary>
public sealed record InitOptions
{
    public string? Endpoint { get; init; }
    public string? Subnet4 { get; init; }
    public string? Subnet6 { get; init; }
    public bool NoIpv6 { get; init; }
    public IReadOnlyList<string>? InternalNetworks { get; init; }
    public IReadOnlyList<string>? Dns { get; init; }
    public int? Port { get; init; }
    public int? Mtu { get; init; }
    public bool? FullTunnel { get; init; }
    public bool? Masquerade { get; init; }
    public bool? ClientToClient { get; init; }
    public int? Keepalive { get; init; }
    public string? Interface { get; init; }
    /// <summary>Change settings of an initialised server instead of refusing.</summary>
    public bool Change { get; init; }
}

public sealed record InitResult(ServerSettings Server, bool Created, IReadOnlyList<string> Notes);

public sealed record UpResult(ServerSettings Server, string Engine, bool Created, int PeersAdded, int PeersRemoved, int PeersUpdated, int Kicked)
{
    /// <summary>Why this data plane runs the interface (e.g. "the wireguard kernel module is loaded").</summary>
    public string EngineReason { get; init; } = "";

    /// <summary>Something the admin should know, e.g. that kernel WireGuard was refused and the built-in engine took over.</summary>
    public string? Warning { get; init; }
}

/// <summary>What runs the live interface and why 'up' chose it.</summary>
public sealed record DataPlaneInfo(string Engine, string Reason);

public sealed partial class ClientService
{
    public const string DefaultSubnet4 = "10.99.0.0/24";

    /// <summary>
    /// Creates the server (or changes it with <see cref="InitOptions.Change"/>). A first init that
    /// fails leaves nothing behind: no data directory, no empty database that would read as
    /// "not initialised" or be mistaken for a server later.
    /// </summary>
    public InitResult Init(InitOptions o)
    {
        bool dirExisted = Directory.Exists(Paths.DataDir);
        bool dbExisted = File.Exists(Paths.Database) && new FileInfo(Paths.Database).Length > 0;
        try
        {
            return InitCore(o);
        }
        catch when (!dbExisted)
        {
            foreach (var f in new[] { Paths.Database, Paths.Database + "-wal", Paths.Database + "-shm", Paths.Database + "-journal" })
                if (File.Exists(f))
                    File.Delete(f);
            if (!dirExisted && Directory.Exists(Paths.DataDir))
                Directory.Delete(Paths.DataDir, recursive: true);
            throw;
        }
    }

    private InitResult InitCore(InitOptions o)
    {
        // Validate every given value before touching anything.
        var subnet4 = o.Subnet4 is null ? (IPNetwork?)null : AsField("subnet", () => Cidr.ParseNetwork(o.Subnet4, "subnet"));
        if (subnet4 is { } s4 && s4.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            throw new FieldException("subnet", $"subnet: {s4} is not an IPv4 network (the IPv6 subnet is set on its own)");
        var subnet6 = o.Subnet6 is null ? (IPNetwork?)null : AsField("subnet6", () => Cidr.ParseNetwork(o.Subnet6, "subnet6"));
        if (subnet6 is { } s6 && s6.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
            throw new FieldException("subnet6", $"subnet6: {s6} is not an IPv6 network");
        if (o.NoIpv6 && o.Subnet6 is not null)
            throw new FieldException("subnet6", "subnet6: an IPv6 subnet and no IPv6 contradict each other");
        foreach (var s in new[] { subnet4, subnet6 })
            if (s is { } sn)
                AddressPool.Validate(sn);
        var internals = o.InternalNetworks?.Select(n => AsField("internal-network", () => Cidr.ParseNetwork(n, "internal-network"))).Distinct().ToList();
        var dns = o.Dns?.SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (dns is not null)
        {
            if (dns.Count == 1 && dns[0] == "none")
                dns = [];
            foreach (var d in dns)
                AsField("dns", () => Cidr.ParseAddress(d, "dns"));
        }
        if (o.Port is { } port && port is < 1 or > 65535)
            throw new FieldException("port", $"port: {port} is not a port (1-65535)");
        if (o.Mtu is { } mtu && mtu is < 1280 or > 9000)
            throw new FieldException("mtu", $"mtu: {mtu} is out of range (1280-9000)");
        if (o.Keepalive is { } ka && ka is < 0 or > 65535)
            throw new FieldException("keepalive", $"keepalive: {ka} is out of range (0-65535 seconds)");
        if (o.Interface is { } iface && !IsInterfaceName(iface))
            throw new FieldException("interface", $"interface: '{iface}' is not a valid interface name (1-15 of a-z A-Z 0-9 _)");
        (string Host, int Port)? endpoint = o.Endpoint is null ? null : Cidr.ParseEndpoint(o.Endpoint, o.Port ?? ServerSettings.DefaultPort);

        Paths.EnsureCreated();
        using var held = Lock();
        using var store = Store.Open(Paths, create: true);
        var existing = store.GetServer();
        var notes = new List<string>();
        ServerSettings server;
        if (existing is null)
        {
            if (endpoint is null)
                throw new FieldException("endpoint", "endpoint: HOST[:PORT] is required: the public name or address clients dial (e.g. vpn.example.com:51820)");
            var s4v = subnet4 ?? Cidr.ParseNetwork(DefaultSubnet4, "default subnet");
            EnsureFreeOnHost(s4v, null, "subnet");
            if (subnet6 is { } n6)
                EnsureFreeOnHost(n6, null, "subnet6");
            IReadOnlyList<IPNetwork> nets;
            var bridges = HostNetwork.DetectBridgeNetworks();
            if (internals is not null)
                nets = internals;
            else
            {
                nets = [.. bridges.Select(b => b.Network).Distinct()];
                notes.Add(nets.Count == 0
                    ? "no private bridge network found on this host: clients reach only the server (add networks with 'mkb-vpn init --change --internal-network CIDR')"
                    : $"internal networks found on this host: {string.Join(", ", bridges.Select(b => $"{b.Network} ({b.Interface})"))}");
            }
            // Default DNS: the host's address on the first internal bridge (Incus runs a resolver there).
            var defaultDns = dns ?? [.. bridges.Where(b => nets.Contains(b.Network)).Select(b => b.HostAddress.ToString()).Take(1)];
            var priv = WireGuardKeys.NewPrivateKey();
            server = new ServerSettings
            {
                Interface = o.Interface ?? ServerSettings.DefaultInterface,
                PrivateKey = priv,
                PublicKey = WireGuardKeys.PublicKeyOf(priv),
                ListenPort = o.Port ?? ServerSettings.DefaultPort,
                EndpointHost = endpoint.Value.Host,
                EndpointPort = endpoint.Value.Port,   // without :PORT, the listen port
                Subnet4 = s4v,
                Subnet6 = o.NoIpv6 ? null : subnet6 ?? RandomUla(),
                Dns = defaultDns,
                Mtu = o.Mtu ?? ServerSettings.DefaultMtu,
                InternalNetworks = nets,
                FullTunnel = o.FullTunnel ?? false,
                Masquerade = o.Masquerade ?? false,
                ClientToClient = o.ClientToClient ?? false,
                Keepalive = o.Keepalive ?? ServerSettings.DefaultKeepalive,
                CreatedAt = Now,
            };
            using var tx = store.BeginWrite();
            store.SaveServer(server);
            InsertDefaultRules(store);
            store.AppendAudit(Now, Actor, "init", server.Interface, null, $"endpoint {server.Endpoint}; subnets {string.Join(", ", new[] { server.Subnet4, server.Subnet6 }.OfType<IPNetwork>())}");
            tx.Commit();
            return new InitResult(server, Created: true, notes);
        }

        if (!o.Change)
            throw new UserInputException($"mkb-vpn is already initialised in {Paths.DataDir}; to change a setting, run 'mkb-vpn init --change' with the new values", ExitCodes.Conflict);
        var clients = store.ListClients();
        if (o.Interface is not null && o.Interface != existing.Interface && Devices.Find(existing.Interface) is not null)
            throw new FieldException("interface", $"interface: stop the server first ('mkb-vpn down') to rename {existing.Interface}");
        var new4 = subnet4 ?? existing.Subnet4;
        var new6 = o.NoIpv6 ? null : subnet6 ?? existing.Subnet6;
        if (subnet4 is { } c4 && c4 != existing.Subnet4)
            EnsureFreeOnHost(c4, existing.Subnet4, "subnet");
        if (subnet6 is { } c6 && c6 != existing.Subnet6)
            EnsureFreeOnHost(c6, existing.Subnet6, "subnet6");
        foreach (var c in clients)
        {
            if (c.Address4 is not null && (new4 is not { } n4 || !new AddressPool(n4).IsAssignable(c.Address4)) ||
                c.Address6 is not null && (new6 is not { } n6 || !new AddressPool(n6).IsAssignable(c.Address6)))
                throw new UserInputException($"the new subnet does not hold client '{c.Name}' ({c.AddressText}): remove such clients first");
        }
        int newPort = o.Port ?? existing.ListenPort;
        server = existing with
        {
            Interface = o.Interface ?? existing.Interface,
            ListenPort = newPort,
            EndpointHost = endpoint?.Host ?? existing.EndpointHost,
            // An endpoint given without a port follows the listen port; an explicit one (e.g. :443 behind a forward) stays.
            EndpointPort = endpoint is { } ep ? (HasPort(o.Endpoint!) ? ep.Port : newPort)
                : existing.EndpointPort == existing.ListenPort ? newPort : existing.EndpointPort,
            Subnet4 = new4,
            Subnet6 = new6,
            Dns = dns ?? existing.Dns,
            Mtu = o.Mtu ?? existing.Mtu,
            InternalNetworks = internals ?? existing.InternalNetworks,
            FullTunnel = o.FullTunnel ?? existing.FullTunnel,
            Masquerade = o.Masquerade ?? existing.Masquerade,
            ClientToClient = o.ClientToClient ?? existing.ClientToClient,
            Keepalive = o.Keepalive ?? existing.Keepalive,
        };
        if (server.SameSettings(existing))
        {
            notes.Add("nothing changed");
            return new InitResult(server, Created: false, notes);
        }
        var device = LiveDevice(store, existing);
        using (var tx = store.BeginWrite())
        {
            store.SaveServer(server);
            store.AppendAudit(Now, Actor, "init change", server.Interface, null, string.Join("; ", SettingChanges(existing, server)));
            var change = new DeviceChanges { ListenPort = server.ListenPort != existing.ListenPort ? server.ListenPort : null };
            var undo = new DeviceChanges { ListenPort = change.ListenPort is null ? null : existing.ListenPort };
            ApplyThenCommit(device, change, undo, tx);
        }
        var policy = LoadPolicy(store, server);
        var here = OwnGateway.Load(store, server);
        if (device is not null)
        {
            HostNetwork.ConfigureLink(server);
            HostNetwork.InstallRules(server, Network.AccessFirewall.Build(here.Firewall(policy)));
        }
        var homes = ConfigHomes.Of(here, server);
        foreach (var c in policy.Clients)
            WriteConfigText(c.Name, homes.Render(policy, c));
        if (clients.Count > 0 && ClientVisibleChange(existing, server))
            notes.Add($"the config of all {clients.Count} clients changed: send them their new config or QR code");
        return new InitResult(server, Created: false, notes);
    }

    /// <summary>Refuses a VPN subnet that overlaps a network the host already has (other than our own current one).</summary>
    private void EnsureFreeOnHost(IPNetwork subnet, IPNetwork? ours, string field)
    {
        foreach (var host in HostNetwork.HostNetworks())
        {
            if (host.PrefixLength > 0 && host != ours && Cidr.Overlaps(host, subnet))
                throw new FieldException(field, $"{field}: the VPN subnet {subnet} overlaps the host's network {host}: choose another");
        }
    }

    /// <summary>
    /// The seed's promise for a new server (init, import): every client reaches the internal
    /// networks and the server. Revoking these two rules makes the server least-privilege.
    /// </summary>
    private void InsertDefaultRules(Store store)
    {
        foreach (var target in new[] { Access.AccessRule.Internal, Access.AccessRule.Server })
            store.InsertRule(new Access.AccessRule { Id = 0, Subject = Access.SubjectKind.Everyone, Target = target, Protocol = Access.Protocol.Any, CreatedAt = Now });
    }

    /// <summary>Writes every client's config file as the access policy renders it (after an import or a restore).</summary>
    private void WriteAllConfigs(Store store, ServerSettings server)
    {
        var policy = LoadPolicy(store, server);
        var homes = ConfigHomes.Load(store, server);
        foreach (var c in policy.Clients)
            WriteConfigText(c.Name, homes.Render(policy, c));
    }

    private static IEnumerable<string> SettingChanges(ServerSettings a, ServerSettings b)
    {
        if (a.Interface != b.Interface) yield return $"interface {b.Interface}";
        if (a.ListenPort != b.ListenPort) yield return $"port {b.ListenPort}";
        if (a.Endpoint != b.Endpoint) yield return $"endpoint {b.Endpoint}";
        if (a.Subnet4 != b.Subnet4) yield return $"subnet {b.Subnet4?.ToString() ?? "none"}";
        if (a.Subnet6 != b.Subnet6) yield return $"subnet6 {b.Subnet6?.ToString() ?? "none"}";
        if (!a.Dns.SequenceEqual(b.Dns)) yield return $"dns {(b.Dns.Count == 0 ? "none" : string.Join(",", b.Dns))}";
        if (a.Mtu != b.Mtu) yield return $"mtu {b.Mtu}";
        if (!a.InternalNetworks.SequenceEqual(b.InternalNetworks)) yield return $"internal networks {string.Join(",", b.InternalNetworks)}";
        if (a.FullTunnel != b.FullTunnel) yield return b.FullTunnel ? "full tunnel" : "split tunnel";
        if (a.Masquerade != b.Masquerade) yield return $"masquerade {(b.Masquerade ? "on" : "off")}";
        if (a.ClientToClient != b.ClientToClient) yield return $"client-to-client {(b.ClientToClient ? "on" : "off")}";
        if (a.Keepalive != b.Keepalive) yield return $"keepalive {b.Keepalive}";
    }

    private static bool ClientVisibleChange(ServerSettings a, ServerSettings b) =>
        a.Endpoint != b.Endpoint || !a.Dns.SequenceEqual(b.Dns) || a.Mtu != b.Mtu || a.FullTunnel != b.FullTunnel ||
        !a.InternalNetworks.SequenceEqual(b.InternalNetworks) || a.Keepalive != b.Keepalive || a.Subnet4 != b.Subnet4 || a.Subnet6 != b.Subnet6;

    private static bool HasPort(string endpoint)
    {
        endpoint = endpoint.Trim();
        if (endpoint.StartsWith('['))
            return endpoint.Contains("]:", StringComparison.Ordinal);
        return endpoint.Count(c => c == ':') == 1;
    }

    internal static bool IsInterfaceName(string name) =>
        name.Length is > 0 and <= 15 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>A random unique-local /64 (RFC 4193: fd00::/8 with a random 40-bit global ID).</summary>
    private static IPNetwork RandomUla()
    {
        var bytes = new byte[16];
        bytes[0] = 0xFD;
        RandomNumberGenerator.Fill(bytes.AsSpan(1, 5));
        return new IPNetwork(new IPAddress(bytes), 64);
    }

    // ---- up / down --------------------------------------------------------

    /// <summary>
    /// Brings the interface up from the store, or reconciles a running one: missing peers are
    /// added, strays removed, drift fixed, blocked clients absent. Peers that match are not touched.
    /// The interface serves the clients of the registry's own gateway (<see cref="OwnGateway"/>):
    /// a client only other gateways serve is no peer here, nor in its firewall.
    /// </summary>
    public UpResult Up(string? engine = null) => UpCore(engine, restoring: false)!;

    /// <summary>
    /// Up for the supervisor's restore of a lost interface (and its reconcile with the registry): checked
    /// under the lock, so a 'down' that ran meanwhile wins (returns null) instead of the interface coming
    /// back after it. With <paramref name="follow"/>: what was applied is recorded there, for the
    /// supervisor to apply the registry's next changes per client (<see cref="ApplyFollowed"/>).
    /// </summary>
    private UpResult? UpCore(string? engine, bool restoring, FollowState? follow = null)
    {
        Privileges.RequireRoot("up");
        Privileges.RequireTool("ip");
        Privileges.RequireTool("nft");
        using var held = Lock();
        using var store = OpenStore();
        if (restoring && store.GetRuntime("state") == "down")
            return null;
        var server = store.RequireServer();
        var device = Devices.Find(server.Interface);
        if (device is not null)
            RefuseOtherGateway(store, server, device, "up");
        SweepExpired(store, server, device);
        bool created = false;
        DataPlane? plane = null;
        if (device is null)
        {
            if (HostNetwork.LinkExists(server.Interface))
                throw new UserInputException($"a network interface named {server.Interface} exists and is not WireGuard: remove it or choose another with 'init --change --interface'");
            plane = Devices.Create(server.Interface, engine);
            device = plane.Device;
            created = true;
        }
        var dataPlane = plane is not null ? new DataPlaneInfo(plane.Engine, plane.Reason) : RunningDataPlane(store, server.Interface);

        InterfaceState state;
        List<Client> clients;
        List<Client> enabled;
        OwnGateway here;
        DeviceChanges changes;
        try
        {
            state = device.Read();
            // A running interface knows endpoints newer than the store's: keep them.
            store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
            clients = [.. store.ListClients()];
            // Only the clients the registry's own gateway serves (as 'up --gateway main' would): a client of other gateways only is no peer here.
            here = OwnGateway.Load(store, server);
            enabled = clients.Where(c => c.Enabled && here.Serves(c)).ToList();
            var kicks = enabled.Where(ShouldKick).ToDictionary(c => c.PublicKey, c => c.LastEndpoint!);
            changes = Reconciler.Diff(server.PrivateKey, server.ListenPort, [.. enabled.Select(SpecOf)], state, kicks);
            device.Apply(changes with { Peers = [.. changes.Peers.Where(p => p is not PeerChange.Kick)] });
            HostNetwork.ConfigureLink(server);
        }
        catch (Exception) when (created)
        {
            // Never leave a half-made interface behind (e.g. a kernel link when wg is missing).
            try
            {
                HostNetwork.DeleteLink(server.Interface);
            }
            catch (IOException)
            {
                // The original failure is the one to report.
            }
            throw;
        }
        string before = HostNetwork.EnableForwarding(server.Subnet6 is not null);
        using (var tx = store.BeginWrite())
        {
            if (store.GetRuntime("forwarding_before") is null)
                store.SetRuntime("forwarding_before", before);
            store.SetRuntime("state", "up");
            store.SetRuntime("engine", dataPlane.Engine);
            store.SetRuntime("engine_reason", dataPlane.Reason);
            if (created)
                store.ZeroTrafficCounters();   // a new interface counts every peer's bytes from zero
            tx.Commit();
        }
        var policy = LoadPolicy(store, server);
        var firewall = Network.AccessFirewall.Build(here.Firewall(policy));
        HostNetwork.InstallRules(server, firewall);
        // Contact recent clients only now that the link is up and the rules are in place: a kernel
        // interface sends the keepalive that starts the handshake only while it is running
        // (netif_running); before 'ip link set up' the kick is silently lost and the client waits
        // for its own retry (about 15 s).
        var kicked = changes.Peers.OfType<PeerChange.Kick>().ToList();
        if (kicked.Count > 0)
            device.Apply(new DeviceChanges { Peers = kicked });

        // Config files are renderings: make sure every client has its file (e.g. after a restore).
        var missing = clients.Where(c => !File.Exists(Paths.ClientConfig(c.Name))).ToList();
        var homes = missing.Count == 0 ? null : ConfigHomes.Load(store, server, missing);
        foreach (var c in missing)
            WriteConfigText(c.Name, homes!.Render(policy, c));

        if (follow is not null)
        {
            // The same filter as a following gateway's (no gateway list, or one naming it); with no gateway
            // holding the server's key, an id no client names: only the clients without a list.
            follow.GatewayId = here.Id ?? 0;
            follow.Interface = server.Interface;
            follow.Server = server;
            follow.ClientIds = here.Filter(clients).ToDictionary(c => c.PublicKey, c => c.Id);
            // Exactly the peers just applied (an expiry passing since the sweep above is the next sweep's, which notifies).
            follow.Active = enabled.ToDictionary(c => c.Id, c => c.PublicKey);
            follow.Firewall = firewall;
            follow.Rules = policy.Rules;
        }
        var live = state.Peers.Select(p => p.PublicKey).ToHashSet();
        int added = changes.Peers.OfType<PeerChange.Upsert>().Count(u => !live.Contains(u.PublicKey));
        return new UpResult(server, dataPlane.Engine, created, added,
            changes.Peers.OfType<PeerChange.Remove>().Count(),
            changes.Peers.OfType<PeerChange.Upsert>().Count() - added,
            kicked.Count)
        { EngineReason = dataPlane.Reason, Warning = plane?.Warning };
    }

    /// <summary>
    /// 'up' and 'down' without --gateway run the registry server's interface: on a gateway's host, where the interface
    /// of that name is that gateway's, they would put the server's key and clients on it, or take it down.
    /// </summary>
    private static void RefuseOtherGateway(Store store, ServerSettings server, IWireGuardDevice device, string verb)
    {
        if (OtherGatewayHere(store, server, device) is { } g)
            throw new UserInputException($"{IsGatewayHere(device, g)}: '{verb}' without --gateway is for the registry server's host; " +
                $"here gateway '{g.Name}' runs with 'mkb-vpn up --foreground --gateway {g.Name}' (the service), which follows the registry", ExitCodes.Conflict);
    }

    /// <summary>What runs the live interface (kernel or a userspace engine, and why), or null when it is down.</summary>
    public DataPlaneInfo? DataPlane()
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        return Devices.Find(server.Interface) is null ? null : RunningDataPlane(store, server.Interface);
    }

    private DataPlaneInfo RunningDataPlane(Store store, string iface)
    {
        string? engine = store.GetRuntime("engine"), reason = store.GetRuntime("engine_reason");
        bool kernel = Devices.IsKernelLink(iface);
        // Trust what 'up' recorded only while it matches the link actually there.
        if (engine is not null && reason is not null && (engine == "kernel") == kernel)
            return new DataPlaneInfo(engine, reason);
        return kernel ? new DataPlaneInfo("kernel", "a kernel wireguard link is running") : new DataPlaneInfo("userspace", "a userspace engine is running");
    }

    /// <summary>Removes the interface, the nftables table, and restores forwarding as it was.</summary>
    public bool Down()
    {
        Privileges.RequireRoot("down");
        using var held = Lock();
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = Devices.Find(server.Interface);
        if (device is not null)
        {
            RefuseOtherGateway(store, server, device, "down");
            try
            {
                var state = device.Read();
                store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
            }
            catch (IOException)
            {
                // Unreachable engine: remove the interface anyway.
            }
        }
        // 'down' is recorded before the link goes, so a supervisor that sees it vanish knows why.
        using (var tx = store.BeginWrite())
        {
            store.SetRuntime("state", "down");
            tx.Commit();
        }
        HostNetwork.DeleteLink(server.Interface);
        Devices.AwaitEngineExit(server.Interface);
        HostNetwork.RemoveRules();
        string? before = store.GetRuntime("forwarding_before");
        HostNetwork.RestoreForwarding(before);
        using (var tx = store.BeginWrite())
        {
            store.SetRuntime("forwarding_before", null);
            store.SetRuntime("state", "down");
            tx.Commit();
        }
        return device is not null;
    }
}

public sealed partial class ClientService
{
    /// <summary>
    /// The long-running side of 'up --foreground': every <paramref name="period"/> it records the
    /// peers' endpoints and handshakes (so a restore can reach connected users at once), once a
    /// minute their traffic (the history), and if the interface vanished it brings it back from the
    /// store; every <see cref="DriftCheckEvery"/> it compares the interface and the firewall with the store in full
    /// (a change by hand on this host is put back). With the registry in PostgreSQL it also follows the registry for this interface (the
    /// registry server's own gateway) as 'up --gateway' does for another: a change committed on any
    /// host reaches it within about a second (<see cref="FollowOwn"/>). Returns when cancelled.
    /// </summary>
    /// <returns>True when it stopped because an admin ran 'mkb-vpn down'.</returns>
    /// <param name="driftCheckEvery">How often the interface and the firewall are compared with the store in full although
    /// nothing changed (<see cref="DriftCheckEvery"/> by default), as a following gateway does.</param>
    public bool Supervise(TimeSpan period, CancellationToken stop, Action<string> log, string? engine = null, TimeSpan? driftCheckEvery = null)
    {
        var own = Paths.Store is { } where ? new OwnFollow(StoreLocation.Parse(where)) : null;
        try
        {
            return SuperviseLoop(period, stop, log, engine, own, driftCheckEvery ?? DriftCheckEvery);
        }
        finally
        {
            own?.Feed?.Dispose();
        }
    }

    private bool SuperviseLoop(TimeSpan period, CancellationToken stop, Action<string> log, string? engine, OwnFollow? own, TimeSpan driftEvery)
    {
        long sampled = long.MinValue;
        var round = System.Diagnostics.Stopwatch.StartNew();
        var drift = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (own is null)
            {
                if (stop.WaitHandle.WaitOne(period))
                    return false;
            }
            else
            {
                // The registry's changes are applied as they come; the duties below still run once a period.
                do
                {
                    if (FollowOwn(own, period - round.Elapsed, stop, engine, log))
                        return false;
                }
                while (round.Elapsed < period);
                round.Restart();
            }
            try
            {
                bool up = Snapshot() >= 0;
                // Traffic history: one sample per minute of the clock (ClientService.Traffic.cs).
                if (up && EpochMinute(Now) != sampled)
                {
                    sampled = EpochMinute(Now);
                    SampleTraffic(recordLastSeen: false);   // Snapshot just recorded them
                }
                if (!up)
                {
                    if (DownRequested())
                    {
                        log("stopping: the interface was taken down with 'mkb-vpn down'");
                        return true;
                    }
                    log("interface lost: restoring it from the store");
                    var restored = own is null ? null : new FollowState();
                    if (UpCore(engine, restoring: true, restored) is not { } r)
                    {
                        log("stopping: the interface was taken down with 'mkb-vpn down'");
                        return true;
                    }
                    if (own is not null)
                        own.State = restored;   // what the restore applied: the next change is applied per client again
                    log($"restored {r.Server.Interface}: {r.PeersAdded} peers, {r.Kicked} recent clients contacted");
                }
                if (HasExpiredDue())
                {
                    foreach (var name in ExpireDue())
                        log($"blocked {name}: its expiry has passed");
                }
                if (up && drift.Elapsed >= driftEvery)
                {
                    // The drift check: a peer or rule changed by hand on this host is put back.
                    drift.Restart();
                    if (own is not null)
                        own.State = null;   // the next FollowOwn compares everything and says so when something differed
                    else if (UpCore(engine, restoring: true) is { } d && d.PeersAdded + d.PeersRemoved + d.PeersUpdated > 0)
                        log(DriftLine(d.Server.Interface, "the store", d.PeersAdded, d.PeersRemoved, d.PeersUpdated));
                }
            }
            catch (Exception e) when (e is IOException or UserInputException)
            {
                log($"supervisor: {e.Message}");
            }
        }
    }

    /// <summary>What the supervisor remembers to follow the registry for its own interface.</summary>
    private sealed class OwnFollow(StoreLocation location)
    {
        public readonly StoreLocation Location = location;
        public ChangeFeed? Feed;
        /// <summary>What was applied to the interface; null: reconcile it fully before the next change.</summary>
        public FollowState? State;
        /// <summary>How long to wait before the next try after a failure (doubling to 30 s, as a following gateway's).</summary>
        public TimeSpan Retry = TimeSpan.FromSeconds(1);
    }

    /// <summary>
    /// Waits up to <paramref name="wait"/> for the registry's changes and applies them to the registry
    /// server's own interface: per client as a following gateway does (<see cref="ApplyFollowed"/>),
    /// under the lock the verbs take, and never to an interface that is missing or taken down (those
    /// are the supervisor's: restore, or stop). A change this host's verbs made is applied again:
    /// setting or removing a peer is idempotent, and a firewall difference that no longer applies
    /// reloads the table whole. Before the first change and after a lost feed, the interface is
    /// reconciled with the registry fully. True when stopped.
    /// </summary>
    private bool FollowOwn(OwnFollow own, TimeSpan wait, CancellationToken stop, string? engine, Action<string> log)
    {
        var retry = own.Retry;
        try
        {
            if (own.Feed is null)
            {
                own.Feed = ChangeFeed.Listen(own.Location);
                own.State = null;   // changes made before were not delivered
            }
            if (own.State is null)
                ReconcileOwn(own, engine, log);
            own.Retry = TimeSpan.FromSeconds(1);
            var changes = own.Feed.Wait(wait > MinWait ? wait : MinWait, TimeSpan.FromMilliseconds(20), stop);
            if (changes.Count > 0)
                ApplyOwn(own, changes, engine, log);
            return stop.IsCancellationRequested;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
        catch (UserInputException e) when (e.ExitCode == ExitCodes.Database)
        {
            own.Feed?.Dispose();
            own.Feed = null;
            own.State = null;
            log($"registry unreachable ({e.Message}); its changes reach the interface when it is back; retrying in {retry.TotalSeconds:0} s");
            own.Retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            return stop.WaitHandle.WaitOne(retry);
        }
        catch (Exception e) when (e is IOException or UserInputException)
        {
            own.State = null;
            log($"following the registry: {e.Message}");
            own.Retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            return stop.WaitHandle.WaitOne(retry);
        }
    }

    /// <summary>A full reconcile of the running interface with the registry ('up' under the lock), recording what it applied.</summary>
    private void ReconcileOwn(OwnFollow own, string? engine, Action<string> log)
    {
        own.State = null;
        if (!InterfaceRunning())
            return;   // lost or taken down: the supervisor restores it, or stops
        var st = new FollowState();
        if (UpCore(engine, restoring: true, st) is not { } r)
            return;
        own.State = st;
        if (r.PeersAdded + r.PeersRemoved + r.PeersUpdated > 0)
            log($"reconciled {r.Server.Interface} with the registry: {r.PeersAdded} added, {r.PeersRemoved} removed, {r.PeersUpdated} updated");
    }

    /// <summary>A burst of the registry's changes on the registry server's own interface.</summary>
    private void ApplyOwn(OwnFollow own, IReadOnlyList<string> changes, string? engine, Action<string> log)
    {
        if (own.State is not { } st)
        {
            // Nothing applied to follow from (the interface was not running at the last reconcile): everything.
            ReconcileOwn(own, engine, log);
            return;
        }
        bool full = false;
        using (Lock())
        {
            if (!InterfaceRunning())
                return;
            ApplyFollowed(st, changes, () => SameOwnSettings(st), () => full = true, log);
        }
        if (full)
            ReconcileOwn(own, engine, log);
    }

    /// <summary>Whether the registry server's settings and own gateway are still those applied (then an 'all' is about rules or groups).</summary>
    private bool SameOwnSettings(FollowState st)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        long own = OwnGateway.IdOf(store.ListGateways(), server) ?? 0;
        return own == st.GatewayId && server.SameSettings(st.Server!);
    }

    /// <summary>Whether the registry server's interface is here and not taken down with 'mkb-vpn down'.</summary>
    private bool InterfaceRunning()
    {
        using var store = OpenStore();
        return store.GetRuntime("state") != "down" && Devices.Find(store.RequireServer().Interface) is not null;
    }

    /// <summary>A read without the lock: is any enabled client past its expiry?</summary>
    private bool HasExpiredDue()
    {
        using var store = OpenStore();
        return store.ExpiredButEnabled(Now).Count > 0;
    }

    private bool DownRequested()
    {
        using var store = OpenStore();
        return store.GetRuntime("state") == "down";
    }
}
