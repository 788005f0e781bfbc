using MkbVpn.Clients;

namespace MkbVpn.Web.Api;

/// <summary>POST /api/v1/clients. Only name is required; the rest override the server's defaults.</summary>
internal sealed record CreateClientRequest(
    string? Name,
    string? Address4 = null,
    string? Address6 = null,
    IReadOnlyList<string>? Dns = null,
    IReadOnlyList<string>? AllowedIps = null,
    bool? FullTunnel = null,
    int? Keepalive = null);

/// <summary>A client with its live status. Never its keys: the config (with the private key) has its own endpoint.</summary>
internal sealed record ClientDto(
    string Name,
    string? Address4,
    string? Address6,
    string State,
    string PublicKey,
    DateTimeOffset CreatedAt,
    bool Online,
    string? Endpoint,
    DateTimeOffset? LatestHandshake,
    long RxBytes,
    long TxBytes)
{
    public static ClientDto Of(ClientService.ClientStatus s) => new(
        s.Client.Name, s.Client.Address4?.ToString(), s.Client.Address6?.ToString(),
        s.Client.Enabled ? "enabled" : "blocked", s.Client.PublicKey.ToBase64(), s.Client.CreatedAt,
        s.Online, s.Live?.Endpoint ?? s.Client.LastEndpoint, s.Live?.LastHandshake ?? s.Client.LastHandshake,
        s.Live?.RxBytes ?? 0, s.Live?.TxBytes ?? 0);

    public static ClientDto Of(Client c) => Of(new ClientService.ClientStatus(c, null, false));
}

internal sealed record ClientListDto(IReadOnlyList<ClientDto> Items, int Page, int PageSize, int Total, bool InterfaceUp);

internal sealed record StatusDto(string Interface, bool InterfaceUp, int ClientsTotal, int ClientsEnabled, int ClientsOnline);

/// <summary>The server's settings. Never its private key.</summary>
internal sealed record ServerDto(
    string Interface,
    string PublicKey,
    string Endpoint,
    int ListenPort,
    string? Subnet4,
    string? Subnet6,
    string? ServerAddress4,
    string? ServerAddress6,
    IReadOnlyList<string> Dns,
    int Mtu,
    IReadOnlyList<string> InternalNetworks,
    bool FullTunnel,
    bool Masquerade,
    bool ClientToClient,
    int Keepalive,
    DateTimeOffset CreatedAt)
{
    public static ServerDto Of(ServerSettings s) => new(
        s.Interface, s.PublicKey.ToBase64(), s.Endpoint, s.ListenPort, s.Subnet4?.ToString(), s.Subnet6?.ToString(),
        s.ServerAddress4?.ToString(), s.ServerAddress6?.ToString(), s.Dns, s.Mtu, [.. s.InternalNetworks.Select(n => n.ToString())],
        s.FullTunnel, s.Masquerade, s.ClientToClient, s.Keepalive, s.CreatedAt);
}

internal sealed record VerbResultDto(IReadOnlyList<string> Changed, IReadOnlyList<string> Unchanged, bool Live);
