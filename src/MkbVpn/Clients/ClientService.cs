using System.Net;
using MkbVpn.Addressing;
using MkbVpn.Configs;
using MkbVpn.Devices;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>
/// The four verbs (add, remove, block, reenable) and everything around them. The CLI, the
/// scripts and later the REST API are thin layers over this class; none of them touches the
/// store or config text. Every change follows one order: validate everything, take the data
/// directory's lock, change the store in a transaction, apply the per-peer difference to the
/// live interface, commit, then write or delete the config files. A failure before the commit
/// rolls back both the store and the live interface.
/// </summary>
public sealed partial class ClientService
{
    /// <summary>A service on this host (its live interface, ip/nft, the process' privileges), on <paramref name="time"/> or the system clock.</summary>
    public ClientService(Paths paths, TimeProvider? time = null)
        : this(paths, ServiceHost.Live(time))
    {
    }

    /// <summary>A service on the given host: the entry points hand in the real one, tests in-memory ones.</summary>
    public ClientService(Paths paths, ServiceHost host)
    {
        Paths = paths;
        _host = host;
    }

    /// <summary>How recent a handshake must be for a client to count as online.</summary>
    public static readonly TimeSpan OnlineWindow = TimeSpan.FromMinutes(3);

    /// <summary>Clients seen within this window are re-contacted at their last endpoint after a restore.</summary>
    public static readonly TimeSpan RecoveryWindow = TimeSpan.FromMinutes(15);

    private readonly ServiceHost _host;

    private IDeviceLocator Devices => _host.Devices;

    private Network.IHostNetwork HostNetwork => _host.Network;

    private IPrivileges Privileges => _host.Privileges;

    public Paths Paths { get; }

    /// <summary>Who acts, for the audit log (the CLI: the user behind sudo; the web: the admin or token).</summary>
    public Audit.Actor Actor { get; init; } = Audit.Actor.FromEnvironment();

    /// <summary>The same service acting for someone else (one per web request).</summary>
    public ClientService As(Audit.Actor actor) => new(Paths, _host) { Actor = actor, LockWait = LockWait, Note = Note };

    /// <summary>How long this service's changes wait for the data directory's lock; null: <see cref="LockTimeout"/>. The web server waits briefly and answers 503.</summary>
    public TimeSpan? LockWait { get; init; }

    private DateTimeOffset Now => _host.Time.GetUtcNow();

    /// <summary>Opens the store of an initialised server.</summary>
    /// <summary>Whether 'init' already ran for this store: its SQLite file, or the PostgreSQL database it names.</summary>
    public bool IsInitialised()
    {
        if (Paths.Store is null)
            return File.Exists(Paths.Database) && new FileInfo(Paths.Database).Length > 0;
        try
        {
            using var store = OpenStore();
            return store.GetServer() is not null;
        }
        catch (UserInputException e) when (e.ExitCode == ExitCodes.NotInitialised)
        {
            return false;
        }
    }

    private Store OpenStore()
    {
        if (Paths.Store is null && (!Directory.Exists(Paths.DataDir) || !File.Exists(Paths.Database)))
        {
            Paths.RequireReadable();
            throw new UserInputException($"mkb-vpn is not initialised in {Paths.DataDir}: run 'mkb-vpn init' first", ExitCodes.NotInitialised);
        }
        return Store.Open(Paths, create: false);
    }

    /// <summary>How long a verb waits for another one to finish unless <see cref="LockWait"/> says otherwise.</summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);

    private IDisposable Lock()
    {
        if (!Directory.Exists(Paths.DataDir))
            throw new UserInputException($"mkb-vpn is not initialised in {Paths.DataDir}: run 'mkb-vpn init' first", ExitCodes.NotInitialised);
        try
        {
            var held = _host.Lock.Acquire(Paths.LockFile, LockWait ?? LockTimeout);
            // Under the lock no verb is staging files: any staged file left is from one that was killed.
            Paths.RemoveLeftovers();
            return held;
        }
        catch (UnauthorizedAccessException)
        {
            throw new UserInputException($"no permission to write in {Paths.DataDir}: run as root", ExitCodes.NeedsRoot);
        }
    }

    /// <summary>
    /// The registry server's live interface if it is up here; refuses early when we could not change it.
    /// Null, with a note, when the interface of that name on this host is another gateway's (<see cref="OtherGatewayHere"/>):
    /// a verb then changes the registry only, and that gateway, following the registry, applies what concerns it.
    /// </summary>
    private IWireGuardDevice? LiveDevice(Store store, ServerSettings server) => LiveDevice(store, server, out _);

    /// <param name="elsewhere">True when the interface of that name here is another gateway's (left untouched).</param>
    private IWireGuardDevice? LiveDevice(Store store, ServerSettings server, out bool elsewhere)
    {
        elsewhere = false;
        var device = Devices.Find(server.Interface);
        if (device is null)
            return null;
        Privileges.RequireRoot($"changing the live interface {server.Interface}");
        if (OtherGatewayHere(store, server, device) is not { } g)
            return device;
        Note?.Invoke($"{IsGatewayHere(device, g)}: not changed here; the change reaches it through 'up --gateway {g.Name}'");
        elsewhere = true;
        return null;
    }

    /// <summary>
    /// The gateway whose interface runs here under the registry server's interface name (its host runs
    /// 'up --foreground --gateway NAME', with an interface named wg0 by default, as the registry server's): the
    /// gateway of this registry, other than the server's own, whose private key it holds. Null when it holds the
    /// server's key, no key, or a key of no gateway (a leftover of an earlier 'init' or a restore: 'up' takes such
    /// an interface over, as it always did), or cannot be read (the live step then fails as it always did).
    /// One read of the key (<see cref="IWireGuardDevice.ReadPrivateKey"/>) and, only when it is not the server's,
    /// of the gateways.
    /// </summary>
    private static Gateways.Gateway? OtherGatewayHere(Store store, ServerSettings server, IWireGuardDevice device)
    {
        WireGuardKey? key;
        try
        {
            key = device.ReadPrivateKey();
        }
        catch (IOException)
        {
            return null;
        }
        return OtherGatewayWith(store, server, key);
    }

    private static Gateways.Gateway? OtherGatewayWith(Store store, ServerSettings server, WireGuardKey? key) =>
        key is null || key.Equals(server.PrivateKey) ? null : store.ListGateways().FirstOrDefault(g => g.PrivateKey.Equals(key));

    private static string IsGatewayHere(IWireGuardDevice device, Gateways.Gateway g) =>
        $"the interface {device.Name} here is gateway '{g.Name}', not this registry's server";

    /// <summary>
    /// One line for the person at the command line (the CLI writes it to stderr): e.g. that the interface of
    /// the registry server's name on this host is another gateway's, so a change skipped its live step.
    /// </summary>
    public Action<string>? Note { get; init; }

    // ---- read side --------------------------------------------------------

    public ServerSettings GetServer()
    {
        using var store = OpenStore();
        return store.RequireServer();
    }

    /// <summary>Every client with its groups; <paramref name="group"/> keeps only that group's members.</summary>
    public IReadOnlyList<Client> List(string? group = null) => List(group, damaged: null);

    /// <param name="damaged">When given, rows that do not parse are described here and the other clients listed;
    /// when null, such a row fails the whole list (exit 8).</param>
    public IReadOnlyList<Client> List(string? group, List<string>? damaged)
    {
        using var store = OpenStore();
        store.RequireServer();
        var groups = store.ListGroups().ToDictionary(g => g.Id, g => g.Name);
        if (group is not null && !groups.Values.Any(g => string.Equals(g, group, StringComparison.OrdinalIgnoreCase)))
            throw new FieldException("group", $"group: no group named '{group}'", ExitCodes.NotFound);
        var memberships = store.LoadMemberships();
        var list = (damaged is null ? store.ListClients() : store.ListClients(damaged)).Select(c => c with
        {
            Groups = memberships.TryGetValue(c.Id, out var ids) ? [.. ids.Select(i => groups[i]).Order(StringComparer.OrdinalIgnoreCase)] : [],
        });
        if (group is not null)
            list = list.Where(c => c.Groups.Contains(group, StringComparer.OrdinalIgnoreCase));
        return [.. list];
    }

    public (ServerSettings Server, Client Client) Get(string name)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var c = store.RequireClient(name);
        return (server, c with { Groups = store.GroupsOf(c.Id) });
    }

    /// <summary>The config for a QR code: refused for a client imported without its private key (the code could not work).</summary>
    public string QrConfigText(string name)
    {
        var (_, c) = Get(name);
        if (c.PrivateKey is null)
            throw new UserInputException($"no QR code for '{c.Name}': it was {ClientConfig.PublicKeyOnlyNote}");
        string text = ConfigText(name);
        if (!QrCodes.Fits(text))
            throw new UserInputException($"no QR code for '{c.Name}': its config is {QrCodes.ByteCount(text)} bytes, more than a QR code holds ({QrCodes.MaxBytes}); use the config file");
        return text;
    }

    /// <summary>The client's default config: for its home gateway (<see cref="ConfigHomes"/>), the text of its config file.</summary>
    public string ConfigText(string name)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var client = store.RequireClient(name);
        return ConfigHomes.Load(store, server, [client]).Render(LoadPolicy(store, server, [client]), client);
    }

    public sealed record ClientStatus(Client Client, PeerState? Live, bool Online)
    {
        /// <summary>
        /// <see cref="Status"/> of the local interface: the gateways that serve the client when this interface (the
        /// registry's own gateway) does not, by name; null when it does (or when not asked).
        /// </summary>
        public IReadOnlyList<string>? Elsewhere { get; init; }
    }

    /// <param name="Drops">The built-in engine's drop counters by reason ("dropped" is the total); null for other data planes.</param>
    /// <param name="Damaged">Client rows that do not parse, left out of <paramref name="Clients"/> (one line each).</param>
    public sealed record StatusReport(ServerSettings Server, bool InterfaceUp, IReadOnlyList<ClientStatus> Clients, IReadOnlyDictionary<string, long>? Drops = null,
        IReadOnlyList<string>? Damaged = null)
    {
        /// <summary>
        /// The interface of the server's name here is another gateway's (a gateway's host): one line saying so;
        /// <see cref="InterfaceUp"/> is false and no client has live figures.
        /// </summary>
        public string? OtherGatewayHere { get; init; }
    }

    /// <summary>The live view: every client with what the interface says of it. Records endpoints for recovery unless <paramref name="recordEndpoints"/> is false (a read that must not write: /metrics).</summary>
    public StatusReport Status(bool recordEndpoints = true)
    {
        using var store = OpenStore();
        return Status(store, recordEndpoints);
    }

    private StatusReport Status(Store store, bool recordEndpoints)
    {
        var server = store.RequireServer();
        var device = Devices.Find(server.Interface);
        InterfaceState? state = null;
        if (device is not null)
            Privileges.RequireRoot("reading the live interface");
        // The interface (10,000 peers: about 3 MB of UAPI text) is read while the store lists the clients.
        var reading = device is null ? null : Task.Run(device.Read);
        var damaged = new List<string>();
        var clients = store.ListClients(damaged);
        string? hint = null;
        if (reading is not null)
        {
            state = reading.GetAwaiter().GetResult();
            // Another gateway's interface of the same name (a gateway's host): none of its figures are the server's.
            if (OtherGatewayWith(store, server, state.PrivateKey) is { } other)
            {
                hint = $"{IsGatewayHere(device!, other)}: no live figures of the server here; this gateway's are 'mkb-vpn status --gateway {other.Name}'";
                (state, device) = (null, null);
            }
            else if (recordEndpoints)
                store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
        }
        var live = state?.Peers.ToDictionary(p => p.PublicKey) ?? [];
        var now = Now;
        // A client only other gateways serve is no peer here: it is shown as theirs, not as offline here.
        var here = OwnGateway.Load(store, server);
        var gateways = store.ListGateways();
        var list = clients.Select(c =>
        {
            live.TryGetValue(c.PublicKey, out var p);
            bool online = p?.LastHandshake is { } hs && now - hs < OnlineWindow;
            var ids = here.Serves(c) ? null : here.GatewaysOf(c);
            return new ClientStatus(c, p, online) { Elsewhere = ids is null ? null : [.. gateways.Where(g => ids.Contains(g.Id)).Select(g => g.Name)] };
        }).ToList();
        return new StatusReport(server, device is not null, list, (device as UapiDevice)?.ReadDropCounters(), damaged) { OtherGatewayHere = hint };
    }

    /// <summary>
    /// <see cref="Status"/> for the web server's /metrics, which never writes: on a registry whose gateways report,
    /// online, endpoints and traffic as they report them (as the page and the API count them; a web server need not
    /// run beside an interface); otherwise exactly <see cref="Status"/> of the local interface.
    /// </summary>
    public StatusReport ViewStatus()
    {
        using var store = OpenStore();
        if (!store.ListGateways().Any(g => g.LastSeen is not null))
            return Status(store, recordEndpoints: false);
        var server = store.RequireServer();
        var (up, live) = ReadLiveOrReports(store, server);
        var damaged = new List<string>();
        var now = Now;
        var list = store.ListClients(damaged).Select(c => LiveStatus(c, live, now)).ToList();
        return new StatusReport(server, up, list, null, damaged);
    }

    /// <summary>A client with what the live interface or the gateways' reports say of it: online while enabled with a handshake within <see cref="OnlineWindow"/>.</summary>
    private static ClientStatus LiveStatus(Client c, Dictionary<WireGuard.Protocol.WireGuardKey, PeerState> live, DateTimeOffset now)
    {
        live.TryGetValue(c.PublicKey, out var p);
        return new ClientStatus(c, p, c.Enabled && p?.LastHandshake is { } hs && now - hs < OnlineWindow);
    }

    /// <summary>Copies endpoints and handshakes from the live interface into the store (for recovery after a loss).</summary>
    public int Snapshot()
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = Devices.Find(server.Interface);
        if (device is null)
            return -1;
        var state = device.Read();
        return store.RecordLive(state.Peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
    }

    // ---- helpers shared by the verbs --------------------------------------

    internal static PeerSpec SpecOf(Client c) => new(c.PublicKey, c.PresharedKey, [.. c.TunnelAddresses()]);

    /// <summary>
    /// Runs a change; when it fails while applying (the live interface or the firewall refused, the
    /// database failed), the attempt is recorded in the audit log with its outcome, in a transaction
    /// of its own since the change itself was rolled back. Refused input changes nothing and is not
    /// logged.
    /// </summary>
    private T Audited<T>(string action, string? target, string? client, Func<T> change)
    {
        try
        {
            return change();
        }
        catch (UserInputException e) when (e.ExitCode is ExitCodes.Failure or ExitCodes.Database && e is not LockBusyException)
        {
            try
            {
                using var store = OpenStore();
                using var tx = store.BeginWrite();
                store.AppendAudit(Now, Actor, action, target, client, null, $"failed: {e.Message}");
                tx.Commit();
            }
            catch (UserInputException)
            {
                // The database itself is what failed: nothing more can be recorded.
            }
            throw;
        }
    }

    /// <summary>
    /// Applies live (peers, then the firewall's access rules when <paramref name="access"/> is given),
    /// then commits: both applied, or neither. A live step that fails undoes what was applied and
    /// leaves the store unchanged; a commit that fails undoes both live changes.
    /// </summary>
    private void ApplyThenCommit(IWireGuardDevice? device, DeviceChanges change, DeviceChanges undo, Store.WriteTransaction tx,
        (ServerSettings Server, Access.AccessPolicy Before, Access.AccessPolicy After)? access = null)
    {
        Network.AccessFirewall? from = null, to = null;
        if (device is not null && !change.IsEmpty)
        {
            try
            {
                device.Apply(change);
            }
            catch (Exception e) when (e is IOException or UserInputException)
            {
                TryApply(device, undo);
                throw new UserInputException($"could not apply to the live interface {device.Name}: {e.Message}; the store is unchanged (run 'mkb-vpn up' to reconcile the interface)", ExitCodes.Failure);
            }
        }
        if (device is not null && access is { } a)
        {
            (from, to) = (Network.AccessFirewall.Build(a.Before), Network.AccessFirewall.Build(a.After));
            try
            {
                // Before and after hold only the clients this change concerns (of those this interface serves); a table
                // that refuses the difference is reloaded with everyone it serves (the store as this transaction sees it).
                HostNetwork.ApplyAccess(a.Server, from, to, () => Network.AccessFirewall.Build(LoadOwnPolicy(tx.Store, a.Server)));
            }
            catch (Exception e) when (e is IOException or UserInputException)
            {
                // nft missing (UserInputException) or refusing even the whole table (IOException).
                TryApply(device, undo);
                throw new UserInputException($"could not apply the access rules to the firewall: {e.Message}; the store is unchanged", ExitCodes.Failure);
            }
        }
        try
        {
            tx.Commit();
        }
        catch
        {
            if (device is not null)
                TryApply(device, undo);
            if (access is { } a2 && from is not null && to is not null)
            {
                try
                {
                    HostNetwork.ApplyAccess(a2.Server, to, from, () => Network.AccessFirewall.Build(LoadOwnPolicy(tx.Store, a2.Server)));
                }
                catch (Exception e) when (e is IOException or UserInputException)
                {
                    // 'mkb-vpn up' reloads the table from the store.
                }
            }
            throw;
        }
    }

    private static void TryApply(IWireGuardDevice device, DeviceChanges change)
    {
        try
        {
            device.Apply(change);
        }
        catch (Exception e) when (e is IOException or UserInputException)
        {
            // The interface is unreachable; 'mkb-vpn up' reconciles it with the store.
        }
    }

    /// <summary>Writes a config file atomically (temp file, 0600, rename).</summary>
    private void WriteConfigText(string name, string text) =>
        File.Move(StageConfig(name, text), Paths.ClientConfig(name), overwrite: true);

    /// <summary>Writes a client's config next to its final place (owner-only) and returns the temporary path.</summary>
    private string StageConfig(string name, string text)
    {
        string tmp = Paths.ClientConfig(name) + ".tmp";
        if (!Directory.Exists(Paths.ClientsDir))
            Directory.CreateDirectory(Paths.ClientsDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using (var fs = new FileStream(tmp, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var w = new StreamWriter(fs))
        {
            w.Write(text);
        }
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return tmp;
    }

    private void DeleteConfig(string name)
    {
        string path = Paths.ClientConfig(name);
        if (File.Exists(path))
            File.Delete(path);
    }
}
