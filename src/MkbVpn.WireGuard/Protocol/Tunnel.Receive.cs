using System.Buffers.Binary;

namespace MkbVpn.WireGuard.Protocol;

internal sealed partial class Tunnel
{
    /// <summary>
    /// Processes a datagram from the peer. <paramref name="source"/> is the sender's address as
    /// <see cref="MacLayout.SourceBytes"/> makes it (cookies are bound to it). <paramref name="dst"/> must
    /// not overlap the datagram, except exactly in place (dst = datagram[16..] for transport data).
    /// Never throws for bad input: errors come back as results and are counted.
    /// </summary>
    public TunnelResult Decapsulate(ReadOnlySpan<byte> datagram, Span<byte> dst, ReadOnlySpan<byte> source = default) =>
        Decapsulate(datagram, dst, source, Now());

    /// <summary>
    /// <see cref="Decapsulate(ReadOnlySpan{byte}, Span{byte}, ReadOnlySpan{byte})"/> at <paramref name="now"/> (this
    /// tunnel's <see cref="Now"/>, read once by a caller that handles a run of datagrams).
    /// </summary>
    public TunnelResult Decapsulate(ReadOnlySpan<byte> datagram, Span<byte> dst, ReadOnlySpan<byte> source, TimeSpan now)
    {
        TunnelResult result = Messages.Classify(datagram) switch
        {
            MessageType.HandshakeInitiation => ReceiveInitiation(datagram, dst, source, now),
            MessageType.HandshakeResponse => ReceiveResponse(datagram, dst, source, now),
            MessageType.CookieReply => _cookies.ConsumeReply(datagram, now)
                ? TunnelResult.Done
                : TunnelResult.Failed(TunnelError.InvalidCookieReply),
            MessageType.TransportData => ReceiveData(datagram, dst, now),
            _ => TunnelResult.Failed(TunnelError.Malformed),
        };
        return Counters.Count(result);
    }

    // Section 5.3: mac1 first; under load, without a valid mac2, answer with a cookie reply instead.
    private TunnelResult CheckMacs(ReadOnlySpan<byte> message, Span<byte> dst, ReadOnlySpan<byte> source, TimeSpan now, out bool proceed)
    {
        proceed = false;
        switch (_checker.Check(message, source, now, UnderLoad))
        {
            case MacStatus.InvalidMac1:
                return TunnelResult.Failed(TunnelError.InvalidMac);
            case MacStatus.NeedCookie:
                if (dst.Length < CookieReply.Size)
                    return TunnelResult.Failed(TunnelError.BufferTooSmall);
                _checker.TryWriteReply(dst[..CookieReply.Size], message, source, now);
                return TunnelResult.ToNetwork(CookieReply.Size);
            default:
                proceed = true;
                return TunnelResult.Done;
        }
    }

    private TunnelResult ReceiveInitiation(ReadOnlySpan<byte> message, Span<byte> dst, ReadOnlySpan<byte> source, TimeSpan now)
    {
        if (dst.Length < HandshakeResponse.Size || message.Overlaps(dst))
            return TunnelResult.Failed(TunnelError.BufferTooSmall);
        TunnelResult macs = CheckMacs(message, dst, source, now, out bool proceed);
        if (!proceed)
            return macs;

        HandshakeStatus status = Handshake.OpenInitiation(_local, message, out OpenedInitiation? opened);
        if (status != HandshakeStatus.Ok)
            return TunnelResult.Failed(TunnelError.HandshakeFailed, status);
        using (opened)
            return Accept(opened!, dst, now);
    }

    /// <summary>
    /// For a device that already checked the MACs (with its shared <see cref="CookieChecker"/>) and opened the
    /// initiation to find the peer by <see cref="OpenedInitiation.RemoteStatic"/>: finishes the handshake as
    /// responder and writes the response into <paramref name="dst"/>. The caller disposes <paramref name="opened"/>.
    /// </summary>
    public TunnelResult AcceptInitiation(OpenedInitiation opened, Span<byte> dst)
    {
        ArgumentNullException.ThrowIfNull(opened);
        if (dst.Length < HandshakeResponse.Size)
            return Counters.Count(TunnelResult.Failed(TunnelError.BufferTooSmall));
        return Counters.Count(Accept(opened, dst, Now()));
    }

    private TunnelResult Accept(OpenedInitiation opened, Span<byte> dst, TimeSpan now)
    {
        HandshakeStatus status = _handshake.ConsumeInitiation(opened, now);
        if (status != HandshakeStatus.Ok)
            return TunnelResult.Failed(TunnelError.HandshakeFailed, status);

        Span<byte> response = dst[..HandshakeResponse.Size];
        status = _handshake.CreateResponse(response, NextIndex(), _random);
        if (status != HandshakeStatus.Ok)
            return TunnelResult.Failed(TunnelError.HandshakeFailed, status);
        _cookies.AddMacs(response, now);
        Keypair keypair = _handshake.BeginSession(now)!;
        HandshakeIndexTakenByKeypair();
        _keypairs.Install(keypair);

        // As wireguard-go: a response counts as a sent handshake, so the responder does not race
        // with its own initiation while it waits for the initiator's first data packet.
        _lastInitiationSent = now;
        _sentLastMinuteHandshake = false;
        // The latest handshake is recorded when the initiator confirms the session (its first data), as wireguard-go.
        _timers.AnyAuthenticatedPacketReceived();
        _timers.AnyAuthenticatedPacketTraversal(now);
        _timers.SessionDerived(now);
        _timers.AnyAuthenticatedPacketSent();
        Counters.ReceivedBytes += HandshakeInitiation.Size;
        Counters.SentBytes += HandshakeResponse.Size;
        return TunnelResult.ToNetwork(HandshakeResponse.Size);
    }

    private TunnelResult ReceiveResponse(ReadOnlySpan<byte> message, Span<byte> dst, ReadOnlySpan<byte> source, TimeSpan now)
    {
        if (dst.Length < HandshakeResponse.Size || message.Overlaps(dst))
            return TunnelResult.Failed(TunnelError.BufferTooSmall);
        TunnelResult macs = CheckMacs(message, dst, source, now, out bool proceed);
        if (!proceed)
            return macs;

        HandshakeStatus status = _handshake.ConsumeResponse(message);
        if (status != HandshakeStatus.Ok)
            return TunnelResult.Failed(TunnelError.HandshakeFailed, status);
        Keypair keypair = _handshake.BeginSession(now)!;
        HandshakeIndexTakenByKeypair();
        _keypairs.Install(keypair);

        _sentLastMinuteHandshake = false;
        LastHandshake = _time.GetUtcNow();
        _timers.AnyAuthenticatedPacketReceived();
        _timers.AnyAuthenticatedPacketTraversal(now);
        _timers.SessionDerived(now);
        _timers.HandshakeComplete();
        Counters.ReceivedBytes += message.Length;

        // Confirm the session to the responder at once: the first queued packet, or a keepalive.
        if (_queue.Count > 0 && dst.Length >= TransportData.MessageSize(_queue.Peek().Length))
            return Flush(dst);
        return Seal(keypair, ReadOnlySpan<byte>.Empty, dst, now);
    }

    private TunnelResult ReceiveData(ReadOnlySpan<byte> message, Span<byte> dst, TimeSpan now)
    {
        TunnelResult r = PrepareData(message, dst, now, out PendingOpen pending);
        if (pending.Keypair is not { } keypair)
            return r;
        ReadOnlySpan<byte> encrypted = TransportData.Encrypted(message);
        bool opened = keypair.TryOpen(pending.Counter, encrypted[..pending.Length], encrypted[pending.Length..], dst[..pending.Length]);
        return CompleteData(pending, opened, message, dst, now);
    }

    /// <summary>
    /// <see cref="Decapsulate"/> of a transport data message in two steps around the AEAD, for a caller that opens
    /// it outside the peer's lock (possibly on another thread): this step finds the keypair and checks expiry,
    /// size and the replay window. With a <c>pending.Keypair</c>, the caller runs
    /// <c>TryOpenOnLane(lane, pending.Counter, ciphertext, tag, plaintext)</c> (see <see cref="PendingOpen"/>), then
    /// <see cref="DecapsulateOpened"/> under the lock again, in arrival order. Otherwise the result is final.
    /// </summary>
    public TunnelResult DecapsulatePrepare(ReadOnlySpan<byte> message, Span<byte> dst, out PendingOpen pending) =>
        DecapsulatePrepare(message, dst, Now(), out pending);

    /// <summary><see cref="DecapsulatePrepare(ReadOnlySpan{byte}, Span{byte}, out PendingOpen)"/> at <paramref name="now"/> (see <see cref="Now"/>).</summary>
    public TunnelResult DecapsulatePrepare(ReadOnlySpan<byte> message, Span<byte> dst, TimeSpan now, out PendingOpen pending)
    {
        pending = default;
        if (Messages.Classify(message) != MessageType.TransportData)
            return Counters.Count(TunnelResult.Failed(TunnelError.Malformed));
        TunnelResult r = PrepareData(message, dst, now, out pending);
        return pending.Keypair is null ? Counters.Count(r) : r;
    }

    /// <summary>The second step of <see cref="DecapsulatePrepare"/>: the replay window, timers, session confirmation, the IP check.</summary>
    public TunnelResult DecapsulateOpened(in PendingOpen pending, bool opened, ReadOnlySpan<byte> message, Span<byte> dst) =>
        DecapsulateOpened(pending, opened, message, dst, Now());

    /// <summary><see cref="DecapsulateOpened(in PendingOpen, bool, ReadOnlySpan{byte}, Span{byte})"/> at <paramref name="now"/> (see <see cref="Now"/>).</summary>
    public TunnelResult DecapsulateOpened(in PendingOpen pending, bool opened, ReadOnlySpan<byte> message, Span<byte> dst, TimeSpan now) =>
        Counters.Count(CompleteData(pending, opened, message, dst, now));

    private TunnelResult PrepareData(ReadOnlySpan<byte> message, Span<byte> dst, TimeSpan now, out PendingOpen pending)
    {
        pending = default;
        Keypair? keypair = _keypairs.Find(TransportData.Receiver(message));
        if (keypair is null)
            return TunnelResult.Failed(TunnelError.UnknownIndex);
        if (keypair.IsExpired(now))
            return TunnelResult.Failed(TunnelError.ExpiredKeypair);

        ulong counter = TransportData.Counter(message);
        ReadOnlySpan<byte> encrypted = TransportData.Encrypted(message);
        int length = encrypted.Length - Messages.AeadTagSize;
        if (dst.Length < length)
            return TunnelResult.Failed(TunnelError.BufferTooSmall);
        Span<byte> plaintext = dst[..length];
        if (encrypted.Overlaps(plaintext, out int offset) && offset != 0)
            return TunnelResult.Failed(TunnelError.BufferTooSmall);
        if (!keypair.ReceiveWindow.MightAccept(counter))
            return TunnelResult.Failed(TunnelError.Replay);
        pending = new PendingOpen(keypair, counter, length);
        return TunnelResult.Done;
    }

    private TunnelResult CompleteData(in PendingOpen pending, bool opened, ReadOnlySpan<byte> message, Span<byte> dst, TimeSpan now)
    {
        Keypair keypair = pending.Keypair!;
        Span<byte> plaintext = dst[..pending.Length];
        if (!opened)
            return TunnelResult.Failed(TunnelError.DecryptionFailed);
        if (!keypair.ReceiveWindow.TryAccept(pending.Counter))
        {
            plaintext.Clear();
            return TunnelResult.Failed(TunnelError.Replay);
        }

        if (_keypairs.ReceivedWith(keypair))
        {
            // The responder's handshake is complete once the initiator used the new keys.
            _timers.HandshakeComplete();
            LastHandshake = _time.GetUtcNow();
        }
        _timers.AnyAuthenticatedPacketReceived();
        _timers.AnyAuthenticatedPacketTraversal(now);
        if (!_sentLastMinuteHandshake && Timers.ShouldRekeyAfterReceive(keypair, now))
        {
            _sentLastMinuteHandshake = true;
            _wantHandshake = true;
        }
        Counters.ReceivedBytes += message.Length;

        if (pending.Length == 0)
            return TunnelResult.Done; // keepalive
        _timers.DataReceived(now);
        return CheckIpPacket(plaintext);
    }

    // The payload must be one IP packet; its own length field strips the padding. Whether its source address
    // belongs to this peer (cryptokey routing) is the device's check: see TunnelResult.InnerSource.
    private TunnelResult CheckIpPacket(ReadOnlySpan<byte> plaintext)
    {
        int version = plaintext[0] >> 4;
        int length;
        if (version == 4 && plaintext.Length >= 20)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(plaintext[2..]);
            if (length < 20 || length > plaintext.Length)
                return TunnelResult.Failed(TunnelError.InvalidIpPacket);
        }
        else if (version == 6 && plaintext.Length >= 40)
        {
            length = 40 + BinaryPrimitives.ReadUInt16BigEndian(plaintext[4..]);
            if (length > plaintext.Length)
                return TunnelResult.Failed(TunnelError.InvalidIpPacket);
        }
        else
        {
            return TunnelResult.Failed(TunnelError.InvalidIpPacket);
        }
        return TunnelResult.ToTunnel(version == 6, length);
    }
}

/// <summary>A transport data message checked by <see cref="Tunnel.DecapsulatePrepare"/>, waiting for its AEAD.</summary>
internal readonly record struct PendingOpen(Keypair? Keypair, ulong Counter, int Length)
{
    public ReadOnlySpan<byte> Ciphertext(ReadOnlySpan<byte> message) => TransportData.Encrypted(message)[..Length];
    public ReadOnlySpan<byte> Tag(ReadOnlySpan<byte> message) => TransportData.Encrypted(message)[Length..];
}
