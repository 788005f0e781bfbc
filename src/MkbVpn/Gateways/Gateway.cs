using System.Net;
using MkbVpn.Clients;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Gateways;

/// <summary>
/// One WireGuard server of the registry (docs/gateways.md): its own interface, key, endpoint,
/// listen port and internal networks; the registry's subnets unless it has its own. What it last
/// reported of itself: when, with which engine, how many peers.
/// </summary>
public sealed record Gateway
{
    /// <summary>The name the migration gives the server that existed before gateways.</summary>
    public const string MainName = "main";

    public required long Id { get; init; }
    public required string Name { get; init; }
    public required string Interface { get; init; }
    public required WireGuardKey PrivateKey { get; init; }
    public required WireGuardKey PublicKey { get; init; }
    public required int ListenPort { get; init; }
    public required string EndpointHost { get; init; }
    public required int EndpointPort { get; init; }
    /// <summary>Null: the registry's subnet.</summary>
    public IPNetwork? Subnet4 { get; init; }
    /// <summary>Null: the registry's subnet.</summary>
    public IPNetwork? Subnet6 { get; init; }
    public required IReadOnlyList<IPNetwork> InternalNetworks { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? LastSeen { get; init; }
    public string? Engine { get; init; }
    public int? PeerCount { get; init; }

    public string Endpoint => Addressing.Cidr.FormatEndpoint(EndpointHost, EndpointPort);

    /// <summary>
    /// The registry's settings as this gateway serves them: its interface, key, ports, endpoint and
    /// internal networks over the registry's DNS, MTU, subnets, tunnel mode and keepalive. What a
    /// config for this gateway renders and what its interface runs.
    /// </summary>
    public ServerSettings Serve(ServerSettings registry) => registry with
    {
        Interface = Interface,
        PrivateKey = PrivateKey,
        PublicKey = PublicKey,
        ListenPort = ListenPort,
        EndpointHost = EndpointHost,
        EndpointPort = EndpointPort,
        Subnet4 = Subnet4 ?? registry.Subnet4,
        Subnet6 = Subnet6 ?? registry.Subnet6,
        InternalNetworks = InternalNetworks,
    };
}

/// <summary>What a gateway last reported of one client: handshake, endpoint, bytes.</summary>
public sealed record GatewayPeerReport(long GatewayId, long ClientId, DateTimeOffset? LastHandshake, string? Endpoint, long RxBytes, long TxBytes, DateTimeOffset ReportedAt);
