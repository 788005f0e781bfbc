using System.Net;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Device;

internal sealed partial class Device
{
    // UDP → classify → initiation: device-level MACs, cookies, rate limit, then the peer by static key;
    // everything else: the peer by its live session index → Decapsulate (data in place) → TUN.
    private void RoutineReceiveFromNetwork()
    {
        var batch = new PacketBatch(BatchSize, withAddresses: true);
        var flushScratch = new byte[PacketBatch.BufferSize];
        var items = new ReceivedDatagram[BatchSize * 64];
        var results = new TunnelResult[items.Length];
        using var lanes = new CryptoLanes(CryptoLaneCount, "wg-decrypt", _stopped.Token, UseBatchScheduling);
        _decryptLanes = lanes;
        _openWork = OpenShare;
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
            int m = 0;
            for (int i = 0; i < count; i++)
            {
                int length = batch.Lengths[i];
                // UDP GRO: datagrams of one sender back to back; each is handled where it lies.
                int segment = batch.SegmentSizes[i] > 0 ? batch.SegmentSizes[i] : Math.Max(length, 1);
                for (int offset = 0; offset < length || (offset == 0 && length == 0); offset += segment)
                {
                    if (m == items.Length)
                    {
                        ProcessReceived(items, results, m, flushScratch);
                        m = 0;
                    }
                    items[m++] = new ReceivedDatagram(batch.Buffers[i], offset, Math.Min(segment, length - offset), batch.Addresses![i]);
                    if (length == 0)
                        break;
                }
            }
            ProcessReceived(items, results, m, flushScratch);
            Array.Clear(items, 0, m);
        }
    }

    private readonly record struct ReceivedDatagram(byte[] Buffer, int Offset, int Length, SocketAddress Source)
    {
        public ReadOnlySpan<byte> Span => Buffer.AsSpan(Offset, Length);
    }

    // Transport data is handled in runs (same receiver index, same source): one lookup and one acquisition of the
    // peer's lock per run, decryption in place, then the TUN writes outside the lock. Handshake messages one by one.
    private void ProcessReceived(ReceivedDatagram[] items, TunnelResult[] results, int count, byte[] flushScratch)
    {
        for (int k = 0; k < count;)
        {
            ReceivedDatagram item = items[k];
            ReadOnlySpan<byte> datagram = item.Span;
            MessageType type = Messages.Classify(datagram);
            if (type != MessageType.TransportData)
            {
                if (type == MessageType.None)
                    Interlocked.Increment(ref Counters.Malformed);
                else if (type != MessageType.CookieReply && _checker is { } checker &&
                         checker.Check(datagram, default, default, underLoad: false) == MacStatus.InvalidMac1)
                    Interlocked.Increment(ref Counters.InvalidMac); // junk without our public key: one MAC, never queued
                else
                    EnqueueHandshake(datagram, item.Source); // to the handshake workers (Device.Handshakes.cs)
                k++;
                continue;
            }
            uint receiver = TransportData.Receiver(datagram);
            int end = k + 1;
            while (end < count && IsDataFor(items[end], receiver, item.Source))
                end++;
            DecryptRun(items, results, k, end, receiver, flushScratch);
            k = end;
        }
    }

    private static bool IsDataFor(in ReceivedDatagram item, uint receiver, SocketAddress source)
    {
        ReadOnlySpan<byte> d = item.Span;
        return Messages.Classify(d) == MessageType.TransportData && TransportData.Receiver(d) == receiver &&
               (ReferenceEquals(item.Source, source) || item.Source.Equals(source));
    }

    private void DecryptRun(ReceivedDatagram[] items, TunnelResult[] results, int start, int end, uint receiver, byte[] flushScratch)
    {
        if (_indices.Lookup(receiver) is not Peer peer)
        {
            Interlocked.Add(ref Counters.UnknownIndex, end - start);
            return;
        }

        bool delivered = false;
        if (end - start >= CryptoLanes.MinParallel && _decryptLanes is { Lanes: > 1 } lanes)
        {
            // A long run: checked under the lock, decrypted over all lanes outside it, completed under it in order.
            Tunnel? prepared;
            lock (peer.Sync)
            {
                if (peer.Removed || peer.Tunnel is not { } t)
                    return;
                prepared = t;
                TimeSpan now = t.Now();
                for (int j = start; j < end; j++)
                {
                    ReceivedDatagram item = items[j];
                    results[j] = t.DecapsulatePrepare(item.Span, Plaintext(item), now, out _opens[j - start]);
                }
            }
            _openRun = (items, start);
            lanes.Run(end - start, _openWork!);
            _openRun = default;
            lock (peer.Sync)
            {
                if (peer.Removed || !ReferenceEquals(peer.Tunnel, prepared))
                    return;
                TimeSpan now = prepared.Now();
                for (int j = start; j < end; j++)
                {
                    ref PendingOpen open = ref _opens[j - start];
                    if (open.Keypair is not null)
                        results[j] = prepared.DecapsulateOpened(open, _opened[j - start], items[j].Span, Plaintext(items[j]), now);
                    open = default;
                }
                delivered = AfterDecrypt(peer, prepared, items, results, start, end, flushScratch);
            }
        }
        else
        {
            lock (peer.Sync)
            {
                if (peer.Removed || peer.Tunnel is not { } tunnel)
                    return;
                TimeSpan now = tunnel.Now(); // one clock read for the run
                for (int j = start; j < end; j++)
                {
                    ReceivedDatagram item = items[j];
                    // In place: the plaintext lands where the ciphertext was (never past this datagram).
                    results[j] = tunnel.Decapsulate(item.Span, Plaintext(item), default, now);
                }
                delivered = AfterDecrypt(peer, tunnel, items, results, start, end, flushScratch);
            }
        }
        if (!delivered)
            return;
        DeliverRun(peer, items, results, start, end);
    }

    private static Span<byte> Plaintext(in ReceivedDatagram item) =>
        item.Buffer.AsSpan(item.Offset + TransportData.HeaderSize, item.Length - TransportData.HeaderSize);

    // Used only by the receive loop's thread (and, during lanes.Run, by the helpers for their shares).
    private CryptoLanes? _decryptLanes;
    private readonly PendingOpen[] _opens = new PendingOpen[BatchSize * 64];
    private readonly bool[] _opened = new bool[BatchSize * 64];
    private (ReceivedDatagram[] Items, int Start) _openRun;
    private Action<int, int, int>? _openWork;

    private void OpenShare(int lane, int from, int to)
    {
        (ReceivedDatagram[] items, int start) = _openRun;
        for (int k = from; k < to; k++)
        {
            ref PendingOpen open = ref _opens[k];
            if (open.Keypair is not { } keypair)
                continue;
            ReceivedDatagram item = items[start + k];
            _opened[k] = keypair.TryOpenOnLane(lane, open.Counter, open.Ciphertext(item.Span), open.Tag(item.Span), Plaintext(item)[..open.Length]);
        }
    }

    // Under the peer's lock after a run was decrypted: counts, roaming, packets queued for a new session.
    private bool AfterDecrypt(Peer peer, Tunnel tunnel, ReceivedDatagram[] items, TunnelResult[] results, int start, int end, byte[] flushScratch)
    {
        bool authenticated = false, delivered = false;
        for (int j = start; j < end; j++)
        {
            TunnelResult r = results[j];
            if (r.Kind == TunnelResultKind.Error)
                Interlocked.Increment(ref Counters.PeerErrors);
            else
                authenticated = true;
            delivered |= r.Kind is TunnelResultKind.WriteToTunnelV4 or TunnelResultKind.WriteToTunnelV6;
        }
        // Authenticated data or keepalives: the peer is where they came from (roaming).
        if (authenticated)
            UpdateEndpoint(peer, items[start].Source);
        if (tunnel.QueuedPackets > 0)
            FlushQueue(peer, tunnel, flushScratch);
        return delivered;
    }

    private void DeliverRun(Peer peer, ReceivedDatagram[] items, TunnelResult[] results, int start, int end)
    {
        // Cryptokey routing on receive (whitepaper 2.2): the inner source must route back to this peer.
        int packets = 0;
        _tables.EnterReadLock();
        try
        {
            for (int j = start; j < end; j++)
            {
                TunnelResult r = results[j];
                if (r.Kind is not (TunnelResultKind.WriteToTunnelV4 or TunnelResultKind.WriteToTunnelV6))
                    continue;
                var packet = new TunPacket(items[j].Buffer, items[j].Offset + TransportData.HeaderSize, r.Length);
                if (!ReferenceEquals(_allowedIps.Lookup(r.InnerSource(packet.Span)), peer))
                {
                    Interlocked.Increment(ref Counters.SourceNotAllowed);
                    continue;
                }
                _tunWrites[packets++] = packet;
            }
        }
        finally
        {
            _tables.ExitReadLock();
        }
        // The TUN writes (where the system's TCP stack runs) happen outside the peer's lock, so the TUN
        // reader can encrypt the acknowledgements they cause meanwhile.
        // With TUN offloads, consecutive TCP segments of one flow are written as one.
        if (packets > 0)
        {
            int failed = _tun.Write(_tunWrites.AsSpan(0, packets));
            if (failed > 0)
                Interlocked.Add(ref Counters.TunWriteFailed, failed);
            Array.Clear(_tunWrites, 0, packets);
        }
    }

    // Used only by the receive loop's thread.
    private readonly TunPacket[] _tunWrites = new TunPacket[BatchSize * 64];

    // A handshake worker: one initiation, response or cookie reply.
    private void ReceiveHandshakeMessage(ReadOnlySpan<byte> datagram, SocketAddress source, byte[] scratch, byte[] flushScratch)
    {
        switch (Messages.Classify(datagram))
        {
            case MessageType.HandshakeInitiation:
                ReceiveInitiation(datagram, source, scratch);
                break;
            case MessageType.HandshakeResponse:
                ReceiveByIndex(HandshakeResponse.Receiver(datagram), datagram, source, scratch, flushScratch, isResponse: true);
                break;
            case MessageType.CookieReply:
                ReceiveByIndex(CookieReply.Receiver(datagram), datagram, source, scratch, flushScratch, isResponse: false);
                break;
            default:
                Interlocked.Increment(ref Counters.Malformed);
                break;
        }
    }

    /// <summary>
    /// Section 5.3 for a handshake message (initiation or response), device-wide: mac1 first (junk without our
    /// public key costs one MAC); then, if the device is under load (a backlog of handshake work, as wireguard-go),
    /// a valid mac2 (cookie) is required (else a cookie reply goes back) and the per-source rate limit applies.
    /// Returns whether the message may go on to the expensive Diffie-Hellman steps. Called by a handshake worker
    /// with <see cref="_handshakeSync"/> held.
    /// </summary>
    private bool AdmitHandshakeMessage(CookieChecker checker, ReadOnlySpan<byte> message, SocketAddress source, ReadOnlySpan<byte> sourceBytes, Span<byte> scratch)
    {
        TimeSpan now = Now();
        if (checker.Check(message, sourceBytes, now, underLoad: false) == MacStatus.InvalidMac1)
        {
            Interlocked.Increment(ref Counters.InvalidMac);
            return false;
        }
        if (!_load.Observe(_handshakes.Count, now))
            return true;
        if (checker.Check(message, sourceBytes, now, underLoad: true) == MacStatus.NeedCookie)
        {
            if (checker.TryWriteReply(scratch[..CookieReply.Size], message, sourceBytes, now))
            {
                Interlocked.Increment(ref Counters.CookiesSent);
                _bind?.Send(scratch[..CookieReply.Size], source);
            }
            return false;
        }
        // A valid mac2 proves the source address: only then is the per-source limit meaningful.
        if (!_limiter.Allow(sourceBytes[..^2], now))
        {
            Interlocked.Increment(ref Counters.RateLimited);
            return false;
        }
        return true;
    }

    private void ReceiveInitiation(ReadOnlySpan<byte> message, SocketAddress source, Span<byte> scratch)
    {
        Span<byte> sourceBytes = stackalloc byte[Endpoints.MaxSourceBytes];
        sourceBytes = sourceBytes[..Endpoints.WriteSourceBytes(source, sourceBytes)];
        StaticIdentity identity;
        lock (_handshakeSync)
        {
            if (_identity is not { } current || _checker is not { } checker)
            {
                Interlocked.Increment(ref Counters.UnknownPeer);
                return;
            }
            if (!AdmitHandshakeMessage(checker, message, source, sourceBytes, scratch))
                return;
            identity = current;
        }
        // The Diffie-Hellman steps run outside the device lock: the workers do them in parallel. (A private key
        // replaced meanwhile zeroes the old identity: the initiation then fails to open, as it should.)
        HandshakeStatus status = Handshake.OpenInitiation(identity, message, out OpenedInitiation? opened);
        if (status != HandshakeStatus.Ok || opened is null)
        {
            Interlocked.Increment(ref Counters.HandshakeFailed);
            return;
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

    // A handshake response or a cookie reply: routed by our session index to the peer that holds it.
    private void ReceiveByIndex(uint receiverIndex, ReadOnlySpan<byte> message, SocketAddress source, Span<byte> dst, Span<byte> flushScratch, bool isResponse)
    {
        if (_indices.Lookup(receiverIndex) is not Peer peer)
        {
            Interlocked.Increment(ref Counters.UnknownIndex);
            return;
        }

        Span<byte> sourceBytes = stackalloc byte[Endpoints.MaxSourceBytes];
        sourceBytes = sourceBytes[..Endpoints.WriteSourceBytes(source, sourceBytes)];
        if (isResponse)
        {
            lock (_handshakeSync)
            {
                if (_checker is not { } checker || !AdmitHandshakeMessage(checker, message, source, sourceBytes, dst))
                    return;
            }
        }

        TunnelResult r;
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return;
            r = tunnel.Decapsulate(message, dst, sourceBytes);
            switch (r.Kind)
            {
                case TunnelResultKind.Error:
                    Interlocked.Increment(ref Counters.PeerErrors);
                    return;
                case TunnelResultKind.Done when !isResponse:
                    Interlocked.Increment(ref Counters.CookiesReceived);
                    return; // a cookie reply, consumed: not an authenticated packet for roaming
            }
            // Authenticated (a handshake response): the peer is where it came from.
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
            Dispatch(peer, r, dst);
        }
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
