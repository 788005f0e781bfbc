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
    int? Keepalive = null,
    IReadOnlyList<string>? Groups = null,
    string? Expires = null);

/// <summary>PATCH /api/v1/clients/NAME: only the members given change. Lists replace; "default" resets a field.</summary>
internal sealed record UpdateClientRequest(
    IReadOnlyList<string>? Groups = null,
    string? Expires = null,
    IReadOnlyList<string>? Dns = null,
    IReadOnlyList<string>? AllowedIps = null,
    string? Keepalive = null,
    string? Rename = null);

internal sealed record CreateGroupRequest(string? Name, string? Description = null);

internal sealed record GroupDto(string Name, string Description, int Members, int Rules, DateTimeOffset CreatedAt)
{
    public static GroupDto Of(MkbVpn.Access.Group g) => new(g.Name, g.Description, g.Members, g.Rules, g.CreatedAt);
}

/// <summary>POST /api/v1/access/rules, the same words as 'mkb-vpn access allow'.</summary>
internal sealed record CreateRuleRequest(string? Who, string? To, string? Port = null, string? Proto = null);

internal sealed record RuleDto(long Id, string Who, string To, string Proto, string? Port, string Text, DateTimeOffset CreatedAt)
{
    public static RuleDto Of(MkbVpn.Access.AccessRule r) =>
        new(r.Id, r.Who, r.Target, MkbVpn.Access.AccessRule.ProtocolName(r.Protocol), r.HasPorts ? r.PortText : null, r.ToString(), r.CreatedAt);
}

internal sealed record CheckDto(string Client, string Destination, int? Port, string Proto, string Verdict, IReadOnlyList<RuleDto> Rules, IReadOnlyList<RuleDto> Partial, string? Reason);

internal sealed record AuditDto(long Id, DateTimeOffset At, string Actor, string Via, string Action, string? Target, string? Client, string? Detail, string Outcome);

internal sealed record AuditListDto(IReadOnlyList<AuditDto> Items, int Page, int PageSize, int Total);

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
    long TxBytes,
    IReadOnlyList<string> Groups,
    DateTimeOffset? ExpiresAt,
    bool PublicKeyOnly)
{
    public static ClientDto Of(ClientService.ClientStatus s) => new(
        s.Client.Name, s.Client.Address4?.ToString(), s.Client.Address6?.ToString(),
        s.Client.StateAt(DateTimeOffset.UtcNow), s.Client.PublicKey.ToBase64(), s.Client.CreatedAt,
        s.Online, s.Live?.Endpoint ?? s.Client.LastEndpoint, s.Live?.LastHandshake ?? s.Client.LastHandshake,
        s.Live?.RxBytes ?? 0, s.Live?.TxBytes ?? 0, s.Client.Groups, s.Client.ExpiresAt, s.Client.PrivateKey is null);

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
