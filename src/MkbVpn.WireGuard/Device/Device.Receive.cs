using System.Net;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Device;

internal sealed partial class Device
{
    // UDP → classify → initiation: device-level MACs, cookies, rate limit, then the peer by static key;
    // everything else: the peer by receiver index >> 8 → Decapsulate (data in place) → TUN.
    private void RoutineReceiveFromNetwork()
    {
        var batch = new PacketBatch(BatchSize, withAddresses: true);
        var scratch = new byte[PacketBatch.BufferSize];
        var flushScratch = new byte[PacketBatch.BufferSize];
        while (!_stopped.IsCancellationRequested)
        {
            IUdpBind? bind = _bind;
            if (bind is null)
                return;
            int count = bind.Receive(batch);
            if (count == 0)
            {
                // The bind was replaced (new listen port) or closed: take the current one. A bind that fails
                // without being replaced must not spin the core.
                if (ReferenceEquals(bind, _bind) && !_stopped.IsCancellationRequested)
                    _stopped.Token.WaitHandle.WaitOne(10);
                continue;
            }
            for (int i = 0; i < count; i++)
            {
                int length = batch.Lengths[i];
                int segment = batch.SegmentSizes[i];
                if (segment <= 0)
                {
                    ReceiveDatagram(batch.Buffers[i], 0, length, batch.Addresses![i], scratch, flushScratch);
                    continue;
                }
                // UDP GRO: datagrams of one sender back to back; each is decrypted where it lies.
                for (int offset = 0; offset < length; offset += segment)
                    ReceiveDatagram(batch.Buffers[i], offset, Math.Min(segment, length - offset), batch.Addresses![i], scratch, flushScratch);
            }
        }
    }

    private void ReceiveDatagram(byte[] buffer, int offset, int length, SocketAddress source, byte[] scratch, byte[] flushScratch)
    {
        ReadOnlySpan<byte> datagram = buffer.AsSpan(offset, length);
        switch (Messages.Classify(datagram))
        {
            case MessageType.HandshakeInitiation:
                ReceiveInitiation(datagram, source, scratch);
                break;
            case MessageType.HandshakeResponse:
                ReceiveByIndex(HandshakeResponse.Receiver(datagram), datagram, source, scratch, flushScratch, isData: false);
                break;
            case MessageType.CookieReply:
                ReceiveByIndex(CookieReply.Receiver(datagram), datagram, source, scratch, flushScratch, isData: false);
                break;
            case MessageType.TransportData:
                // In place: the plaintext lands where the ciphertext was (never past this datagram).
                ReceiveByIndex(TransportData.Receiver(datagram), datagram, source, buffer.AsSpan(offset + TransportData.HeaderSize, length - TransportData.HeaderSize), flushScratch, isData: true);
                break;
            default:
                Interlocked.Increment(ref Counters.Malformed);
                break;
        }
    }

    private void ReceiveInitiation(ReadOnlySpan<byte> message, SocketAddress source, Span<byte> scratch)
    {
        Span<byte> sourceBytes = stackalloc byte[Endpoints.MaxSourceBytes];
        sourceBytes = sourceBytes[..Endpoints.WriteSourceBytes(source, sourceBytes)];
        OpenedInitiation? opened;
        lock (_handshakeSync)
        {
            if (_identity is not { } identity || _checker is not { } checker)
            {
                Interlocked.Increment(ref Counters.UnknownPeer);
                return;
            }
            TimeSpan now = Now();
            bool underLoad = _load.Record(now);
            _underLoad = underLoad;
            switch (checker.Check(message, sourceBytes, now, underLoad))
            {
                case MacStatus.InvalidMac1:
                    Interlocked.Increment(ref Counters.InvalidMac);
                    return;
                case MacStatus.NeedCookie:
                    if (checker.TryWriteReply(scratch[..CookieReply.Size], message, sourceBytes, now))
                    {
                        Interlocked.Increment(ref Counters.CookiesSent);
                        _bind?.Send(scratch[..CookieReply.Size], source);
                    }
                    return;
            }
            // A valid mac2 proves the source address: only then is the per-source limit meaningful.
            if (underLoad && !_limiter.Allow(sourceBytes[..^2], now))
            {
                Interlocked.Increment(ref Counters.RateLimited);
                return;
            }
            HandshakeStatus status = Handshake.OpenInitiation(identity, message, out opened);
            if (status != HandshakeStatus.Ok || opened is null)
            {
                Interlocked.Increment(ref Counters.HandshakeFailed);
                return;
            }
        }

        using (opened)
        {
            Peer? peer;
            WireGuardKey remote = opened.RemoteStatic;
            _tables.EnterReadLock();
            try
            {
                _peers.TryGetValue(remote, out peer);
            }
            finally
            {
                _tables.ExitReadLock();
            }
            if (peer is null)
            {
                Interlocked.Increment(ref Counters.UnknownPeer);
                return;
            }
            lock (peer.Sync)
            {
                if (peer.Removed || peer.Tunnel is not { } tunnel)
                    return;
                TunnelResult r = tunnel.AcceptInitiation(opened, scratch);
                if (r.Kind != TunnelResultKind.WriteToNetwork)
                {
                    Interlocked.Increment(ref Counters.PeerErrors);
                    return;
                }
                UpdateEndpoint(peer, source);
                SendToPeer(peer, scratch[..r.Length]);
            }
        }
    }

    private void ReceiveByIndex(uint receiverIndex, ReadOnlySpan<byte> message, SocketAddress source, Span<byte> dst, Span<byte> flushScratch, bool isData)
    {
        Peer? peer;
        _tables.EnterReadLock();
        try
        {
            _byIndex.TryGetValue(receiverIndex >> 8, out peer);
        }
        finally
        {
            _tables.ExitReadLock();
        }
        if (peer is null)
        {
            Interlocked.Increment(ref Counters.UnknownIndex);
            return;
        }

        Span<byte> sourceBytes = stackalloc byte[Endpoints.MaxSourceBytes];
        if (!isData)
        {
            sourceBytes = sourceBytes[..Endpoints.WriteSourceBytes(source, sourceBytes)];
            lock (_handshakeSync)
                _underLoad = _load.Record(Now());
        }
        else
        {
            sourceBytes = default;
        }

        TunnelResult r;
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return;
            tunnel.UnderLoad = _underLoad;
            r = tunnel.Decapsulate(message, dst, sourceBytes);
            switch (r.Kind)
            {
                case TunnelResultKind.Error:
                    Interlocked.Increment(ref Counters.PeerErrors);
                    return;
                case TunnelResultKind.WriteToNetwork when dst[0] == (byte)MessageType.CookieReply:
                    // Under load our own response check wants a cookie: it goes back to the sender.
                    Interlocked.Increment(ref Counters.CookiesSent);
                    _bind?.Send(dst[..r.Length], source);
                    return;
                case TunnelResultKind.Done when !isData:
                    return; // a cookie reply, consumed: not an authenticated packet for roaming
            }
            // Authenticated (a handshake response, a keepalive or data): the peer is where it came from.
            UpdateEndpoint(peer, source);
            if (tunnel.QueuedPackets > 0)
            {
                // A new session releases what waited for it (dst still holds this message's output).
                if (r.Kind == TunnelResultKind.WriteToNetwork)
                {
                    Dispatch(peer, r, dst);
                    r = TunnelResult.Done;
                }
                FlushQueue(peer, tunnel, flushScratch);
            }
        }
        // The TUN write (where the system's TCP stack runs) happens outside the peer's lock, so the TUN
        // reader can encrypt the acknowledgements it causes meanwhile.
        Dispatch(peer, r, dst);
    }

    // Endpoint roaming (whitepaper 2.1): the most recent authenticated source wins. Allocates only on change.
    private void UpdateEndpoint(Peer peer, SocketAddress source)
    {
        if (peer.Endpoint is { } current && current.Equals(source))
            return;
        peer.Endpoint = Endpoints.Copy(source);
        if (_log.Verbose)
            _log.Debug("endpoint_changed", $"{peer} is now at {Endpoints.ToEndPoint(source)}");
    }
}
