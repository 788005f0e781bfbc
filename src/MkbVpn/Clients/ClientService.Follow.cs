using System.Diagnostics;
using MkbVpn.Devices;
using MkbVpn.Gateways;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>What one application of the registry to a gateway's interface did.</summary>
public sealed record GatewayApplied(Gateway Gateway, ServerSettings Server, string Engine, bool Created, int Served, int PeersAdded, int PeersRemoved, int PeersUpdated)
{
    /// <summary>Clients this gateway saw lately, contacted at their last endpoint when their peer was (re)added.</summary>
    public int Kicked { get; init; }

    public string EngineReason { get; init; } = "";
}

public sealed partial class ClientService
{
    private static readonly TimeSpan MinWait = TimeSpan.FromMilliseconds(10);

    /// <summary>After per-client changes, the full reconcile (firewall, drift) follows this much later, once for a burst.</summary>
    private static readonly TimeSpan FullReconcileDelay = TimeSpan.FromSeconds(2);

    /// <summary>At most this many client ids are applied one by one; a larger burst is one full reconcile.</summary>
    private const int MaxClientChanges = 256;

    /// <summary>The client ids of a burst of notifications, or null when it must be a full reconcile ('all', unknown, or too many).</summary>
    private static HashSet<long>? ClientIdsOf(IReadOnlyList<string> payloads)
    {
        var ids = new HashSet<long>();
        foreach (var p in payloads)
        {
            if (!p.StartsWith("client:", StringComparison.Ordinal) ||
                !long.TryParse(p.AsSpan("client:".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long id))
                return null;
            ids.Add(id);
            if (ids.Count > MaxClientChanges)
                return null;
        }
        return ids;
    }

    /// <summary>
    /// The fast path: reads only the changed clients and sets or removes their peers (an upsert is
    /// idempotent, so no read of the interface is needed). The access rules follow with the full
    /// reconcile that comes shortly after.
    /// </summary>
    private (int Upserted, int Removed) ApplyClients(IReadOnlyCollection<long> ids, FollowState st)
    {
        if (st.Interface is null || Devices.Find(st.Interface) is not { } device)
            return (0, 0);
        using var store = OpenStore();
        var now = Now;
        var peers = new List<PeerChange>();
        int upserted = 0, removed = 0;
        foreach (long id in ids)
        {
            var c = store.FindClientById(id);
            var old = st.Active.GetValueOrDefault(id);
            bool serve = c is not null && c.Enabled && !c.IsExpired(now) && (store.GatewaysOf(id) is var gs && (gs.Count == 0 || gs.Contains(st.GatewayId)));
            if (old is not null && (!serve || !old.Equals(c!.PublicKey)))
            {
                peers.Add(new PeerChange.Remove(old));
                st.Active.Remove(id);
                removed++;
            }
            if (serve)
            {
                peers.Add(new PeerChange.Upsert(SpecOf(c!)));
                st.Active[id] = c!.PublicKey;
                st.ClientIds[c.PublicKey] = id;
                upserted++;
                // A client (re)joining this gateway is contacted where the gateway last saw it, as the full path does.
                if (old is null && store.GatewayPeer(st.GatewayId, id) is { Endpoint: { } ep, LastHandshake: { } hs } && now - hs < RecoveryWindow)
                    peers.Add(new PeerChange.Kick(c!.PublicKey, ep));
            }
        }
        if (peers.Count > 0)
            device.Apply(new DeviceChanges { Peers = peers });
        return (upserted, removed);
    }

    /// <summary>What a following gateway remembers between applications (so it serves on while the registry is away).</summary>
    private sealed class FollowState
    {
        public string? Interface;
        public string? ForwardingBefore;
        public DataPlaneInfo? Plane;
        /// <summary>Every client this gateway serves (blocked ones too), by public key: for reports.</summary>
        public Dictionary<WireGuardKey, long> ClientIds = [];
        /// <summary>The clients whose peer is on the interface, by client id.</summary>
        public Dictionary<long, WireGuardKey> Active = [];
        public long GatewayId;
        public GatewayApplied? Last;
        /// <summary>What the last report wrote per client id.</summary>
        public Dictionary<long, (DateTimeOffset?, string?, long, long)> Reported = [];
    }

    /// <summary>
    /// 'up --foreground --gateway NAME': applies the registry to this gateway's interface (its
    /// clients only), then follows the registry's changes through LISTEN/NOTIFY, applying each per
    /// peer as it is committed; reports the interface's state into the registry every
    /// <paramref name="reportEvery"/>. A lost registry leaves the interface as it is (the data plane
    /// never waits for the database); it is retried with backoff and fully reconciled on return.
    /// Returns when <paramref name="stop"/> is cancelled, after taking the interface down.
    /// </summary>
    /// <param name="started">Called once with the first application (for the command's first line).</param>
    public void Follow(string gateway, TimeSpan reportEvery, CancellationToken stop, Action<string> log, string? engine = null, Action<GatewayApplied>? started = null)
    {
        if (Paths.Store is not { } where)
            throw new FieldException("gateway", "gateway: following a gateway needs the registry in PostgreSQL (--store or $MKB_VPN_STORE); on one host, run 'mkb-vpn up --foreground' without --gateway", ExitCodes.UserError);
        var location = StoreLocation.Parse(where);
        Privileges.RequireRoot("up --gateway");
        Privileges.RequireTool("ip");
        Privileges.RequireTool("nft");
        var state = new FollowState();
        // The first application must work: an unknown gateway or an unreachable registry is the admin's to fix.
        ChangeFeed? feed = ChangeFeed.Listen(location);
        try
        {
            var first = ApplyGateway(gateway, engine, state);
            started?.Invoke(first);
            var backoff = TimeSpan.FromSeconds(1);
            bool full = false;
            var nextReport = Stopwatch.StartNew();
            var sinceStart = nextReport;
            TimeSpan reportDue = TimeSpan.Zero;
            TimeSpan? fullDue = null;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (feed is null)
                    {
                        feed = ChangeFeed.Listen(location);
                        full = true;
                    }
                    if (full || Devices.Find(state.Interface!) is null)
                    {
                        // Back from a lost connection (changes made meanwhile were not delivered), or the interface was lost.
                        var r = ApplyGateway(gateway, engine, state);
                        log($"reconciled {r.Server.Interface} with the registry: {r.Served} clients, {r.PeersAdded} added, {r.PeersRemoved} removed, {r.PeersUpdated} updated");
                        full = false;
                        fullDue = null;
                        backoff = TimeSpan.FromSeconds(1);
                    }
                    var wait = (fullDue is { } d && d < reportDue ? d : reportDue) - nextReport.Elapsed;
                    var changes = feed.Wait(wait > MinWait ? wait : MinWait, TimeSpan.FromMilliseconds(20), stop);
                    if (changes.Count > 0 && ClientIdsOf(changes) is { } ids && state.Last is not null)
                    {
                        // Changes to a few clients: their peers at once, the full reconcile (firewall, drift) soon after.
                        var (upserted, removed) = ApplyClients(ids, state);
                        if (upserted + removed > 0)
                            log($"applied {ids.Count} client change(s): {upserted} peer(s) set, {removed} removed");
                        fullDue ??= sinceStart.Elapsed + FullReconcileDelay;
                    }
                    else if (changes.Count > 0)
                    {
                        fullDue = sinceStart.Elapsed;
                    }
                    if (fullDue is { } due && sinceStart.Elapsed >= due)
                    {
                        fullDue = null;
                        var r = ApplyGateway(gateway, engine, state);
                        if (r.PeersAdded + r.PeersRemoved + r.PeersUpdated > 0)
                            log($"applied changes: {r.PeersAdded} added, {r.PeersRemoved} removed, {r.PeersUpdated} updated{(r.Kicked > 0 ? $", {r.Kicked} recent clients contacted" : "")}");
                    }
                    if (nextReport.Elapsed >= reportDue)
                    {
                        ReportGateway(location, state);
                        reportDue = nextReport.Elapsed + reportEvery;
                    }
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (UserInputException e) when (e.ExitCode == ExitCodes.Database)
                {
                    feed?.Dispose();
                    feed = null;
                    full = true;
                    log($"registry unreachable ({e.Message}); {state.Interface} keeps serving its {state.ClientIds.Count} peers; retrying in {backoff.TotalSeconds:0} s");
                    if (stop.WaitHandle.WaitOne(backoff))
                        break;
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                }
                catch (Exception e) when (e is IOException or UserInputException)
                {
                    log($"gateway {gateway}: {e.Message}");
                    full = true;
                    if (stop.WaitHandle.WaitOne(backoff))
                        break;
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                }
            }
        }
        finally
        {
            feed?.Dispose();
            FollowDown(location, state, log);
        }
    }

    /// <summary>
    /// Applies the registry to the gateway's interface, creating it when missing: its clients'
    /// peers (enabled, not expired) by per-peer diff, the link, forwarding and the access rules.
    /// </summary>
    private GatewayApplied ApplyGateway(string name, string? engine, FollowState st)
    {
        using var store = OpenStore();
        var registry = store.RequireServer();
        var g = store.FindGateway(name) ?? throw new FieldException("gateway", $"gateway: no gateway named '{UserInputException.Shown(name)}' (see 'mkb-vpn gateway list')", ExitCodes.NotFound);
        var server = g.Serve(registry);
        var members = store.LoadGatewayMemberships();
        var now = Now;
        var clients = store.ListClients().Where(c => ServedBy(c, g.Id, members)).ToList();
        var active = clients.Where(c => c.Enabled && !c.IsExpired(now)).ToList();
        if (st.Interface is { } old && old != server.Interface && Devices.Find(old) is not null)
            HostNetwork.DeleteLink(old);   // the gateway's interface was renamed
        var device = Devices.Find(server.Interface);
        bool created = false;
        if (device is null)
        {
            if (HostNetwork.LinkExists(server.Interface))
                throw new UserInputException($"a network interface named {server.Interface} exists and is not WireGuard: remove it or give the gateway another interface");
            var plane = Devices.Create(server.Interface, engine);
            device = plane.Device;
            st.Plane = new DataPlaneInfo(plane.Engine, plane.Reason);
            created = true;
            st.Interface = server.Interface;   // from here on, stopping takes it down again
            st.GatewayId = g.Id;
        }
        st.Plane ??= new DataPlaneInfo(Devices.IsKernelLink(server.Interface) ? "kernel" : "userspace", "already running");
        var live = device.Read();
        // A new interface contacts the clients this gateway saw lately at their last endpoint, so they
        // handshake at once instead of after their own retry (about 15 s): as 'up' does on one host.
        // Read only when a peer is (re)added: a change to one client does not read every report.
        var changes = Reconciler.Diff(server.PrivateKey, server.ListenPort, [.. active.Select(SpecOf)], live);
        var liveKeys = live.Peers.Select(p => p.PublicKey).ToHashSet();
        if (changes.Peers.OfType<PeerChange.Upsert>().Any(u => !liveKeys.Contains(u.PublicKey)))
        {
            var kicks = new Dictionary<WireGuardKey, string>();
            var recent = store.ListGatewayPeers(g.Id).Where(p => p.Endpoint is not null && p.LastHandshake is { } h && now - h < RecoveryWindow).ToDictionary(p => p.ClientId);
            foreach (var c in active)
                if (!liveKeys.Contains(c.PublicKey) && recent.TryGetValue(c.Id, out var p))
                    kicks[c.PublicKey] = p.Endpoint!;
            changes = Reconciler.Diff(server.PrivateKey, server.ListenPort, [.. active.Select(SpecOf)], live, kicks);
        }
        device.Apply(changes with { Peers = [.. changes.Peers.Where(p => p is not PeerChange.Kick)] });
        bool settingsChanged = st.Last is not { } last || !last.Server.SameSettings(server);
        if (created || settingsChanged)
            HostNetwork.ConfigureLink(server);
        if (created || st.ForwardingBefore is null)
        {
            string before = HostNetwork.EnableForwarding(server.Subnet6 is not null);
            st.ForwardingBefore ??= store.GetGatewayRuntime(g.Id, "forwarding_before") ?? before;
        }
        HostNetwork.InstallRules(server, Network.AccessFirewall.Build(LoadPolicy(store, server, clients)));
        var kicked = changes.Peers.OfType<PeerChange.Kick>().ToList();
        if (kicked.Count > 0)
            device.Apply(new DeviceChanges { Peers = kicked });
        using (var tx = store.BeginWrite())
        {
            if (store.GetGatewayRuntime(g.Id, "forwarding_before") is null)
                store.SetGatewayRuntime(g.Id, "forwarding_before", st.ForwardingBefore);
            store.SetGatewayRuntime(g.Id, "state", "up");
            store.SetGatewayRuntime(g.Id, "engine", st.Plane.Engine);
            store.SetGatewayRuntime(g.Id, "engine_reason", st.Plane.Reason);
            // A peer taken off keeps its last handshake and endpoint in the reports (for 'status', and to contact it when it returns).
            var byKey = clients.ToDictionary(c => c.PublicKey, c => c.Id);
            var gone = changes.Peers.OfType<PeerChange.Remove>()
                .Select(r => live.Peers.FirstOrDefault(p => p.PublicKey.Equals(r.PublicKey)))
                .Where(p => p is not null && byKey.ContainsKey(p.PublicKey))
                .Select(p => new GatewayPeerReport(g.Id, byKey[p!.PublicKey], p.LastHandshake, p.Endpoint, p.RxBytes, p.TxBytes, now))
                .ToList();
            if (gone.Count > 0)
                store.ReportPeers(g.Id, gone);
            tx.Commit();
        }
        st.Interface = server.Interface;
        st.GatewayId = g.Id;
        st.ClientIds = clients.ToDictionary(c => c.PublicKey, c => c.Id);
        st.Active = active.ToDictionary(c => c.Id, c => c.PublicKey);
        var upserts = changes.Peers.OfType<PeerChange.Upsert>().ToList();
        int added = upserts.Count(u => !liveKeys.Contains(u.PublicKey));
        var result = new GatewayApplied(g, server, st.Plane.Engine, created, active.Count, added,
            changes.Peers.OfType<PeerChange.Remove>().Count(), upserts.Count - added)
        { EngineReason = st.Plane.Reason, Kicked = kicked.Count };
        st.Last = result;
        return result;
    }

    /// <summary>
    /// Writes what the interface says (handshakes, endpoints, bytes) for 'gateway list' and 'status'
    /// on any host: when it was seen and its peer count every time, a client's row only when its
    /// state changed since the last report (an idle peer costs nothing).
    /// </summary>
    private void ReportGateway(StoreLocation location, FollowState st)
    {
        if (st.Interface is null || Devices.Find(st.Interface) is not { } device)
            return;
        var now = Now;
        var all = device.Read().Peers;
        var changed = new List<GatewayPeerReport>();
        var seen = new Dictionary<long, (DateTimeOffset?, string?, long, long)>();
        foreach (var p in all)
        {
            if (!st.ClientIds.TryGetValue(p.PublicKey, out long id))
                continue;
            var value = (p.LastHandshake, p.Endpoint, p.RxBytes, p.TxBytes);
            seen[id] = value;
            if (!st.Reported.TryGetValue(id, out var before) || before != value)
                changed.Add(new GatewayPeerReport(st.GatewayId, id, p.LastHandshake, p.Endpoint, p.RxBytes, p.TxBytes, now));
        }
        using var store = Store.Open(location, create: false);
        store.ReportGateway(st.GatewayId, now, st.Plane?.Engine ?? "unknown", changed, all.Count);
        st.Reported = seen;
    }

    /// <summary>Takes the gateway's interface down at the end of 'up --gateway': link, rules, forwarding as it was (remembered here if the registry is away).</summary>
    private void FollowDown(StoreLocation location, FollowState st, Action<string> log)
    {
        if (st.Interface is null)
            return;
        HostNetwork.DeleteLink(st.Interface);
        Devices.AwaitEngineExit(st.Interface);
        HostNetwork.RemoveRules();
        HostNetwork.RestoreForwarding(st.ForwardingBefore);
        try
        {
            using var store = Store.Open(location, create: false);
            using var tx = store.BeginWrite();
            store.SetGatewayRuntime(st.GatewayId, "forwarding_before", null);
            store.SetGatewayRuntime(st.GatewayId, "state", "down");
            tx.Commit();
        }
        catch (UserInputException e)
        {
            log($"could not record that {st.Interface} is down: {e.Message}");
        }
        log($"{st.Interface} is down");
    }
}
