using System.Net;
using System.Net.Sockets;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Device;

/// <summary>Configuration, as the UAPI set operation applies it (callers hold <see cref="ConfigLock"/> for a transaction).</summary>
internal sealed partial class Device
{
    public WireGuardKey? PrivateKey { get; private set; }

    public WireGuardKey? PublicKey { get; private set; }

    /// <summary>The bound UDP port (the one the system chose when 0 was asked for); before Start, the requested one.</summary>
    public int ListenPort => _bind?.Port ?? _requestedPort;

    public uint Fwmark => _fwmark;

    public int PeerCount
    {
        get
        {
            _tables.EnterReadLock();
            try
            {
                return _peers.Count;
            }
            finally
            {
                _tables.ExitReadLock();
            }
        }
    }

    /// <summary>Sets (or, with null or an all-zero key, clears) the interface's private key. Every peer's session restarts.</summary>
    public void SetPrivateKey(WireGuardKey? key)
    {
        lock (ConfigLock)
        {
            if (key is not null && key.IsZero)
                key = null;
            if (key is null ? PrivateKey is null : key.Equals(PrivateKey))
                return; // unchanged (wg setconf sends it every time): keep the sessions
            WireGuardKey? publicKey = key is null ? null : WireGuardKeys.PublicKeyOf(key);

            // As wireguard-go: a peer with our own public key cannot exist.
            if (publicKey is not null && FindPeer(publicKey) is { } self)
                RemovePeer(self);

            StaticIdentity? oldIdentity;
            CookieChecker? oldChecker;
            lock (_handshakeSync)
            {
                oldIdentity = _identity;
                oldChecker = _checker;
                _identity = key is null ? null : new StaticIdentity(key);
                _checker = _identity is null ? null : new CookieChecker(_identity.PublicKey, _random);
                PrivateKey = key;
                PublicKey = publicKey;
            }
            foreach (Peer peer in AllPeers())
                RebuildTunnel(peer);
            oldChecker?.Dispose();
            oldIdentity?.Dispose();
        }
    }

    /// <summary>Moves to another UDP port (0: random). Throws <see cref="SocketException"/> if it is in use.</summary>
    public void SetListenPort(int port)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        lock (ConfigLock)
        {
            _requestedPort = port;
            if (_bind is not { } old || (port != 0 && old.Port == port))
                return;
            IUdpBind bind = _openBind(port);
            if (_fwmark != 0)
                bind.SetFwmark(_fwmark);
            foreach (Peer peer in AllPeers())
            {
                lock (peer.Sync)
                {
                    if (peer.Endpoint is { } raw && Endpoints.ToEndPoint(raw) is { } ep)
                        peer.Endpoint = bind.ToSocketAddress(ep);
                }
            }
            _bind = bind;
            old.Dispose();
            _log.Info("listen_port", $"UDP port {bind.Port}");
        }
    }

    public void SetFwmark(uint mark)
    {
        lock (ConfigLock)
        {
            if (mark == _fwmark)
                return; // as wireguard-go: an unchanged mark touches nothing (wg setconf sends fwmark=0)
            _bind?.SetFwmark(mark);
            _fwmark = mark;
        }
    }

    public Peer? FindPeer(WireGuardKey publicKey)
    {
        _tables.EnterReadLock();
        try
        {
            return _peers.GetValueOrDefault(publicKey);
        }
        finally
        {
            _tables.ExitReadLock();
        }
    }

    /// <summary>The peer with this public key, created (without endpoint or allowed IPs) if new.</summary>
    public Peer AddPeer(WireGuardKey publicKey, out bool created)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        lock (ConfigLock)
        {
            created = false;
            if (FindPeer(publicKey) is { } existing)
                return existing;
            Peer peer;
            _tables.EnterWriteLock();
            try
            {
                peer = new Peer(publicKey, ++_peerNumbers);
                _peers.Add(publicKey, peer);
            }
            finally
            {
                _tables.ExitWriteLock();
            }
            RebuildTunnel(peer);
            created = true;
            _log.Info("peer_added", $"{peer} added");
            return peer;
        }
    }

    public void RemovePeer(Peer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        lock (ConfigLock)
        {
            _tables.EnterWriteLock();
            try
            {
                if (!_peers.Remove(peer.PublicKey))
                    return;
                _allowedIps.RemoveByPeer(peer);
            }
            finally
            {
                _tables.ExitWriteLock();
            }
            Retire(peer);
            _log.Info("peer_removed", $"{peer} removed");
        }
    }

    public void RemoveAllPeers()
    {
        lock (ConfigLock)
        {
            foreach (Peer peer in AllPeers())
                RemovePeer(peer);
        }
    }

    // From now on no thread uses the peer: its keys are erased.
    private static void Retire(Peer peer)
    {
        lock (peer.Sync)
        {
            peer.Removed = true;
            peer.Tunnel?.Dispose();
            peer.Tunnel = null;
        }
    }

    public void SetPresharedKey(Peer peer, WireGuardKey? key)
    {
        ArgumentNullException.ThrowIfNull(peer);
        lock (ConfigLock)
        {
            if (key is not null && key.IsZero)
                key = null;
            if (key is null ? peer.PresharedKey is null : key.Equals(peer.PresharedKey))
                return;
            // As wireguard-go: the session continues; the new key applies from the next handshake. The peer's
            // timestamp and flood history stay, so an initiation captured earlier is still refused.
            lock (peer.Sync)
            {
                peer.PresharedKey = key;
                peer.Tunnel?.SetPresharedKey(key);
            }
        }
    }

    public void SetEndpoint(Peer peer, IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (ConfigLock)
        {
            IUdpBind? bind = _bind;
            SocketAddress raw = bind is not null ? bind.ToSocketAddress(endpoint) : endpoint.Serialize();
            lock (peer.Sync)
                peer.Endpoint = raw;
        }
    }

    /// <summary>
    /// Sets the persistent keepalive interval (zero: off). Switching it on while the device runs sends a
    /// keepalive at once, which starts a handshake if there is no session (as wireguard-go and the kernel).
    /// </summary>
    public void SetPersistentKeepalive(Peer peer, TimeSpan interval, bool keepaliveNow = true)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero);
        lock (ConfigLock)
        {
            bool switchedOn;
            lock (peer.Sync)
            {
                switchedOn = peer.PersistentKeepalive == TimeSpan.Zero && interval > TimeSpan.Zero;
                peer.PersistentKeepalive = interval;
                if (peer.Tunnel is { } tunnel)
                    tunnel.PersistentKeepalive = interval;
            }
            if (switchedOn && keepaliveNow)
                SendKeepaliveNow(peer);
        }
    }

    /// <summary>Sends a keepalive (or, without a session, a handshake initiation) now, if the device runs.</summary>
    public void SendKeepaliveNow(Peer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (_started && !_stopped.IsCancellationRequested)
            SendKeepalive(peer);
    }

    public void ClearAllowedIps(Peer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        _tables.EnterWriteLock();
        try
        {
            _allowedIps.RemoveByPeer(peer);
        }
        finally
        {
            _tables.ExitWriteLock();
        }
    }

    public void AddAllowedIp(Peer peer, IPAddress address, int cidr)
    {
        ArgumentNullException.ThrowIfNull(peer);
        _tables.EnterWriteLock();
        try
        {
            if (!peer.Removed)
                _allowedIps.Insert(address, cidr, peer);
        }
        finally
        {
            _tables.ExitWriteLock();
        }
    }

    /// <summary>Removes one allowed range of <paramref name="peer"/>; a range that another peer holds is left alone.</summary>
    public bool RemoveAllowedIp(Peer peer, IPAddress address, int cidr)
    {
        ArgumentNullException.ThrowIfNull(peer);
        _tables.EnterWriteLock();
        try
        {
            return _allowedIps.Remove(address, cidr, peer);
        }
        finally
        {
            _tables.ExitWriteLock();
        }
    }

    /// <summary>A consistent copy of every peer's state (for UAPI get).</summary>
    public IReadOnlyList<PeerStatus> Snapshot()
    {
        var result = new List<PeerStatus>();
        foreach (Peer peer in AllPeers())
        {
            List<(IPAddress, int)> allowed;
            _tables.EnterReadLock();
            try
            {
                allowed = _allowedIps.EntriesFor(peer).ToList();
            }
            finally
            {
                _tables.ExitReadLock();
            }
            lock (peer.Sync)
            {
                if (peer.Removed)
                    continue;
                result.Add(new PeerStatus(peer.PublicKey, peer.PresharedKey,
                    peer.Endpoint is { } raw ? Endpoints.ToEndPoint(raw) : null,
                    peer.LastHandshake, peer.ReceivedBytes, peer.SentBytes, peer.PersistentKeepalive, allowed));
            }
        }
        return result;
    }

    private List<Peer> AllPeers()
    {
        _tables.EnterReadLock();
        try
        {
            return _peers.Values.OrderBy(p => p.Number).ToList();
        }
        finally
        {
            _tables.ExitReadLock();
        }
    }

    // A tunnel is bound to the local identity: a new private key starts a new one (sessions restart; the byte
    // counters and latest handshake carry over). A new pre-shared key does not (SetPresharedKey).
    private void RebuildTunnel(Peer peer)
    {
        StaticIdentity? identity;
        CookieChecker? checker;
        lock (_handshakeSync)
        {
            identity = _identity;
            checker = _checker;
        }
        lock (peer.Sync)
        {
            if (peer.Removed)
                return;
            if (peer.Tunnel is { } old)
            {
                peer.ReceivedBase += old.Counters.ReceivedBytes;
                peer.SentBase += old.Counters.SentBytes;
                peer.LastHandshakeBase = old.LastHandshake ?? peer.LastHandshakeBase;
                old.Dispose();
                peer.Tunnel = null;
            }
            if (identity is null || checker is null)
                return;
            peer.Tunnel = new Tunnel(identity, peer.PublicKey, peer.PresharedKey, _time, _random, checker, peer.PersistentKeepalive, _indices, peer)
            {
                Mtu = _mtu,
            };
        }
    }
}
