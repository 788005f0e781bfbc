using System.Net;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Network;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>
/// A live WireGuard interface in memory: it applies per-peer changes the way a real one does and
/// records every change it was given. It can be told to fail the next change, before or after
/// applying it (the UAPI socket dropping mid-way).
/// </summary>
public sealed class InMemoryDevice(string name, HostEvents events) : IWireGuardDevice
{
    private readonly Dictionary<WireGuardKey, PeerState> _peers = [];

    public string Name { get; } = name;

    public WireGuardKey? PrivateKey { get; private set; }

    public int ListenPort { get; private set; }

    /// <summary>Every change applied successfully, in order.</summary>
    public List<DeviceChanges> Applied { get; } = [];

    /// <summary>Every kick sent: the peer and the endpoint it was sent to.</summary>
    public List<(WireGuardKey Key, string Endpoint)> Kicks { get; } = [];

    /// <summary>The next Apply throws without changing anything.</summary>
    public bool FailNextApply { get; set; }

    /// <summary>The next Apply changes the interface, then throws (the answer was lost).</summary>
    public bool FailNextApplyAfterApplying { get; set; }

    public IReadOnlyCollection<PeerState> Peers => _peers.Values;

    public PeerState? Peer(WireGuardKey key) => _peers.GetValueOrDefault(key);

    public InterfaceState Read() => new() { PrivateKey = PrivateKey, ListenPort = ListenPort, Peers = [.. _peers.Values] };

    public void Apply(DeviceChanges changes)
    {
        // Like the real ones: an empty change does not reach the interface.
        if (changes.IsEmpty)
            return;
        if (FailNextApply)
        {
            FailNextApply = false;
            throw new IOException($"{Name}: the engine does not answer");
        }
        if (changes.PrivateKey is { } pk)
            PrivateKey = pk;
        if (changes.ListenPort is { } port)
            ListenPort = port;
        foreach (var change in changes.Peers)
        {
            switch (change)
            {
                case PeerChange.Upsert u:
                    var old = _peers.GetValueOrDefault(u.PublicKey);
                    _peers[u.PublicKey] = new PeerState
                    {
                        PublicKey = u.PublicKey,
                        PresharedKey = u.Spec.PresharedKey,
                        AllowedIps = u.Spec.AllowedIps,
                        Endpoint = old?.Endpoint,
                        LastHandshake = old?.LastHandshake,
                    };
                    break;
                case PeerChange.Remove r:
                    _peers.Remove(r.PublicKey);
                    break;
                case PeerChange.Kick k:
                    if (_peers.TryGetValue(k.PublicKey, out var p))
                        _peers[k.PublicKey] = p with { Endpoint = k.Endpoint };
                    Kicks.Add((k.PublicKey, k.Endpoint));
                    break;
            }
        }
        Applied.Add(changes);
        events.Add(changes.Peers.Count > 0 && changes.Peers.All(p => p is PeerChange.Kick) ? "kick" : "apply");
        if (FailNextApplyAfterApplying)
        {
            FailNextApplyAfterApplying = false;
            throw new IOException($"{Name}: the engine closed the connection");
        }
    }

    /// <summary>The peer made a handshake from <paramref name="endpoint"/> at <paramref name="at"/>.</summary>
    public void Seen(WireGuardKey key, string endpoint, DateTimeOffset at) =>
        _peers[key] = _peers[key] with { Endpoint = endpoint, LastHandshake = at };

    /// <summary>The peer's byte counters now read <paramref name="rx"/> received and <paramref name="tx"/> sent.</summary>
    public void Count(WireGuardKey key, long rx, long tx) =>
        _peers[key] = _peers[key] with { RxBytes = rx, TxBytes = tx };

    /// <summary>Puts a peer on the interface behind the store's back (by hand, or left from an older state).</summary>
    public void AddStray(PeerState peer) => _peers[peer.PublicKey] = peer;
}

/// <summary>What the in-memory host did, in order ("create", "apply", "configure-link", "install-rules", "kick", ...).</summary>
public sealed class HostEvents
{
    public List<string> All { get; } = [];

    public void Add(string e) => All.Add(e);
}

/// <summary>The interfaces of an in-memory host: created by 'up', gone when the link is deleted or "lost".</summary>
public sealed class InMemoryDevices(HostEvents events) : IDeviceLocator
{
    public Dictionary<string, InMemoryDevice> Running { get; } = [];

    /// <summary>Called at every look-up (a test counts the supervisor's rounds with it).</summary>
    public Action? Finding { get; set; }

    public IWireGuardDevice? Find(string name)
    {
        Finding?.Invoke();
        return Running.GetValueOrDefault(name);
    }

    /// <summary>The next interface created fails its first change (e.g. an engine that dies right after starting).</summary>
    public bool NextCreatedFails { get; set; }

    public DataPlane Create(string name, string? engine)
    {
        var d = new InMemoryDevice(name, events) { FailNextApply = NextCreatedFails };
        NextCreatedFails = false;
        Running[name] = d;
        events.Add("create");
        return new DataPlane(d, engine ?? "in-memory", "a unit test");
    }

    public bool IsKernelLink(string name) => false;

    public void AwaitEngineExit(string name)
    {
    }

    /// <summary>The interface vanished (the engine crashed, the host rebooted).</summary>
    public void Lose(string name) => Running.Remove(name);
}

/// <summary>
/// The host's network and firewall in memory: the nftables table as the access model it was
/// last given, and every nft script (whole table or difference) it was sent.
/// </summary>
public sealed class InMemoryNetwork(InMemoryDevices devices, HostEvents events) : IHostNetwork
{
    /// <summary>The access model the table holds now; null when there is no table.</summary>
    public AccessFirewall? Table { get; private set; }

    /// <summary>Every difference sent to nft (as the real ApplyAccess would send it), in order.</summary>
    public List<string> Diffs { get; } = [];

    /// <summary>Every whole table loaded.</summary>
    public List<string> Installs { get; } = [];

    /// <summary>Links on the host that are not WireGuard (e.g. a bridge with the name we want).</summary>
    public HashSet<string> OtherLinks { get; } = [];

    public List<IPNetwork> Networks { get; } = [];

    /// <summary>The next access change is refused with this error (nft missing: a UserInputException; nft failing: an IOException, as Sys.Check throws).</summary>
    public Exception? NextAccessFailure { get; set; }

    public bool Forwarding { get; private set; }

    public bool LinkExists(string name) => devices.Running.ContainsKey(name) || OtherLinks.Contains(name);

    public void ConfigureLink(ServerSettings s) => events.Add("configure-link");

    public void DeleteLink(string name)
    {
        devices.Lose(name);
        events.Add("delete-link");
    }

    public string EnableForwarding(bool v6)
    {
        string before = Forwarding ? "1,1" : "0,0";
        Forwarding = true;
        return before;
    }

    public void RestoreForwarding(string? before) => Forwarding = before == "1,1";

    public void InstallRules(ServerSettings s, AccessFirewall access)
    {
        Installs.Add(NetworkSetup.RenderRules(s, access));
        Table = access;
        events.Add("install-rules");
    }

    /// <summary>The next difference is refused as nft refuses one for a table edited by hand: the whole table is loaded instead.</summary>
    public bool NextDiffRefused { get; set; }

    public void ApplyAccess(ServerSettings s, AccessFirewall from, AccessFirewall to, Func<AccessFirewall> whole)
    {
        if (NextAccessFailure is { } failure)
        {
            NextAccessFailure = null;
            throw failure;
        }
        string diff = AccessFirewall.Diff(from, to, NetworkSetup.TableName);
        if (diff.Length == 0)
            return;
        if (NextDiffRefused)
        {
            NextDiffRefused = false;
            InstallRules(s, whole());
            return;
        }
        Diffs.Add(diff);
        Table = to;
        events.Add("apply-access");
    }

    public void RemoveRules()
    {
        Table = null;
        events.Add("remove-rules");
    }

    public IReadOnlyList<(string Interface, IPNetwork Network, IPAddress HostAddress)> DetectBridgeNetworks() => [];

    public IReadOnlyList<IPNetwork> HostNetworks() => Networks;
}

/// <summary>Root or not, as the test says; every tool is installed.</summary>
public sealed class InMemoryPrivileges : IPrivileges
{
    public bool IsRoot { get; set; } = true;

    public void RequireRoot(string what)
    {
        if (!IsRoot)
            throw new UserInputException($"{what} needs root: run it with sudo", ExitCodes.NeedsRoot);
    }

    public void RequireTool(string tool)
    {
    }
}

/// <summary>
/// The data directory's real lock (flock on the test's own directory, no root needed), recording
/// when it is taken and released; <see cref="HeldElsewhere"/> makes it busy as if another command held it.
/// </summary>
public sealed class RecordingLock(HostEvents events) : IDataLock
{
    public bool HeldElsewhere { get; set; }

    public IDisposable Acquire(string lockFile, TimeSpan wait)
    {
        if (HeldElsewhere)
            throw new LockBusyException();
        var held = FileLock.Instance.Acquire(lockFile, wait);
        events.Add("lock");
        return new Release(held, events);
    }

    private sealed class Release(IDisposable held, HostEvents events) : IDisposable
    {
        public void Dispose()
        {
            held.Dispose();
            events.Add("unlock");
        }
    }
}

/// <summary>A whole in-memory host for a <see cref="ClientService"/>: no root, no kernel, no nft needed.</summary>
public sealed class InMemoryHost
{
    public InMemoryHost(TimeProvider time)
    {
        Devices = new InMemoryDevices(Events);
        Network = new InMemoryNetwork(Devices, Events);
        Lock = new RecordingLock(Events);
        Host = new ServiceHost(Devices, Network, Privileges, Lock, time);
    }

    public HostEvents Events { get; } = new();

    public InMemoryDevices Devices { get; }

    public InMemoryNetwork Network { get; }

    public InMemoryPrivileges Privileges { get; } = new();

    public RecordingLock Lock { get; }

    public ServiceHost Host { get; }

    /// <summary>The running interface (the test has brought it up).</summary>
    public InMemoryDevice Device => Devices.Running[Fixtures.Interface];
}
