using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Device;

internal sealed partial class Device
{
    // TUN → cryptokey routing (destination address) → Encapsulate in place → UDP.
    private void RoutineReadFromTun()
    {
        var batch = new PacketBatch(BatchSize);
        var scratch = new byte[PacketBatch.BufferSize];
        var outgoing = new OutgoingDatagram[BatchSize];
        var seals = new PendingSeal[BatchSize];
        var peers = new Peer?[BatchSize];
        using var lanes = new CryptoLanes(CryptoLaneCount, "wg-encrypt", _stopped.Token, UseBatchScheduling);
        _encryptLanes = lanes;
        // A large batch is framed under the peers' locks, then encrypted over all lanes outside them.
        Action<int, int, int> sealWork = (lane, from, to) =>
        {
            for (int i = from; i < to; i++)
            {
                if (seals[i].Keypair is not { } keypair)
                    continue;
                Span<byte> message = outgoing[i].Buffer.AsSpan(0, outgoing[i].Length);
                if (!keypair.SealOnLane(lane, seals[i].Counter, seals[i].Body(message), seals[i].Tag(message)))
                    outgoing[i].Length = 0; // the keypair was erased meanwhile: never send the plaintext
            }
        };
        while (!_stopped.IsCancellationRequested)
        {
            int count = _tun.Read(batch);
            if (count == 0)
            {
                if (_tun.IsClosed)
                {
                    if (Volatile.Read(ref _disposed) == 0)
                        _log.Info("interface_gone", $"interface {Name} was removed or closed");
                    Stop();
                    return;
                }
                continue;
            }
            // Route the whole batch under one read lock, encrypt each run of packets for one peer under one
            // acquisition of its lock, then send everything in one go (runs to one endpoint leave as one UDP
            // GSO send where the system allows).
            Route(batch, count, peers);
            bool parallel = count >= CryptoLanes.MinParallel && lanes.Lanes > 1;
            int pending = 0;
            for (int i = 0; i < count;)
            {
                Peer? peer = peers[i];
                int end = i + 1;
                while (end < count && ReferenceEquals(peers[end], peer))
                    end++;
                if (peer is not null)
                    pending = EncryptRun(peer, batch, i, end, scratch, outgoing, pending, parallel ? seals : null);
                i = end;
            }
            if (parallel && pending > 0)
            {
                lanes.Run(pending, sealWork);
                pending = RemoveUnsent(outgoing, pending);
            }
            if (pending > 0 && _bind is { } bind)
            {
                int failed = bind.SendBatch(outgoing.AsSpan(0, pending));
                if (failed > 0)
                    Interlocked.Add(ref Counters.SendFailed, failed);
            }
            Array.Clear(outgoing, 0, pending);
            Array.Clear(seals, 0, seals.Length);
            Array.Clear(peers, 0, count);
        }
    }

    // Cryptokey routing by destination address; packets that are not IP, or have no peer, get null (counted).
    private void Route(PacketBatch batch, int count, Peer?[] peers)
    {
        _tables.EnterReadLock();
        try
        {
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<byte> packet = batch.Buffers[i].AsSpan(PacketBatch.Headroom, batch.Lengths[i]);
                ReadOnlySpan<byte> destination;
                if (packet.Length >= 20 && packet[0] >> 4 == 4)
                    destination = packet.Slice(16, 4);
                else if (packet.Length >= 40 && packet[0] >> 4 == 6)
                    destination = packet.Slice(24, 16);
                else
                {
                    Interlocked.Increment(ref Counters.InvalidTunPacket);
                    peers[i] = null;
                    continue;
                }
                peers[i] = _allowedIps.Lookup(destination);
                if (peers[i] is null)
                    Interlocked.Increment(ref Counters.NoRoute);
            }
        }
        finally
        {
            _tables.ExitReadLock();
        }
    }

    // Each IP packet sits at buffer[Headroom..]; the transport header goes in front of it and the packet is
    // encrypted where it lies. Ready datagrams are appended to outgoing; returns the new count.
    // Datagrams whose encryption failed (Length 0) are dropped from the batch, counted.
    private int RemoveUnsent(OutgoingDatagram[] outgoing, int count)
    {
        int kept = 0;
        for (int i = 0; i < count; i++)
        {
            if (outgoing[i].Length > 0)
                outgoing[kept++] = outgoing[i];
            else
                Interlocked.Increment(ref Counters.PeerErrors);
        }
        return kept;
    }

    private CryptoLanes? _encryptLanes;

    /// <summary>Large batches whose AEAD work was split over the lanes (encryption, decryption): for tests and diagnostics.</summary>
    public (long Encrypted, long Decrypted) ParallelCryptoRuns => (_encryptLanes?.ParallelRuns ?? 0, _decryptLanes?.ParallelRuns ?? 0);

    /// <summary>
    /// The default number of threads that share the AEAD work of one large batch (the loop's own thread and
    /// helpers): one per core from 4 cores on. On 2 cores the data-path threads of the engine (and the system's
    /// TCP stack they feed) already keep both cores busy, and measured, splitting a batch there costs more in
    /// hand-offs than it gains (bench/engine-throughput.sh with -e, see Device/README.md).
    /// </summary>
    public static int DefaultCryptoLanes => Environment.ProcessorCount >= 4 ? Math.Min(Environment.ProcessorCount, Keypair.MaxLanes) : 1;

    /// <summary>Threads that share the AEAD work of one large batch in this device.</summary>
    public int CryptoLaneCount { get; init; } = DefaultCryptoLanes;

    // With seals: transport data is only framed here (the caller encrypts it over the lanes); without: sealed here.
    private int EncryptRun(Peer peer, PacketBatch batch, int start, int end, byte[] scratch, OutgoingDatagram[] outgoing, int pending, PendingSeal[]? seals)
    {
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return pending;
            tunnel.Mtu = _mtu;
            if (peer.Endpoint is not { } endpoint)
            {
                // wireguard-go drops (no endpoint, nowhere to send a handshake) rather than queue.
                Interlocked.Add(ref Counters.NoEndpoint, end - start);
                return pending;
            }
            TimeSpan now = tunnel.Now(); // one clock read for the run
            for (int i = start; i < end; i++)
            {
                byte[] buffer = batch.Buffers[i];
                ReadOnlySpan<byte> packet = buffer.AsSpan(PacketBatch.Headroom, batch.Lengths[i]);
                PendingSeal seal = default;
                TunnelResult r = seals is null ? tunnel.Encapsulate(packet, buffer, now) : tunnel.EncapsulateUnsealed(packet, buffer, now, out seal);
                if (r.Kind == TunnelResultKind.WriteToNetwork)
                {
                    if (seals is not null)
                        seals[pending] = seal;
                    outgoing[pending++] = new OutgoingDatagram { Buffer = buffer, Length = r.Length, Destination = endpoint };
                }
                else if (r.Kind == TunnelResultKind.Error)
                    Interlocked.Increment(ref Counters.PeerErrors);
            }
            FlushQueue(peer, tunnel, scratch);
        }
        return pending;
    }

    /// <summary>Sends a keepalive now (a handshake initiation if there is no session), as wireguard-go's SendKeepalive.</summary>
    private void SendKeepalive(Peer peer)
    {
        var buffer = new byte[HandshakeInitiation.Size];
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel || peer.Endpoint is null)
                return;
            TunnelResult r = tunnel.Encapsulate(ReadOnlySpan<byte>.Empty, buffer);
            Dispatch(peer, r, buffer);
        }
        _timerWake.Set();
    }
}
