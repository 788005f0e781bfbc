using System.Net;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>One VPN user (device) as the store knows it.</summary>
public sealed record Client
{
    public required long Id { get; init; }
    public required string Name { get; init; }
    /// <summary>Null for a client imported without its private key (public key only): its config lives only on its device.</summary>
    public required WireGuardKey? PrivateKey { get; init; }
    public required WireGuardKey PublicKey { get; init; }
    public required WireGuardKey PresharedKey { get; init; }
    public IPAddress? Address4 { get; init; }
    public IPAddress? Address6 { get; init; }
    public required bool Enabled { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>DNS servers pushed to this client instead of the server default; empty list = none.</summary>
    public IReadOnlyList<string>? Dns { get; init; }
    /// <summary>AllowedIPs in the client's config instead of the server default (split/full).</summary>
    public IReadOnlyList<IPNetwork>? AllowedIps { get; init; }
    /// <summary>PersistentKeepalive in the client's config; null = server default.</summary>
    public int? Keepalive { get; init; }
    /// <summary>The client's last endpoint seen on the live interface (ip:port), for fast recovery.</summary>
    public string? LastEndpoint { get; init; }
    public DateTimeOffset? LastHandshake { get; init; }

    public IEnumerable<IPNetwork> TunnelAddresses()
    {
        if (Address4 is not null)
            yield return new IPNetwork(Address4, 32);
        if (Address6 is not null)
            yield return new IPNetwork(Address6, 128);
    }

    public string AddressText => string.Join(", ", TunnelAddresses().Select(a => a.BaseAddress.ToString()));
}
