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

    /// <summary>How often a following gateway compares its interface and firewall with the registry in full (drift check).</summary>
    public static readonly TimeSpan DriftCheckEvery = TimeSpan.FromMinutes(10);

    /// <summary>The drift check's one line when it put something back (a following gateway's and the supervisor's).</summary>
    private static string DriftLine(string iface, string source, int added, int removed, int updated) =>
        $"drift check: {iface} differed from {source} (changed on this host?): {added} peer(s) put back, {removed} removed, {updated} updated; firewall reloaded";

    /// <summary>At most this many client ids are applied one by one; a larger burst is one full reconcile.</summary>
    private const int MaxClientChanges = 256;

    /// <summary>
    /// What a burst of notifications asks for: the client ids it names and whether 'all' (rules,
    /// groups, gateways, server settings) was among them; null when it must be a full reconcile
    /// (an unknown payload, or too many clients).
    /// </summary>
    internal static (HashSet<long> Ids, bool All)? ClientIdsOf(IReadOnlyList<string> payloads)
    {
        var ids = new HashSet<long>();
        bool all = false;
        foreach (var p in payloads)
        {
            if (p == "all")
            {
                all = true;
                continue;
            }
            if (!p.StartsWith("client:", StringComparison.Ordinal) ||
                !long.TryParse(p.AsSpan("client:".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long id))
                return null;
            ids.Add(id);
            if (ids.Count > MaxClientChanges)
                return null;
        }
        return (ids, all);
    }

    /// <summary>
    /// The clients whose part of the firewall a change of rules can touch: those named by a rule that
    /// was added or removed (a group rule: the group's members; a client rule: that client). A rule for
    /// everyone touches only the shared chain "everyone". Rules are the same when their ids and
    /// meanings are (a renamed group changes neither).
    /// </summary>
    internal static (HashSet<long> Groups, HashSet<long> Clients) SubjectsOfChangedRules(IReadOnlyList<Access.AccessRule> before, IReadOnlyList<Access.AccessRule> after)
    {
        static bool Has(IReadOnlyList<Access.AccessRule> list, Access.AccessRule r) => list.Any(x => x.Id == r.Id && x.SameAs(r));
        var groups = new HashSet<long>();
        var clients = new HashSet<long>();
        foreach (var r in before.Where(r => !Has(after, r)).Concat(after.Where(r => !Has(before, r))))
        {
            if (r.Subject == Access.SubjectKind.Group)
                groups.Add(r.SubjectId!.Value);
            else if (r.Subject == Access.SubjectKind.Client)
                clients.Add(r.SubjectId!.Value);
        }
        return (groups, clients);
    }

    /// <summary>
    /// The access rules of a following gateway, per client: the part of the firewall that belongs to
    /// the changed clients (and to the members of groups whose rules changed) is rebuilt from the
    /// registry and compared with what this gateway applied last; only the difference goes to nft
    /// (map elements, the chains concerned), as 'access allow' or 'set --groups' does on one host.
    /// Returns how many clients were compared.
    /// </summary>
    private int ApplyAccessChanges(Store store, IReadOnlyCollection<long> changed, FollowState st)
    {
        if (st.Firewall is null || st.Server is not { } server)
            return 0;
        var rules = store.ListRules();
        var (groups, named) = SubjectsOfChangedRules(st.Rules, rules);
        var affected = new Dictionary<long, Client?>();
        foreach (long g in groups)
            foreach (var c in store.ClientsInGroup(g))
                affected[c.Id] = c;
        foreach (long id in changed.Concat(named))
            if (!affected.ContainsKey(id))
                affected[id] = store.FindClientById(id);
        var members = affected.Count > 64 ? store.LoadGatewayMemberships() : null;
        var served = affected.Values.OfType<Client>()
            .Where(c => members is not null ? ServedBy(c, st.GatewayId, members) : store.GatewaysOf(c.Id) is var gs && (gs.Count == 0 || gs.Contains(st.GatewayId)))
            .ToList();
        // Memberships of these clients only (a few indexed reads), or all of them in one read for a big group.
        var groupList = store.ListGroups();
        var byName = groupList.ToDictionary(g => g.Name, g => g.Id, StringComparer.Ordinal);
        var memberships = served.Count > 64 ? store.LoadMemberships()
            : served.ToDictionary(c => c.Id, c => store.GroupsOf(c.Id).Where(byName.ContainsKey).Select(n => byName[n]).ToList());
        var part = Network.AccessFirewall.Build(new Access.AccessPolicy(server, served, groupList, memberships, rules));
        var whole = st.Firewall.Replace(affected.Keys, part);
        HostNetwork.ApplyAccess(server, st.Firewall, whole, () => whole);
        st.Firewall = whole;
        st.Rules = rules;
        return affected.Count;
    }

    /// <summary>
    /// Takes the peers of clients whose expiry has passed off the interface, from what this gateway
    /// knows (no read or write of the registry: it works while the registry is away). On one host the
    /// service's sweep blocks them in the store; here the peer goes at the minute it expires.
    /// </summary>
    private List<long> ExpireFollowed(FollowState st)
    {
        var now = Now;
        var due = st.Expiries.Where(e => e.Value <= now).Select(e => e.Key).ToList();
        if (due.Count == 0 || st.Interface is null || Devices.Find(st.Interface) is not { } device)
            return [];
        var peers = new List<PeerChange>();
        foreach (long id in due)
        {
            st.Expiries.Remove(id);
            if (st.Active.Remove(id, out var key))
                peers.Add(new PeerChange.Remove(key));
        }
        if (peers.Count > 0)
            device.Apply(new DeviceChanges { Peers = peers });
        return due;
    }

    /// <summary>
    /// Waits out a retry's backoff while serving: expiries falling due meanwhile still take their
    /// clients off (the registry is not needed for that). True when stopped.
    /// </summary>
    private bool WaitServing(TimeSpan backoff, FollowState st, CancellationToken stop, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < backoff)
        {
            // At least once a second: the wall clock may jump (a suspended host, an NTP step).
            var wait = backoff - clock.Elapsed < TimeSpan.FromSeconds(1) ? backoff - clock.Elapsed : TimeSpan.FromSeconds(1);
            if (NextExpiry(st) is { } expiry && expiry - Now < wait)
                wait = expiry - Now > MinWait ? expiry - Now : MinWait;
            if (stop.WaitHandle.WaitOne(wait))
                return true;
            try
            {
                if (ExpireFollowed(st) is { Count: > 0 } expired)
                    log($"{expired.Count} client(s) expired: taken off {st.Interface}");
            }
            catch (Exception e) when (e is IOException or UserInputException)
            {
                log($"could not take expired clients off {st.Interface}: {e.Message}");
                return stop.WaitHandle.WaitOne(backoff - clock.Elapsed > TimeSpan.Zero ? backoff - clock.Elapsed : TimeSpan.Zero);
            }
        }
        return false;
    }

    /// <summary>When the next served client expires, if any.</summary>
    private static DateTimeOffset? NextExpiry(FollowState st) => st.Expiries.Count == 0 ? null : st.Expiries.Values.Min();

    /// <summary>
    /// The fast path: reads only the changed clients and sets or removes their peers (an upsert is
    /// idempotent, so no read of the interface is needed). Their access rules follow at once
    /// (<see cref="ApplyAccessChanges"/>).
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
            st.Expiries.Remove(id);
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
                if (c.ExpiresAt is { } x)
                    st.Expiries[id] = x;
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
        /// <summary>The settings the interface and its firewall were last applied with (what a change of rules is built with).</summary>
        public ServerSettings? Server;
        /// <summary>What the last report wrote per client id.</summary>
        public Dictionary<long, (DateTimeOffset?, string?, long, long)> Reported = [];
        /// <summary>The access rules as this gateway's firewall has them (the model the next change is compared with).</summary>
        public Network.AccessFirewall? Firewall;
        /// <summary>The rules that model was built from.</summary>
        public IReadOnlyList<Access.AccessRule> Rules = [];
        /// <summary>When each active client with an expiry expires (the timer that takes it off).</summary>
        public Dictionary<long, DateTimeOffset> Expiries = [];
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
    /// <param name="driftCheckEvery">How often the interface and the firewall are compared with the registry in full
    /// although no change arrived (<see cref="DriftCheckEvery"/> by default): a peer or rule changed by hand on this host
    /// is put back. The firewall table is reloaded whole (one atomic nft transaction); a line is logged only when peers
    /// had drifted.</param>
    public void Follow(string gateway, TimeSpan reportEvery, CancellationToken stop, Action<string> log, string? engine = null,
        Action<GatewayApplied>? started = null, TimeSpan? driftCheckEvery = null)
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
            var first = ApplyGateway(gateway, engine, state, reload: true);
            started?.Invoke(first);
            var backoff = TimeSpan.FromSeconds(1);
            bool full = false;
            var nextReport = Stopwatch.StartNew();
            TimeSpan reportDue = TimeSpan.Zero;
            var drift = driftCheckEvery ?? DriftCheckEvery;
            TimeSpan driftDue = drift;
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
                        // Back from a lost connection (changes made meanwhile were not delivered), or the interface was lost:
                        // everything compared, the firewall table loaded whole.
                        var r = ApplyGateway(gateway, engine, state, reload: true);
                        log($"reconciled {r.Server.Interface} with the registry: {r.Served} clients, {r.PeersAdded} added, {r.PeersRemoved} removed, {r.PeersUpdated} updated");
                        full = false;
                        backoff = TimeSpan.FromSeconds(1);
                        driftDue = nextReport.Elapsed + drift;
                    }
                    else if (nextReport.Elapsed >= driftDue)
                    {
                        // The periodic drift check: the same full comparison, quiet unless something had changed by hand.
                        var r = ApplyGateway(gateway, engine, state, reload: true);
                        if (r.PeersAdded + r.PeersRemoved + r.PeersUpdated > 0)
                            log(DriftLine(r.Server.Interface, "the registry", r.PeersAdded, r.PeersRemoved, r.PeersUpdated));
                        driftDue = nextReport.Elapsed + drift;
                    }
                    var wait = reportDue - nextReport.Elapsed;
                    if (driftDue - nextReport.Elapsed < wait)
                        wait = driftDue - nextReport.Elapsed;
                    if (NextExpiry(state) is { } expiry && expiry - Now < wait)
                        wait = expiry - Now;
                    var changes = feed.Wait(wait > MinWait ? wait : MinWait, TimeSpan.FromMilliseconds(20), stop);
                    if (changes.Count > 0)
                        ApplyFollowed(state, changes, () => SameGatewaySettings(gateway, state), () =>
                        {
                            var r = ApplyGateway(gateway, engine, state, reload: false);
                            log($"applied changes: {r.PeersAdded} added, {r.PeersRemoved} removed, {r.PeersUpdated} updated{(r.Kicked > 0 ? $", {r.Kicked} recent clients contacted" : "")}");
                        }, log);
                    if (ExpireFollowed(state) is { Count: > 0 } expired)
                        log($"{expired.Count} client(s) expired: taken off {state.Interface}");
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
                    if (WaitServing(backoff, state, stop, log))
                        break;
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                }
                catch (Exception e) when (e is IOException or UserInputException)
                {
                    log($"gateway {gateway}: {e.Message}");
                    full = true;
                    if (WaitServing(backoff, state, stop, log))
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
    /// A burst of notifications on a following gateway (or on the registry host's own interface, see
    /// <see cref="Supervise"/>): a few clients (their peers, then their part of the firewall), rules or
    /// groups ('all' with the gateway's settings unchanged, as <paramref name="sameSettings"/> says: the
    /// part of the firewall those rules concern), or else <paramref name="reconcile"/>, a reconcile of
    /// everything (settings changed, too many clients at once).
    /// </summary>
    private void ApplyFollowed(FollowState st, IReadOnlyList<string> changes, Func<bool> sameSettings, Action reconcile, Action<string> log)
    {
        if (ClientIdsOf(changes) is { } burst && st.Server is not null && (!burst.All || sameSettings()))
        {
            var (ids, all) = burst;
            var (upserted, removed) = ApplyClients(ids, st);
            using var store = OpenStore();
            int compared = ApplyAccessChanges(store, ids, st);
            if (upserted + removed > 0 || all)
                log($"applied {ids.Count} client change(s){(all ? " and the rules" : "")}: {upserted} peer(s) set, {removed} removed, access rules of {compared} client(s) compared");
            return;
        }
        reconcile();
    }

    /// <summary>Whether the gateway's settings in the registry are still those applied (then an 'all' is about rules or groups).</summary>
    private bool SameGatewaySettings(string gateway, FollowState st)
    {
        using var store = OpenStore();
        var registry = store.RequireServer();
        return store.FindGateway(gateway) is { } g && g.Id == st.GatewayId && g.Serve(registry).SameSettings(st.Server!);
    }

    /// <summary>
    /// Applies the registry to the gateway's interface, creating it when missing: its clients'
    /// peers (enabled, not expired) by per-peer diff, the link, forwarding and the access rules.
    /// </summary>
    private GatewayApplied ApplyGateway(string name, string? engine, FollowState st, bool reload)
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
        // The firewall: loaded whole when new, when the settings changed or when asked to (start, return
        // of the registry); otherwise only the difference from what this gateway applied last.
        var policy = LoadPolicy(store, server, clients);
        var firewall = Network.AccessFirewall.Build(policy);
        if (created || settingsChanged || reload || st.Firewall is null)
            HostNetwork.InstallRules(server, firewall);
        else
            HostNetwork.ApplyAccess(server, st.Firewall, firewall, () => firewall);
        st.Firewall = firewall;
        st.Rules = policy.Rules;
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
        st.Expiries = active.Where(c => c.ExpiresAt is not null).ToDictionary(c => c.Id, c => c.ExpiresAt!.Value);
        var upserts = changes.Peers.OfType<PeerChange.Upsert>().ToList();
        int added = upserts.Count(u => !liveKeys.Contains(u.PublicKey));
        var result = new GatewayApplied(g, server, st.Plane.Engine, created, active.Count, added,
            changes.Peers.OfType<PeerChange.Remove>().Count(), upserts.Count - added)
        { EngineReason = st.Plane.Reason, Kicked = kicked.Count };
        st.Last = result;
        st.Server = server;
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
