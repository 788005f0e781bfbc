using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Device;

internal sealed partial class Device
{
    // TUN → cryptokey routing (destination address) → Encapsulate in place → UDP.
    private void RoutineReadFromTun()
    {
        var batch = new PacketBatch(BatchSize);
        var scratch = new byte[PacketBatch.BufferSize];
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
            for (int i = 0; i < count; i++)
                SendPacket(batch.Buffers[i], batch.Lengths[i], scratch);
        }
    }

    // The IP packet sits at buffer[Headroom..Headroom+length]; the transport header goes in front of it
    // and the packet is encrypted where it lies.
    private void SendPacket(byte[] buffer, int length, byte[] scratch)
    {
        ReadOnlySpan<byte> packet = buffer.AsSpan(PacketBatch.Headroom, length);
        ReadOnlySpan<byte> destination;
        if (length >= 20 && packet[0] >> 4 == 4)
            destination = packet.Slice(16, 4);
        else if (length >= 40 && packet[0] >> 4 == 6)
            destination = packet.Slice(24, 16);
        else
        {
            Interlocked.Increment(ref Counters.InvalidTunPacket);
            return;
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
            return;
        }

        TunnelResult r;
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return;
            if (peer.Endpoint is null)
            {
                // wireguard-go drops (no endpoint, nowhere to send a handshake) rather than queue.
                Interlocked.Increment(ref Counters.NoEndpoint);
                return;
            }
            r = tunnel.Encapsulate(packet, buffer);
            FlushQueue(peer, tunnel, scratch);
        }
        // The send (a system call that may run the far side's receive path) happens outside the peer's lock,
        // so the receive thread is not held up by it. The buffer is ours until the next batch.
        Dispatch(peer, r, buffer);
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
