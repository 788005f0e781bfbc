namespace MkbVpn.WireGuard.Protocol;

internal sealed partial class Tunnel
{
    /// <summary>
    /// Encrypts an IP packet for the peer into <paramref name="dst"/> (a transport data message), or, with
    /// no usable session, queues it and writes a handshake initiation if one is due. An empty packet is a keepalive.
    /// </summary>
    public TunnelResult Encapsulate(ReadOnlySpan<byte> packet, Span<byte> dst)
    {
        TimeSpan now = Now();
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

    // Section 5.4.6: header, then the packet zero-padded to 16 bytes, encrypted in place, then the tag.
    private TunnelResult Seal(Keypair keypair, ReadOnlySpan<byte> packet, Span<byte> dst, TimeSpan now)
    {
        if (!keypair.TryReserveSendCounter(out ulong counter))
        {
            Enqueue(packet);
            return TryInitiate(dst, now, isRetry: false);
        }

        int padded = TransportData.PaddedLength(packet.Length, Mtu);
        int size = TransportData.HeaderSize + padded + Messages.AeadTagSize;
        Span<byte> body = dst.Slice(TransportData.HeaderSize, padded);
        packet.CopyTo(body);
        body[packet.Length..].Clear();
        TransportData.WriteHeader(dst, keypair.RemoteIndex, counter);
        keypair.Seal(counter, body, body, dst.Slice(TransportData.HeaderSize + padded, Messages.AeadTagSize));

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
