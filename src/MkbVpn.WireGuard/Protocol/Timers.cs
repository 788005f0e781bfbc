using System.Buffers.Binary;
using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>What a peer must do now, as decided by <see cref="Timers.Tick"/>. Several may be set at once.</summary>
[Flags]
internal enum TimerActions
{
    None = 0,
    /// <summary>Send a handshake initiation (a new one, subject to the Rekey-Timeout rate limit).</summary>
    SendHandshakeInitiation = 1,
    /// <summary>Retransmit the handshake initiation (section 6.4); not rate limited.</summary>
    RetransmitHandshake = 2,
    /// <summary>Send a keepalive (an empty transport data message), section 6.5.</summary>
    SendKeepalive = 4,
    /// <summary>Rekey-Attempt-Time passed without a response: stop trying and drop queued packets (section 6.4).</summary>
    GiveUpHandshake = 8,
    /// <summary>No new session in Reject-After-Time x 3: erase all keys (section 6.3).</summary>
    ZeroKeys = 16,
}

/// <summary>
/// The per-peer timers of whitepaper section 6 as polled deadlines. The owner reports events
/// (<see cref="DataSent"/>, <see cref="HandshakeInitiated"/>, ...) and calls <see cref="Tick"/>; nothing here
/// sends or calls back. The event set and semantics follow wireguard-go's timers.go. Jitter for the
/// retransmit and new-handshake timers comes from the passed-in random source. Not thread-safe.
/// </summary>
internal sealed class Timers
{
    private readonly RandomNumberGenerator _random;
    private TimeSpan? _retransmitHandshake;
    private TimeSpan? _sendKeepalive;
    private TimeSpan? _newHandshake;
    private TimeSpan? _zeroKeys;
    private TimeSpan? _persistentKeepalive;
    private bool _needAnotherKeepalive;

    public Timers(RandomNumberGenerator random, TimeSpan persistentKeepaliveInterval = default)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(persistentKeepaliveInterval, TimeSpan.Zero);
        _random = random;
        PersistentKeepaliveInterval = persistentKeepaliveInterval;
    }

    /// <summary>Zero disables persistent keepalive (section 6.5; wg's PersistentKeepalive).</summary>
    public TimeSpan PersistentKeepaliveInterval { get; set; }

    /// <summary>Retransmissions of the current handshake so far.</summary>
    public int HandshakeAttempts { get; private set; }

    /// <summary>The earliest pending deadline, so the owner knows when to call <see cref="Tick"/> next.</summary>
    public TimeSpan? NextDeadline
    {
        get
        {
            TimeSpan? next = null;
            foreach (var d in new[] { _retransmitHandshake, _sendKeepalive, _newHandshake, _zeroKeys, _persistentKeepalive })
                if (d is { } v && (next is null || v < next))
                    next = v;
            return next;
        }
    }

    // ---- events -------------------------------------------------------------------------------

    /// <summary>A transport data message with a non-empty payload was sent.</summary>
    public void DataSent(TimeSpan now) => _newHandshake ??= now + Constants.NewHandshakeAfterSilence + Jitter();

    /// <summary>A transport data message with a non-empty payload was received.</summary>
    public void DataReceived(TimeSpan now)
    {
        if (_sendKeepalive is null)
            _sendKeepalive = now + Constants.KeepaliveTimeout;
        else
            _needAnotherKeepalive = true;
    }

    /// <summary>Any authenticated message was sent (data, keepalive, handshake): no keepalive needed.</summary>
    public void AnyAuthenticatedPacketSent() => _sendKeepalive = null;

    /// <summary>Any authenticated message was received: the peer is alive, no new handshake needed.</summary>
    public void AnyAuthenticatedPacketReceived() => _newHandshake = null;

    /// <summary>Any authenticated message was sent or received: restarts the persistent keepalive.</summary>
    public void AnyAuthenticatedPacketTraversal(TimeSpan now)
    {
        if (PersistentKeepaliveInterval > TimeSpan.Zero)
            _persistentKeepalive = now + PersistentKeepaliveInterval;
    }

    /// <summary>A handshake initiation was sent; a new one (not a retry) restarts the attempt count.</summary>
    public void HandshakeInitiated(TimeSpan now, bool isRetry)
    {
        if (!isRetry)
            HandshakeAttempts = 0;
        _retransmitHandshake = now + Constants.RekeyTimeout + Jitter();
    }

    /// <summary>A handshake completed (response consumed, or the responder's next keypair confirmed).</summary>
    public void HandshakeComplete()
    {
        _retransmitHandshake = null;
        HandshakeAttempts = 0;
    }

    /// <summary>New transport keys were derived: key erasure is pushed back (section 6.3).</summary>
    public void SessionDerived(TimeSpan now) => _zeroKeys = now + Constants.ZeroKeysAfter;

    /// <summary>Stops every timer (peer removed or interface down).</summary>
    public void Stop()
    {
        _retransmitHandshake = _sendKeepalive = _newHandshake = _zeroKeys = _persistentKeepalive = null;
        _needAnotherKeepalive = false;
        HandshakeAttempts = 0;
    }

    // ---- polling ------------------------------------------------------------------------------

    /// <summary>Returns the actions whose deadlines have passed and re-arms or clears those timers.</summary>
    public TimerActions Tick(TimeSpan now)
    {
        var actions = TimerActions.None;

        if (Expired(ref _retransmitHandshake, now))
        {
            if (HandshakeAttempts > Constants.MaxHandshakeAttempts)
            {
                actions |= TimerActions.GiveUpHandshake;
                _sendKeepalive = null;
                _zeroKeys ??= now + Constants.ZeroKeysAfter;
            }
            else
            {
                HandshakeAttempts++;
                actions |= TimerActions.RetransmitHandshake;
            }
        }

        if (Expired(ref _sendKeepalive, now))
        {
            actions |= TimerActions.SendKeepalive;
            if (_needAnotherKeepalive)
            {
                _needAnotherKeepalive = false;
                _sendKeepalive = now + Constants.KeepaliveTimeout;
            }
        }

        if (Expired(ref _newHandshake, now))
            actions |= TimerActions.SendHandshakeInitiation;

        if (Expired(ref _zeroKeys, now))
            actions |= TimerActions.ZeroKeys;

        if (Expired(ref _persistentKeepalive, now) && PersistentKeepaliveInterval > TimeSpan.Zero)
            actions |= TimerActions.SendKeepalive;

        return actions;
    }

    // ---- key freshness (section 6.2), checked on the data path ----------------------------------

    /// <summary>After sending on <paramref name="keypair"/>: should the initiator rekey (age or message count)?</summary>
    public static bool ShouldRekeyAfterSend(Keypair keypair, TimeSpan now) =>
        keypair.SendCount >= Constants.RekeyAfterMessages ||
        (keypair.IsInitiator && keypair.Age(now) >= Constants.RekeyAfterTime);

    /// <summary>After receiving on <paramref name="keypair"/>: is the initiator's keypair about to be rejected?</summary>
    public static bool ShouldRekeyAfterReceive(Keypair keypair, TimeSpan now) =>
        keypair.IsInitiator && keypair.Age(now) >= Constants.RekeyOnReceiveAfterTime;

    private static bool Expired(ref TimeSpan? deadline, TimeSpan now)
    {
        if (deadline is { } d && now >= d)
        {
            deadline = null;
            return true;
        }
        return false;
    }

    private TimeSpan Jitter()
    {
        Span<byte> b = stackalloc byte[4];
        _random.GetBytes(b);
        uint ms = BinaryPrimitives.ReadUInt32LittleEndian(b) % (uint)(Constants.MaxRekeyJitter.TotalMilliseconds + 1);
        return TimeSpan.FromMilliseconds(ms);
    }
}
