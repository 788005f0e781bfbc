using MkbVpn.Devices;
using MkbVpn.Network;

namespace MkbVpn.Clients;

/// <summary>What the process may do: the root and tool checks (a seam so that unit tests run the live paths without root).</summary>
public interface IPrivileges
{
    /// <summary>Refuses with exit 4 unless the process runs as root.</summary>
    void RequireRoot(string what);

    /// <summary>Refuses with exit 7 unless the tool is installed.</summary>
    void RequireTool(string tool);
}

/// <summary>The process' real privileges (<see cref="Sys"/>).</summary>
public sealed class LivePrivileges : IPrivileges
{
    public static readonly LivePrivileges Instance = new();

    public void RequireRoot(string what) => Sys.RequireRoot(what);

    public void RequireTool(string tool) => Sys.RequireTool(tool);
}

/// <summary>The data directory's exclusive lock: every change to the store and the live interface holds it.</summary>
public interface IDataLock
{
    /// <summary>Takes the lock, waiting up to <paramref name="wait"/>; throws <see cref="LockBusyException"/> when it stays held, <see cref="UnauthorizedAccessException"/> when the lock file cannot be opened.</summary>
    IDisposable Acquire(string lockFile, TimeSpan wait);
}

/// <summary>flock(2) on the lock file (<see cref="Sys.Lock"/>), shared with every other mkb-vpn process.</summary>
public sealed class FileLock : IDataLock
{
    public static readonly FileLock Instance = new();

    public IDisposable Acquire(string lockFile, TimeSpan wait) => Sys.Lock(lockFile, wait);
}

/// <summary>
/// Everything <see cref="ClientService"/> reaches outside its data directory: the live interface,
/// the host's network and firewall, the privilege checks, the data directory's lock and the clock. The entry points (the CLI,
/// the web host) wire the real ones with <see cref="Live"/>; unit tests hand in in-memory ones.
/// </summary>
public sealed record ServiceHost(IDeviceLocator Devices, IHostNetwork Network, IPrivileges Privileges, IDataLock Lock, TimeProvider Time)
{
    /// <summary>This host: its interfaces, ip/nft, the process' privileges, flock, the system clock (or <paramref name="time"/>).</summary>
    public static ServiceHost Live(TimeProvider? time = null) =>
        new(LiveDevices.FromEnvironment(), LiveHostNetwork.Instance, LivePrivileges.Instance, FileLock.Instance, time ?? TimeProvider.System);
}
