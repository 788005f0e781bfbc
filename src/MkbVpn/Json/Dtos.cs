using System.Text.Json.Serialization;
using MkbVpn.Access;
using MkbVpn.Audit;
using MkbVpn.Clients;

namespace MkbVpn.Json;

// One shape per resource: the CLI's --json and the REST API print these records, and only these
// (serialised by MkbVpnJson, source-generated: no reflection, which native compilation needs).
// JSON members are snake_case: PublicKey is "public_key".

/// <summary>A client with its live status. Never its keys: the config (with the private key) has its own endpoint.</summary>
/// <remarks>Read from the store only (list, add, set, import), the live members say what the store knows:
/// the last recorded endpoint and handshake, not online, no bytes.</remarks>
public sealed record ClientDto(
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
    /// <summary>Where the client's config file is ('show', 'add'); absent in the API, which serves the config itself.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ConfigPath { get; init; }

    /// <summary>The config text, with its private key ('show --json' only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Config { get; init; }

    /// <summary>The gateways that serve the client, with what each reported of it (one client in the API; 'status' on a registry of gateways).
    /// The live members above are then those of the most recent handshake.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<GatewayPeerDto>? Gateways { get; init; }

    /// <summary>A client with the reports of its gateways: online if any gateway has it online; endpoint, handshake from the most recent handshake; bytes summed.</summary>
    public static ClientDto Of(GatewayClientStatus s, DateTimeOffset now)
    {
        var best = s.Best?.Report;
        return new ClientDto(s.Client.Name, s.Client.Address4?.ToString(), s.Client.Address6?.ToString(),
            s.Client.StateAt(now), s.Client.PublicKey.ToBase64(), s.Client.CreatedAt,
            s.Online, best?.Endpoint ?? s.Client.LastEndpoint, best?.LastHandshake ?? s.Client.LastHandshake,
            s.Gateways.Sum(g => g.Report?.RxBytes ?? 0), s.Gateways.Sum(g => g.Report?.TxBytes ?? 0), s.Client.Groups, s.Client.ExpiresAt, s.Client.PrivateKey is null)
        {
            Gateways = [.. s.Gateways.Select(GatewayPeerDto.Of)],
        };
    }

    public static ClientDto Of(ClientService.ClientStatus s) => Of(s, DateTimeOffset.UtcNow);

    public static ClientDto Of(ClientService.ClientStatus s, DateTimeOffset now) => new(
        s.Client.Name, s.Client.Address4?.ToString(), s.Client.Address6?.ToString(),
        s.Client.StateAt(now), s.Client.PublicKey.ToBase64(), s.Client.CreatedAt,
        s.Online, s.Live?.Endpoint ?? s.Client.LastEndpoint, s.Live?.LastHandshake ?? s.Client.LastHandshake,
        s.Live?.RxBytes ?? 0, s.Live?.TxBytes ?? 0, s.Client.Groups, s.Client.ExpiresAt, s.Client.PrivateKey is null);

    public static ClientDto Of(Client c) => Of(new ClientService.ClientStatus(c, null, false));

    public static ClientDto Of(Client c, DateTimeOffset now) => Of(new ClientService.ClientStatus(c, null, false), now);
}

/// <param name="Damaged">Client rows of the store that do not parse (edited by hand, a damaged disk), one line each,
/// left out of the page; absent when there are none. Total counts them.</param>
public sealed record ClientListDto(IReadOnlyList<ClientDto> Items, int Page, int PageSize, int Total, bool InterfaceUp,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Damaged = null);

/// <summary>The interface and its clients. The API's /status gives the counts; 'status --json' also the engine and every client.</summary>
public sealed record StatusDto(string Interface, bool InterfaceUp, int ClientsTotal, int ClientsEnabled, int ClientsOnline)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Engine { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? EngineReason { get; init; }

    /// <summary>The built-in engine's drop counters; absent for other engines.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, long>? Drops { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ClientDto>? Clients { get; init; }

    /// <summary>On a registry of gateways ('status' when a gateway has reported, or --gateway): every gateway (or the one asked for) with its state.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<GatewayDto>? Gateways { get; init; }
}

/// <summary>What one gateway reported of one client: state is online, offline, stale (the gateway has not reported for 30 s: its figures are old) or never_seen (the gateway never ran).</summary>
public sealed record GatewayPeerDto(string Gateway, string State, bool Online, string? Endpoint, DateTimeOffset? LatestHandshake, long RxBytes, long TxBytes, DateTimeOffset? ReportedAt)
{
    public static GatewayPeerDto Of(GatewayPeerStatus s) => new(s.Gateway.Name,
        s.Gateway.LastSeen is null ? "never_seen" : s.Stale ? "stale" : s.Online ? "online" : "offline", s.Online,
        s.Report?.Endpoint, s.Report?.LastHandshake, s.Report?.RxBytes ?? 0, s.Report?.TxBytes ?? 0, s.Report?.ReportedAt);
}

/// <summary>The server's settings. Never its private key.</summary>
public sealed record ServerDto(
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

public sealed record GroupDto(string Name, string Description, int Members, int Rules, DateTimeOffset CreatedAt)
{
    public static GroupDto Of(Group g) => new(g.Name, g.Description, g.Members, g.Rules, g.CreatedAt);
}

public sealed record RuleDto(long Id, string Who, string To, string Proto, string? Port, string Text, DateTimeOffset CreatedAt)
{
    public static RuleDto Of(AccessRule r) =>
        new(r.Id, r.Who, r.Target, AccessRule.ProtocolName(r.Protocol), r.HasPorts ? r.PortText : null, r.ToString(), r.CreatedAt);
}

/// <summary>'access allow --json': the rule, and whether it is new (the API answers 201 or 200 instead).</summary>
public sealed record RuleResultDto(RuleDto Rule, bool Created);

public sealed record CheckDto(string Client, string Destination, int? Port, string Proto, string Verdict, IReadOnlyList<RuleDto> Rules, IReadOnlyList<RuleDto> Partial, string? Reason)
{
    public static CheckDto Of(AccessCheck c) => new(c.Client.Name, c.Destination.ToString(), c.Port,
        c.Protocol is { } p ? AccessRule.ProtocolName(p) : "any", c.Result.Verdict.ToString().ToLowerInvariant(),
        [.. c.Result.Deciding.Select(RuleDto.Of)], [.. c.Result.Partial.Select(RuleDto.Of)], c.Result.Reason);
}

public sealed record AuditDto(long Id, DateTimeOffset At, string Actor, string Via, string Action, string? Target, string? Client, string? Detail, string Outcome)
{
    public static AuditDto Of(AuditEntry e) => new(e.Id, e.At, e.Actor, e.Via, e.Action, e.Target, e.Client, e.Detail, e.Outcome);
}

public sealed record AuditListDto(IReadOnlyList<AuditDto> Items, int Page, int PageSize, int Total);

/// <summary>'up --json'.</summary>
public sealed record UpDto(string Interface, string Engine, string EngineReason, string? Warning, bool Created, int PeersAdded, int PeersRemoved, int PeersUpdated, int Kicked);

/// <summary>'backup --json'.</summary>
public sealed record BackupDto(string Path, long Bytes, bool Encrypted, IReadOnlyList<string> Removed)
{
    public static BackupDto Of(BackupResult r) => new(r.Path, r.Bytes, r.Encrypted, r.Removed);
}

/// <summary>'import --json': what was (or, with dry_run, would be) imported.</summary>
public sealed record ImportDto(bool DryRun, string Tool, ServerDto Server, IReadOnlyList<ClientDto> Clients, IReadOnlyList<RenameDto> Renamed, IReadOnlyList<string> Notes);

public sealed record RenameDto(string From, string To);

/// <summary>'qr --json'.</summary>
public sealed record QrDto(string Name, string PngBase64);

/// <summary>'admin list --json'. Never a password hash or a TOTP secret.</summary>
public sealed record AdminDto(string Name, bool Totp, DateTimeOffset CreatedAt);

/// <summary>'token list --json'. Never the token.</summary>
public sealed record TokenDto(string Name, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt);

/// <summary>'token add --json': the token, shown once.</summary>
public sealed record NewTokenDto(string Name, string Token);

/// <summary>POST /api/v1/clients. Only name is required; the rest override the server's defaults.</summary>
public sealed record CreateClientRequest(
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
public sealed record UpdateClientRequest(
    IReadOnlyList<string>? Groups = null,
    string? Expires = null,
    IReadOnlyList<string>? Dns = null,
    IReadOnlyList<string>? AllowedIps = null,
    string? Keepalive = null,
    string? Rename = null);

public sealed record CreateGroupRequest(string? Name, string? Description = null);

/// <summary>POST /api/v1/access/rules, the same words as 'mkb-vpn access allow'.</summary>
public sealed record CreateRuleRequest(string? Who, string? To, string? Port = null, string? Proto = null);

/// <summary>'mkb-vpn migrate-store --json': what was moved where (rows per table), and the location to set.</summary>
public sealed record MigrateStoreDto(string From, string To, IReadOnlyDictionary<string, long> Rows, string Store);

/// <summary>'gateway list --json': a gateway and its reported state.</summary>
public sealed record GatewayDto(
    string Name, string Interface, string Endpoint, int ListenPort, string PublicKey, IReadOnlyList<string> InternalNetworks,
    int Served, bool Online, DateTimeOffset? LastSeen, string? Engine, int? Peers, DateTimeOffset CreatedAt)
{
    public static GatewayDto Of(GatewayView v) => new(
        v.Gateway.Name, v.Gateway.Interface, v.Gateway.Endpoint, v.Gateway.ListenPort, v.Gateway.PublicKey.ToBase64(),
        [.. v.Gateway.InternalNetworks.Select(n => n.ToString())], v.Served, v.Online, v.Gateway.LastSeen, v.Gateway.Engine,
        v.Gateway.PeerCount, v.Gateway.CreatedAt)
    {
        State = v.State,
        Subnet4 = v.Gateway.Subnet4?.ToString(),
        Subnet6 = v.Gateway.Subnet6?.ToString(),
    };

    /// <summary>online (reported within 30 s), stale (reported before: its figures are old) or never_seen.</summary>
    public string State { get; init; } = "never_seen";

    /// <summary>The gateway's own slice; null: the registry's subnet.</summary>
    public string? Subnet4 { get; init; }

    public string? Subnet6 { get; init; }
}

/// <summary>'up --foreground --gateway NAME --json': one line per application of the registry.</summary>
public sealed record GatewayUpDto(string Gateway, string Interface, string Engine, string EngineReason, bool Created, int Served,
    int PeersAdded, int PeersRemoved, int PeersUpdated);
