using System.Net;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>The server's settings, created by init.</summary>
public sealed record ServerSettings
{
    public const int DefaultPort = 51820;
    public const int DefaultMtu = 1420;
    public const int DefaultKeepalive = 25;
    public const string DefaultInterface = "mkbvpn0";

    public required string Interface { get; init; }
    public required WireGuardKey PrivateKey { get; init; }
    public required WireGuardKey PublicKey { get; init; }
    public required int ListenPort { get; init; }
    public required string EndpointHost { get; init; }
    public required int EndpointPort { get; init; }
    public IPNetwork? Subnet4 { get; init; }
    public IPNetwork? Subnet6 { get; init; }
    public required IReadOnlyList<string> Dns { get; init; }
    public required int Mtu { get; init; }
    public required IReadOnlyList<IPNetwork> InternalNetworks { get; init; }
    public required bool FullTunnel { get; init; }
    /// <summary>Masquerade traffic from clients to the internal networks (hosts there see the server's address).</summary>
    public required bool Masquerade { get; init; }
    /// <summary>Let clients reach each other through the VPN.</summary>
    public required bool ClientToClient { get; init; }
    public required int Keepalive { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    public string Endpoint => Addressing.Cidr.FormatEndpoint(EndpointHost, EndpointPort);

    public IPAddress? ServerAddress4 => Subnet4 is { } s ? new Addressing.AddressPool(s).ServerAddress : null;
    public IPAddress? ServerAddress6 => Subnet6 is { } s ? new Addressing.AddressPool(s).ServerAddress : null;

    /// <summary>Value equality including the lists (a record compares lists by reference).</summary>
    public bool SameSettings(ServerSettings o) =>
        this with { Dns = o.Dns, InternalNetworks = o.InternalNetworks } == o &&
        Dns.SequenceEqual(o.Dns) && InternalNetworks.SequenceEqual(o.InternalNetworks);

    /// <summary>The AllowedIPs a client config gets by default.</summary>
    public IReadOnlyList<IPNetwork> DefaultClientAllowedIps()
    {
        if (FullTunnel)
        {
            var all = new List<IPNetwork> { IPNetwork.Parse("0.0.0.0/0") };
            if (Subnet6 is not null)
                all.Add(IPNetwork.Parse("::/0"));
            return all;
        }
        var list = new List<IPNetwork>();
        if (Subnet4 is { } s4) list.Add(s4);
        if (Subnet6 is { } s6) list.Add(s6);
        foreach (var n in InternalNetworks)
            if (!list.Contains(n))
                list.Add(n);
        return list;
    }
}
