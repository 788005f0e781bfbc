using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Device;

internal sealed partial class Device
{
    private readonly AutoResetEvent _timerWake = new(false);

    // Runs every peer's timers (rekey, retransmit, keepalive, persistent keepalive, key zeroing) at least
    // every TickInterval; configuration changes wake it early.
    private void RoutineTimers()
    {
        var buffer = new byte[PacketBatch.BufferSize];
        var peers = new List<Peer>();
        long mtuCheckedAt = 0;
        while (!_stopped.IsCancellationRequested)
        {
            // The MTU caps the padding (section 5.4.6); `ip link set mtu` may change it at any time.
            if (_time.GetElapsedTime(mtuCheckedAt) >= TimeSpan.FromSeconds(1))
            {
                mtuCheckedAt = _time.GetTimestamp();
                _mtu = _tun.Mtu;
            }
            peers.Clear();
            _tables.EnterReadLock();
            try
            {
                peers.AddRange(_peers.Values);
            }
            finally
            {
                _tables.ExitReadLock();
            }
            foreach (Peer peer in peers)
                TickPeer(peer, buffer);
            peers.Clear();
            try
            {
                _timerWake.WaitOne(TickInterval);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    private void TickPeer(Peer peer, byte[] buffer)
    {
        lock (peer.Sync)
        {
            if (peer.Removed || peer.Tunnel is not { } tunnel)
                return;
            tunnel.Mtu = _mtu;
            // Several actions can be due at once; the bound only guards against a protocol bug looping.
            for (int i = 0; i < 16; i++)
            {
                TunnelResult r = tunnel.Tick(buffer);
                if (r.Kind == TunnelResultKind.Done)
                    break;
                if (r.Kind == TunnelResultKind.WriteToNetwork && peer.Endpoint is null)
                    continue; // nowhere to send a timer's handshake or keepalive
                Dispatch(peer, r, buffer);
            }
            FlushQueue(peer, tunnel, buffer);
        }
    }
}
