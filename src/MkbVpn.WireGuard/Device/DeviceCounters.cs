namespace MkbVpn.WireGuard.Device;

/// <summary>
/// Device-wide drop counters (packets that never reached a peer's tunnel, or failed I/O). Per-peer
/// protocol errors are in each tunnel's <c>TunnelCounters</c>. Updated with Interlocked from the I/O threads.
/// </summary>
internal sealed class DeviceCounters
{
    public long Malformed;          // not a WireGuard message (type, size or reserved bytes)
    public long InvalidMac;         // handshake initiation with a wrong mac1
    public long UnknownIndex;       // response / cookie reply / data for an index no peer holds
    public long UnknownPeer;        // a valid initiation from a public key that is not configured
    public long HandshakeFailed;    // initiation that did not open (decryption, zero DH)
    public long RateLimited;        // handshake message refused by the per-source limiter under load
    public long HandshakeQueueFull; // handshake message dropped: the workers' queue was full
    public long CookiesSent;        // cookie replies sent under load
    public long CookiesReceived;    // cookie replies from a peer under load, accepted (not a drop)
    public long NoRoute;            // packet from the TUN with no peer for its destination
    public long NoEndpoint;         // packet for a peer whose endpoint is unknown
    public long InvalidTunPacket;   // packet from the TUN that is not IPv4 or IPv6
    public long SendFailed;         // UDP send refused by the system
    public long TunWriteFailed;     // TUN write refused by the system
    public long PeerErrors;         // results that a tunnel reported as errors (details in its counters)
    public long SourceNotAllowed;   // decrypted packet whose inner source is not in the sending peer's allowed IPs

    public long Dropped =>
        Interlocked.Read(ref Malformed) + Interlocked.Read(ref InvalidMac) + Interlocked.Read(ref UnknownIndex) +
        Interlocked.Read(ref UnknownPeer) + Interlocked.Read(ref HandshakeFailed) + Interlocked.Read(ref RateLimited) + Interlocked.Read(ref HandshakeQueueFull) +
        Interlocked.Read(ref NoRoute) + Interlocked.Read(ref NoEndpoint) + Interlocked.Read(ref InvalidTunPacket) +
        Interlocked.Read(ref PeerErrors) + Interlocked.Read(ref SourceNotAllowed);

    /// <summary>Every counter by its stable name (the engine log and the UAPI <c>get=stats</c> extension use these).</summary>
    public IReadOnlyList<(string Name, long Value)> Values() =>
    [
        ("malformed", Interlocked.Read(ref Malformed)),
        ("invalid_mac", Interlocked.Read(ref InvalidMac)),
        ("unknown_index", Interlocked.Read(ref UnknownIndex)),
        ("unknown_peer", Interlocked.Read(ref UnknownPeer)),
        ("handshake_failed", Interlocked.Read(ref HandshakeFailed)),
        ("rate_limited", Interlocked.Read(ref RateLimited)),
        ("handshake_queue_full", Interlocked.Read(ref HandshakeQueueFull)),
        ("cookies_sent", Interlocked.Read(ref CookiesSent)),
        ("cookies_received", Interlocked.Read(ref CookiesReceived)),
        ("no_route", Interlocked.Read(ref NoRoute)),
        ("no_endpoint", Interlocked.Read(ref NoEndpoint)),
        ("invalid_tun_packet", Interlocked.Read(ref InvalidTunPacket)),
        ("send_failed", Interlocked.Read(ref SendFailed)),
        ("tun_write_failed", Interlocked.Read(ref TunWriteFailed)),
        ("peer_errors", Interlocked.Read(ref PeerErrors)),
        ("source_not_allowed", Interlocked.Read(ref SourceNotAllowed)),
    ];

    public override string ToString() =>
        string.Join(' ', Values().Select(v => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{v.Name}={v.Value}")));
}
