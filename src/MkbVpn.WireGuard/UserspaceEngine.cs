using System.Net.Sockets;
using MkbVpn.WireGuard.Device;
using MkbVpn.WireGuard.Interop;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Uapi;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard;

/// <summary>
/// The public face of the userspace engine for the <c>mkb-vpn engine</c> command: a Linux TUN interface,
/// a UDP socket and the UAPI socket, configured only through the UAPI (wg(8)), like wireguard-go.
/// </summary>
public sealed class UserspaceEngine : IDisposable
{
    private readonly MkbVpn.WireGuard.Device.Device _device;
    private readonly UapiListener _listener;
    private readonly EngineLog _log;

    private UserspaceEngine(MkbVpn.WireGuard.Device.Device device, UapiListener listener, EngineLog log)
    {
        _device = device;
        _listener = listener;
        _log = log;
    }

    /// <summary>/var/run/wireguard/IFACE.sock.</summary>
    public string SocketPath => _listener.Path;

    /// <summary>Creates the interface and the sockets. Throws <see cref="IOException"/> (or <see cref="SocketException"/>) with a message for the user.</summary>
    /// <param name="cryptoLanes">Threads sharing the AEAD work of a large batch (null: one per core from 4 cores on, else 1).</param>
    /// <param name="batchScheduling">Whether the data path's threads run as SCHED_BATCH (see Device/README.md, round 7).</param>
    public static UserspaceEngine Start(string interfaceName, TextWriter? log, bool verbose = false, int? cryptoLanes = null, bool batchScheduling = true)
    {
        var engineLog = new EngineLog(log, verbose);
        var tun = LinuxTun.Create(interfaceName);
        var device = new MkbVpn.WireGuard.Device.Device(tun, port => SocketBind.Open(port), log: engineLog)
        {
            CryptoLaneCount = Math.Clamp(cryptoLanes ?? MkbVpn.WireGuard.Device.Device.DefaultCryptoLanes, 1, Protocol.Keypair.MaxLanes),
            BatchScheduling = batchScheduling,
        };
        try
        {
            device.Start();
            var listener = UapiListener.Start(device, tun.Name, log: engineLog);
            engineLog.Info("engine_ready", $"UAPI listening on {listener.Path}");
            return new UserspaceEngine(device, listener, engineLog);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>The UAPI socket path for an interface.</summary>
    public static string SocketPathFor(string interfaceName) => UapiListener.SocketPath(interfaceName);

    /// <summary>Blocks until <paramref name="stop"/> is cancelled, the interface disappears or the socket file is removed; says which.</summary>
    public string WaitForExit(CancellationToken stop)
    {
        int which = WaitHandle.WaitAny([stop.WaitHandle, _device.Stopped.WaitHandle, _listener.Removed.WaitHandle]);
        string reason = which switch
        {
            0 => "stop requested",
            1 => "the interface is gone",
            _ => "the UAPI socket was removed",
        };
        _log.Info("engine_stopping", reason);
        return reason;
    }

    /// <summary>Writes the engine's drop counters to its log (the CLI calls this on SIGUSR1; they are also logged at exit).</summary>
    public void LogCounters(string reason) => _device.LogCounters(reason);

    public void Dispose()
    {
        _listener.Dispose();
        _device.Dispose();
    }

    /// <summary>For the daemon: a new session, without a controlling terminal.</summary>
    public static void StartNewSession() => Libc.SetSid();

    /// <summary>
    /// For the daemon, once ready: no more logging, and stdin, stdout and stderr to /dev/null. (The runtime
    /// holds duplicates of the original descriptors, so the parent must give us pipes of its own, not its stdio.)
    /// </summary>
    public void DetachStdio()
    {
        _log.Detach();
        int devNull = Libc.Open("/dev/null", Libc.O_RDWR);
        if (devNull < 0)
            return;
        Libc.Dup2(devNull, 0);
        Libc.Dup2(devNull, 1);
        Libc.Dup2(devNull, 2);
        if (devNull > 2)
            Libc.Close(devNull);
    }
}
