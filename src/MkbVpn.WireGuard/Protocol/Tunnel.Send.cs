namespace MkbVpn.WireGuard.Protocol;

internal sealed partial class Tunnel
{
    /// <summary>
    /// Encrypts an IP packet for the peer into <paramref name="dst"/> (a transport data message), or, with
    /// no usable session, queues it and writes a handshake initiation if one is due. An empty packet is a keepalive.
    /// </summary>
    public TunnelResult Encapsulate(ReadOnlySpan<byte> packet, Span<byte> dst) => Encapsulate(packet, dst, Now());

    /// <summary>
    /// <see cref="Encapsulate(ReadOnlySpan{byte}, Span{byte})"/> at <paramref name="now"/> (this tunnel's <see cref="Now"/>,
    /// read once by a caller that handles a run of packets: one clock read per run, not per packet).
    /// </summary>
    public TunnelResult Encapsulate(ReadOnlySpan<byte> packet, Span<byte> dst, TimeSpan now)
    {
        Keypair? keypair = _keypairs.Current;
        if (Usable(keypair, now))
        {
            if (dst.Length < TransportData.MessageSize(packet.Length))
                return Counters.Count(TunnelResult.Failed(TunnelError.BufferTooSmall));
            return Seal(keypair!, packet, dst, now);
        }

        Enqueue(packet);
        return Counters.Count(TryInitiate(dst, now, isRetry: false));
    }

    /// <summary>
    /// <see cref="Encapsulate"/> without the AEAD: with a session, writes the header and the padded packet, takes
    /// the counter and does the bookkeeping, and leaves the encryption to the caller (who may run it on another
    /// thread, outside the peer's lock): <c>pending.Keypair.SealOnLane(lane, pending.Counter, body, tag)</c> with
    /// <see cref="PendingSeal.Body"/> and <see cref="PendingSeal.Tag"/> of <paramref name="dst"/>; if that fails the
    /// datagram must not be sent. Without a session it is <see cref="Encapsulate"/> (pending.Keypair is null).
    /// </summary>
    public TunnelResult EncapsulateUnsealed(ReadOnlySpan<byte> packet, Span<byte> dst, out PendingSeal pending) =>
        EncapsulateUnsealed(packet, dst, Now(), out pending);

    /// <summary><see cref="EncapsulateUnsealed(ReadOnlySpan{byte}, Span{byte}, out PendingSeal)"/> at <paramref name="now"/> (see <see cref="Now"/>).</summary>
    public TunnelResult EncapsulateUnsealed(ReadOnlySpan<byte> packet, Span<byte> dst, TimeSpan now, out PendingSeal pending)
    {
        pending = default;
        Keypair? keypair = _keypairs.Current;
        if (!Usable(keypair, now))
        {
            Enqueue(packet);
            return Counters.Count(TryInitiate(dst, now, isRetry: false));
        }
        if (dst.Length < TransportData.MessageSize(packet.Length))
            return Counters.Count(TunnelResult.Failed(TunnelError.BufferTooSmall));
        TunnelResult r = Frame(keypair!, packet, dst, now, out ulong counter, out int padded);
        if (r.Kind == TunnelResultKind.WriteToNetwork && Messages.Classify(dst[..r.Length]) == MessageType.TransportData)
            pending = new PendingSeal(keypair!, counter, padded);
        return r;
    }

    // Section 5.4.6: header, then the packet zero-padded to 16 bytes, encrypted in place, then the tag.
    private TunnelResult Seal(Keypair keypair, ReadOnlySpan<byte> packet, Span<byte> dst, TimeSpan now)
    {
        TunnelResult r = Frame(keypair, packet, dst, now, out ulong counter, out int padded);
        if (r.Kind == TunnelResultKind.WriteToNetwork && Messages.Classify(dst[..r.Length]) == MessageType.TransportData)
        {
            Span<byte> body = dst.Slice(TransportData.HeaderSize, padded);
            keypair.Seal(counter, body, body, dst.Slice(TransportData.HeaderSize + padded, Messages.AeadTagSize));
        }
        return r;
    }

    // Everything of a transport data message but the encryption: the counter, header, padded packet, timers.
    // Out of counters: the packet is queued and a handshake started instead (the result says so).
    private TunnelResult Frame(Keypair keypair, ReadOnlySpan<byte> packet, Span<byte> dst, TimeSpan now, out ulong counter, out int padded)
    {
        padded = 0;
        if (!keypair.TryReserveSendCounter(out counter))
        {
            Enqueue(packet);
            return TryInitiate(dst, now, isRetry: false);
        }

        padded = TransportData.PaddedLength(packet.Length, Mtu);
        int size = TransportData.HeaderSize + padded + Messages.AeadTagSize;
        Span<byte> body = dst.Slice(TransportData.HeaderSize, padded);
        packet.CopyTo(body);
        body[packet.Length..].Clear();
        TransportData.WriteHeader(dst, keypair.RemoteIndex, counter);

        _timers.AnyAuthenticatedPacketTraversal(now);
        _timers.AnyAuthenticatedPacketSent();
        if (!packet.IsEmpty)
            _timers.DataSent(now);
        if (Timers.ShouldRekeyAfterSend(keypair, now))
            _wantHandshake = true;
        Counters.SentBytes += size;
        return TunnelResult.ToNetwork(size);
    }

    // Section 6.4: a new initiation at most every Rekey-Timeout; retries come from the retransmit timer.
    private TunnelResult TryInitiate(Span<byte> dst, TimeSpan now, bool isRetry)
    {
        if (!isRetry && _lastInitiationSent is { } last && now - last < Constants.RekeyTimeout)
            return TunnelResult.Done;
        if (dst.Length < HandshakeInitiation.Size)
            return TunnelResult.Failed(TunnelError.BufferTooSmall);

        Span<byte> message = dst[..HandshakeInitiation.Size];
        HandshakeStatus status = _handshake.CreateInitiation(message, NextIndex(), _time.GetUtcNow(), _random);
        if (status != HandshakeStatus.Ok)
            return TunnelResult.Failed(TunnelError.HandshakeFailed, status);
        _cookies.AddMacs(message, now);

        _lastInitiationSent = now;
        _timers.HandshakeInitiated(now, isRetry);
        _timers.AnyAuthenticatedPacketTraversal(now);
        _timers.AnyAuthenticatedPacketSent();
        Counters.SentBytes += HandshakeInitiation.Size;
        return TunnelResult.ToNetwork(HandshakeInitiation.Size);
    }
}

/// <summary>A transport data message framed by <see cref="Tunnel.EncapsulateUnsealed"/>, waiting for its AEAD.</summary>
internal readonly record struct PendingSeal(Keypair? Keypair, ulong Counter, int PaddedLength)
{
    public Span<byte> Body(Span<byte> message) => message.Slice(TransportData.HeaderSize, PaddedLength);
    public Span<byte> Tag(Span<byte> message) => message.Slice(TransportData.HeaderSize + PaddedLength, Messages.AeadTagSize);
}
