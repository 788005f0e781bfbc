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
            // Encrypt the whole batch (each packet under its peer's lock), then send it in one go:
            // runs to one endpoint leave as one UDP GSO send where the system allows.
            int pending = 0;
            for (int i = 0; i < count; i++)
            {
                if (SendPacket(batch.Buffers[i], batch.Lengths[i], scratch, out TunnelResult r, out System.Net.SocketAddress? endpoint) && endpoint is not null)
                    outgoing[pending++] = new OutgoingDatagram { Buffer = batch.Buffers[i], Length = r.Length, Destination = endpoint };
            }
            if (pending > 0 && _bind is { } bind)
            {
                int failed = bind.SendBatch(outgoing.AsSpan(0, pending));
                if (failed > 0)
                    Interlocked.Add(ref Counters.SendFailed, failed);
            }
            Array.Clear(outgoing, 0, pending);
        }
    }

    // The IP packet sits at buffer[Headroom..Headroom+length]; the transport header goes in front of it
    // and the packet is encrypted where it lies.
    // Returns true with the result and endpoint when an encrypted datagram is ready in the buffer for the batch send.
    private bool SendPacket(byte[] buffer, int length, byte[] scratch, out TunnelResult r, out System.Net.SocketAddress? endpoint)
    {
        r = TunnelResult.Done;
        endpoint = null;
        ReadOnlySpan<byte> packet = buffer.AsSpan(PacketBatch.Headroom, length);
        ReadOnlySpan<byte> destination;
        if (length >= 20 && packet[0] >> 4 == 4)
            destination = packet.Slice(16, 4);
        else if (length >= 40 && packet[0] >> 4 == 6)
            destination = packet.Slice(24, 16);
        else
        {
            Interlocked.Increment(ref Counters.InvalidTunPacket);
            return false;
        }

        Peer? peer;
        _tables.EnterReadLock();
        try
        {
            peer = _allowedIps.Lookup(destination);
        }
        finally
        {
            _tables.ExitReadLock();
        }
        if (peer is null)
        {
            Interlocked.Increment(ref Counters.NoRoute);
            return false;
        }

        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return false;
            endpoint = peer.Endpoint;
            if (endpoint is null)
            {
                // wireguard-go drops (no endpoint, nowhere to send a handshake) rather than queue.
                Interlocked.Increment(ref Counters.NoEndpoint);
                return false;
            }
            r = tunnel.Encapsulate(packet, buffer);
            FlushQueue(peer, tunnel, scratch);
        }
        if (r.Kind == TunnelResultKind.WriteToNetwork)
            return true;
        // Nothing to send (queued for a handshake already in flight) or an error to count.
        Dispatch(peer, r, buffer);
        return false;
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
