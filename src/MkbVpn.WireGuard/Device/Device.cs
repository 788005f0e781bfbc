using System.Net.Sockets;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Routing;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Device;

/// <summary>
/// The I/O shell around the sans-I/O protocol core (one WireGuard interface): a TUN device, a UDP bind
/// and the peers. Loops on dedicated threads: TUN → encrypt → UDP (<c>Device.Send.cs</c>),
/// UDP → decrypt → TUN (<c>Device.Receive.cs</c>), one handshake worker per core (<c>Device.Handshakes.cs</c>)
/// and the timers (<c>Device.Timers.cs</c>); configuration
/// (<c>Device.Peers.cs</c>) comes from the UAPI. Each loop owns its packet buffers (batches reused for
/// every read); the data path allocates nothing (handshake messages are copied into the workers' queue).
/// <para>
/// Locking: <see cref="Peer.Sync"/> serialises one peer's tunnel; <see cref="_tables"/> guards the
/// peer, index and allowed-IPs tables (hot paths read; configuration writes). A thread holding a peer's
/// lock may take the tables' read lock, never the reverse with the write lock. <see cref="ConfigLock"/>
/// serialises configuration operations (one UAPI set at a time).
/// </para>
/// </summary>
internal sealed partial class Device : IDisposable
{
    /// <summary>
    /// How many packets one read from the TUN or the socket takes at most: 128, as wireguard-go's IdealBatchSize.
    /// A TCP super packet is up to 45 segments, so a batch holds about three; with 32 (before) a super packet took
    /// two passes and each side slept and woke about twice as often (bench/engine-throughput.sh: 3.6-3.9 against
    /// 4.0-4.6 Gbit/s on 2 cores, idle CPU 15-19 % against 6-10 %; see Device/README.md).
    /// </summary>
    public const int BatchSize = 128;

    private readonly ITun _tun;
    private readonly Func<int, IUdpBind> _openBind;
    private readonly TimeProvider _time;
    private readonly RandomNumberGenerator _random;
    private readonly EngineLog _log;
    private readonly ReaderWriterLockSlim _tables = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<WireGuardKey, Peer> _peers = new();
    private readonly AllowedIps<Peer> _allowedIps = new();
    private readonly Lock _handshakeSync = new();
    private readonly HandshakeLoad _load = new();
    private readonly HandshakeRateLimiter _limiter = new();
    private readonly CancellationTokenSource _stopped = new();
    private readonly List<Thread> _threads = new();

    private StaticIdentity? _identity;
    private volatile CookieChecker? _checker;
    private volatile IUdpBind? _bind;
    private int _requestedPort;
    private uint _fwmark;
    private int _peerNumbers;
    private volatile int _mtu;
    private bool _started;
    private int _disposed;

    /// <param name="tun">The interface; the device owns it from now on.</param>
    /// <param name="openBind">Opens a UDP bind on a port (0: random); throws <see cref="SocketException"/> if it is taken.</param>
    public Device(ITun tun, Func<int, IUdpBind> openBind, TimeProvider? time = null, RandomNumberGenerator? random = null, EngineLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(tun);
        ArgumentNullException.ThrowIfNull(openBind);
        _tun = tun;
        _openBind = openBind;
        _time = time ?? TimeProvider.System;
        _random = random ?? RandomNumberGenerator.Create();
        _log = log ?? EngineLog.None;
        _indices = new SessionIndexTable(_random);
        _mtu = tun.Mtu;
    }

    // Every live session index of every peer (random, unique): responses, cookie replies and data route by it.
    private readonly SessionIndexTable _indices;

    public string Name => _tun.Name;

    public DeviceCounters Counters { get; } = new();

    /// <summary>Held by a configuration transaction (a UAPI set): the single writer of the configuration.</summary>
    public Lock ConfigLock { get; } = new();

    /// <summary>Cancelled when the device stops: disposed, or the TUN interface disappeared.</summary>
    public CancellationToken Stopped => _stopped.Token;

    /// <summary>How often the timer loop runs each peer's timers (the protocol core asks for at least every 250 ms).</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Opens the UDP port and starts the loops.</summary>
    public void Start()
    {
        lock (ConfigLock)
        {
            if (_started)
                throw new InvalidOperationException("the device is already started");
            _started = true;
            _bind = _openBind(_requestedPort);
            if (_fwmark != 0)
                _bind.SetFwmark(_fwmark);
            StartThread("wg-tun-read", RoutineReadFromTun, dataPath: true);
            StartThread("wg-udp-receive", RoutineReceiveFromNetwork, dataPath: true);
            for (int i = 0; i < HandshakeWorkers; i++)
                StartThread($"wg-handshake-{i}", RoutineHandshakes);
            StartThread("wg-timers", RoutineTimers);
            _log.Info("device_started", $"interface {Name} up, UDP port {_bind.Port}");
        }
    }

    /// <summary>
    /// Whether the data path's threads run as SCHED_BATCH (<see cref="ThreadScheduling"/>): the engine's choice
    /// (on unless MKB_VPN_ENGINE_SCHEDULER=normal); off for in-process devices.
    /// </summary>
    public bool BatchScheduling { get; init; }

    private void StartThread(string name, Action body, bool dataPath = false)
    {
        var thread = new Thread(() =>
        {
            try
            {
                if (dataPath)
                    UseBatchScheduling(name);
                body();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug, not bad input (the packet path returns results): stop the device rather than half-run.
                _log.Error("loop_failed", $"{name}: {e.GetType().Name}: {e.Message}");
                Stop();
            }
        })
        {
            Name = name,
            IsBackground = true,
        };
        _threads.Add(thread);
        thread.Start();
    }

    // Called by each data-path thread for itself; a refusal (a seccomp filter, say) is logged once and changes nothing else.
    private void UseBatchScheduling(string thread)
    {
        if (!BatchScheduling)
            return;
        int errno = ThreadScheduling.UseBatch();
        if (errno != 0 && Interlocked.Exchange(ref _schedulingRefused, 1) == 0)
            _log.Info("scheduling", $"{thread}: SCHED_BATCH refused (errno {errno}); the data path keeps the default policy");
    }

    private int _schedulingRefused;

    private TimeSpan Now() => _time.GetElapsedTime(0, _time.GetTimestamp());

    // The device stops when its interface goes away, or when disposed.
    private void Stop()
    {
        try
        {
            _stopped.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Sends one datagram to the peer's endpoint; counts it if it cannot go.</summary>
    private void SendToPeer(Peer peer, ReadOnlySpan<byte> datagram)
    {
        System.Net.SocketAddress? endpoint = peer.Endpoint;
        IUdpBind? bind = _bind;
        if (endpoint is null || bind is null)
        {
            Interlocked.Increment(ref Counters.NoEndpoint);
            return;
        }
        if (!bind.Send(datagram, endpoint))
            Interlocked.Increment(ref Counters.SendFailed);
    }

    /// <summary>
    /// Acts on one handshake-path tunnel result whose bytes are in <paramref name="buffer"/> (a message for the
    /// network, or an error). Packets for the TUN come only from transport data, which DecryptRun handles.
    /// Called with the peer's lock held.
    /// </summary>
    private void Dispatch(Peer peer, TunnelResult result, ReadOnlySpan<byte> buffer)
    {
        switch (result.Kind)
        {
            case TunnelResultKind.WriteToNetwork:
                SendToPeer(peer, buffer[..result.Length]);
                break;
            case TunnelResultKind.Error:
                Interlocked.Increment(ref Counters.PeerErrors);
                break;
        }
    }

    /// <summary>Sends what the tunnel queued while it had no session. Called with the peer's lock held.</summary>
    private void FlushQueue(Peer peer, Tunnel tunnel, Span<byte> scratch)
    {
        while (tunnel.QueuedPackets > 0)
        {
            TunnelResult r = tunnel.Flush(scratch);
            if (r.Kind == TunnelResultKind.Done)
                return;
            Dispatch(peer, r, scratch);
        }
    }

    /// <summary>Writes the drop counters to the engine log (on SIGUSR1, and when the device stops).</summary>
    public void LogCounters(string reason) =>
        _log.Info("drop_counters", $"{reason}: dropped={Counters.Dropped} {Counters}");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        LogCounters("stopping");
        Stop();
        _bind?.Dispose();
        _tun.Dispose();
        _timerWake.Set();
        foreach (Thread t in _threads)
            if (t != Thread.CurrentThread)
                t.Join(TimeSpan.FromSeconds(5));
        lock (ConfigLock)
        {
            List<Peer> peers;
            _tables.EnterWriteLock();
            try
            {
                peers = _peers.Values.ToList();
                _peers.Clear();
                _allowedIps.Clear();
            }
            finally
            {
                _tables.ExitWriteLock();
            }
            foreach (Peer peer in peers)
                Retire(peer);
            lock (_handshakeSync)
            {
                _checker?.Dispose();
                _identity?.Dispose();
                _checker = null;
                _identity = null;
            }
        }
        _timerWake.Dispose();
        _handshakes.Dispose();
    }
}
