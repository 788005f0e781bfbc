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
    /// <summary>When the client stops working (blocked by the service); null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>The groups the client belongs to (filled where a view needs them).</summary>
    public IReadOnlyList<string> Groups { get; init => field = value.Count == 0 ? NoGroups : value; } = NoGroups;

    // One shared empty list, so that records without groups compare equal.
    private static readonly string[] NoGroups = [];

    public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } e && e <= now;

    /// <summary>"enabled", "blocked", or "expired" (blocked because its expiry passed, or about to be).</summary>
    public string StateAt(DateTimeOffset now) => IsExpired(now) ? "expired" : Enabled ? "enabled" : "blocked";

    public IEnumerable<IPNetwork> TunnelAddresses()
    {
        if (Address4 is not null)
            yield return new IPNetwork(Address4, 32);
        if (Address6 is not null)
            yield return new IPNetwork(Address6, 128);
    }

    public string AddressText => string.Join(", ", TunnelAddresses().Select(a => a.BaseAddress.ToString()));
}
