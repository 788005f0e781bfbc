using System.Net;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Device;

/// <summary>
/// One configured peer: its tunnel (the protocol state), endpoint and configuration. <see cref="Sync"/>
/// serialises every use of the tunnel (the tunnel is not thread-safe); the device's tables map public
/// keys, session indices and allowed IPs to peers.
/// </summary>
internal sealed class Peer
{
    public Peer(WireGuardKey publicKey, int number)
    {
        PublicKey = publicKey;
        Number = number;
    }

    public WireGuardKey PublicKey { get; }

    /// <summary>A local number for log lines (keys are never logged).</summary>
    public int Number { get; }

    /// <summary>Held while using <see cref="Tunnel"/> or changing the endpoint.</summary>
    public Lock Sync { get; } = new();

    /// <summary>Null while the device has no private key.</summary>
    public Tunnel? Tunnel { get; set; }

    public WireGuardKey? PresharedKey { get; set; }

    public TimeSpan PersistentKeepalive { get; set; }

    /// <summary>The raw address datagrams go to (in the current bind's family), or null if unknown.</summary>
    public System.Net.SocketAddress? Endpoint { get; set; }

    /// <summary>Set once the peer is removed: threads that still hold it must not use it.</summary>
    public bool Removed { get; set; }

    // Counters of tunnels replaced earlier (new private key), so wg's totals keep growing.
    public long ReceivedBase { get; set; }
    public long SentBase { get; set; }
    public DateTimeOffset? LastHandshakeBase { get; set; }

    public long ReceivedBytes => ReceivedBase + (Tunnel?.Counters.ReceivedBytes ?? 0);
    public long SentBytes => SentBase + (Tunnel?.Counters.SentBytes ?? 0);
    public DateTimeOffset? LastHandshake => Tunnel?.LastHandshake ?? LastHandshakeBase;

    public override string ToString() => $"peer {Number}";
}

/// <summary>A consistent copy of one peer's state, for the UAPI get operation.</summary>
internal sealed record PeerStatus(
    WireGuardKey PublicKey,
    WireGuardKey? PresharedKey,
    IPEndPoint? Endpoint,
    DateTimeOffset? LastHandshake,
    long ReceivedBytes,
    long SentBytes,
    TimeSpan PersistentKeepalive,
    IReadOnlyList<(IPAddress Address, int Cidr)> AllowedIps);
