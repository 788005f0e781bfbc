using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// One peer's WireGuard session, sans I/O (after boringtun's Tunn): bytes and time in, a
/// <see cref="TunnelResult"/> and bytes in the caller's buffer out. Owns the handshake, the keypairs,
/// the timers, the cookie state and the queue of packets waiting for a session.
/// <para>
/// Usage: <see cref="Encapsulate"/> each IP packet for this peer; <see cref="Decapsulate"/> each datagram
/// routed to it; after either, call <see cref="Flush"/> until it returns Done (queued packets that a new
/// session released); call <see cref="Tick"/> until Done at <see cref="NextDeadline"/> or at least every
/// 250 ms. Destination buffers should hold the largest packet plus 32 bytes (and at least 148).
/// </para>
/// Not thread-safe: the device serialises calls per peer.
/// </summary>
internal sealed partial class Tunnel : IDisposable
{
    private readonly StaticIdentity _local;
    private readonly Handshake _handshake;
    private readonly CookieGenerator _cookies;
    private readonly CookieChecker _checker;
    private readonly bool _ownsChecker;
    private readonly Keypairs _keypairs;
    private readonly Timers _timers;
    private readonly Queue<byte[]> _queue = new();
    private readonly TimeProvider _time;
    private readonly RandomNumberGenerator _random;
    private readonly SessionIndexTable _indices;
    private readonly object _owner;
    private uint? _handshakeIndex;   // the index of a handshake in progress (not yet a keypair's)

    private TimeSpan? _lastInitiationSent;
    private TimerActions _pending;
    private bool _wantHandshake;
    private bool _sentLastMinuteHandshake;

    public Tunnel(
        StaticIdentity local,
        WireGuardKey peerPublicKey,
        WireGuardKey? presharedKey,
        TimeProvider time,
        RandomNumberGenerator random,
        CookieChecker? cookieChecker = null,
        TimeSpan persistentKeepalive = default,
        SessionIndexTable? indices = null,
        object? owner = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(peerPublicKey);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(random);
        _local = local;
        PeerPublicKey = peerPublicKey;
        _time = time;
        _random = random;
        _indices = indices ?? new SessionIndexTable(random);
        _owner = owner ?? this;
        _keypairs = new Keypairs(_indices, _owner);
        _handshake = new Handshake(local, peerPublicKey, presharedKey);
        _cookies = new CookieGenerator(peerPublicKey);
        _ownsChecker = cookieChecker is null;
        _checker = cookieChecker ?? new CookieChecker(local.PublicKey, random);
        _timers = new Timers(random, persistentKeepalive);
    }

    public WireGuardKey PeerPublicKey { get; }

    public TunnelCounters Counters { get; } = new();

    /// <summary>Wall-clock time of the last completed handshake (wg's latest-handshake), if any.</summary>
    public DateTimeOffset? LastHandshake { get; private set; }

    /// <summary>Set by the device when it receives more handshakes than it can afford: mac2 (cookies) is then required.</summary>
    public bool UnderLoad { get; set; }

    /// <summary>The interface MTU: padding stops there (section 5.4.6). 0: unknown, always pad to 16.</summary>
    public int Mtu { get; set; }

    /// <summary>
    /// A new pre-shared key (or none). The session in use continues; the key applies from the next handshake,
    /// as wireguard-go. The replay (timestamp) and flood history of the peer is kept.
    /// </summary>
    public void SetPresharedKey(WireGuardKey? presharedKey) => _handshake.SetPresharedKey(presharedKey);

    public TimeSpan PersistentKeepalive
    {
        get => _timers.PersistentKeepaliveInterval;
        set => _timers.PersistentKeepaliveInterval = value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public int QueuedPackets => _queue.Count;

    /// <summary>True when <see cref="Encapsulate"/> would encrypt at once rather than queue.</summary>
    public bool HasSession => Usable(_keypairs.Current, Now());

    /// <summary>When <see cref="Tick"/> has something to do next (now, if work is pending).</summary>
    public TimeSpan? NextDeadline => _pending != TimerActions.None || _wantHandshake ? Now() : _timers.NextDeadline;

    /// <summary>The monotonic clock of the passed-in time provider.</summary>
    public TimeSpan Now() => _time.GetElapsedTime(0, _time.GetTimestamp());

    /// <summary>Sends the next queued packet if a session allows it.</summary>
    public TunnelResult Flush(Span<byte> dst)
    {
        TimeSpan now = Now();
        Keypair? keypair = _keypairs.Current;
        if (_queue.Count == 0 || !Usable(keypair, now))
            return TunnelResult.Done;
        if (dst.Length < TransportData.MessageSize(_queue.Peek().Length))
            return Counters.Count(TunnelResult.Failed(TunnelError.BufferTooSmall));
        byte[] packet = _queue.Dequeue();
        TunnelResult result = Seal(keypair!, packet, dst, now);
        CryptographicOperations.ZeroMemory(packet);
        return result;
    }

    private static bool Usable(Keypair? keypair, TimeSpan now) =>
        keypair is not null && !keypair.IsExpired(now) && keypair.SendCount < Constants.RejectAfterMessages;

    // A fresh random session index for a new handshake (whitepaper 5.4.2); an unfinished handshake's index is freed.
    private uint NextIndex()
    {
        ReleaseHandshakeIndex();
        uint index = _indices.Allocate(_owner);
        _handshakeIndex = index;
        return index;
    }

    private void ReleaseHandshakeIndex()
    {
        if (_handshakeIndex is { } index)
            _indices.Release(index, _owner);
        _handshakeIndex = null;
    }

    // The handshake became a keypair: its index is the keypair's now (freed when the keypair is erased).
    private void HandshakeIndexTakenByKeypair() => _handshakeIndex = null;

    private void Enqueue(ReadOnlySpan<byte> packet)
    {
        if (packet.IsEmpty)
            return;
        while (_queue.Count >= Constants.MaxQueuedPackets)
            CryptographicOperations.ZeroMemory(_queue.Dequeue());
        _queue.Enqueue(packet.ToArray());
    }

    private void ClearQueue()
    {
        while (_queue.Count > 0)
            CryptographicOperations.ZeroMemory(_queue.Dequeue());
    }

    public void Dispose()
    {
        ClearQueue();
        _timers.Stop();
        ReleaseHandshakeIndex();
        _keypairs.Dispose();
        _handshake.Dispose();
        _cookies.Dispose();
        if (_ownsChecker)
            _checker.Dispose();
    }

    public override string ToString() => "Tunnel";
}
