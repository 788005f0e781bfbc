using System.Text.Json.Serialization;

namespace MkbVpn.Json;

/// <summary>
/// Every JSON shape mkb-vpn writes or reads, generated at compile time (no reflection; native
/// compilation needs that). The CLI writes with these options (indented); the web host puts the
/// context in its resolver chain and keeps its own options.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    WriteIndented = true)]
[JsonSerializable(typeof(ClientDto))]
[JsonSerializable(typeof(ClientDto[]))]
[JsonSerializable(typeof(ClientListDto))]
[JsonSerializable(typeof(StatusDto))]
[JsonSerializable(typeof(ServerDto))]
[JsonSerializable(typeof(GroupDto))]
[JsonSerializable(typeof(GroupDto[]))]
[JsonSerializable(typeof(RuleDto))]
[JsonSerializable(typeof(RuleDto[]))]
[JsonSerializable(typeof(RuleResultDto))]
[JsonSerializable(typeof(CheckDto))]
[JsonSerializable(typeof(AuditDto[]))]
[JsonSerializable(typeof(AuditListDto))]
[JsonSerializable(typeof(UpDto))]
[JsonSerializable(typeof(BackupDto))]
[JsonSerializable(typeof(ImportDto))]
[JsonSerializable(typeof(QrDto))]
[JsonSerializable(typeof(AdminDto[]))]
[JsonSerializable(typeof(TokenDto[]))]
[JsonSerializable(typeof(NewTokenDto))]
[JsonSerializable(typeof(MkbVpn.Traffic.TrafficHistory))]
[JsonSerializable(typeof(MigrateStoreDto))]
[JsonSerializable(typeof(GatewayDto))]
[JsonSerializable(typeof(GatewayDto[]))]
[JsonSerializable(typeof(GatewayPeerDto))]
[JsonSerializable(typeof(GatewayUpDto))]
[JsonSerializable(typeof(CreateClientRequest))]
[JsonSerializable(typeof(UpdateClientRequest))]
[JsonSerializable(typeof(CreateGroupRequest))]
[JsonSerializable(typeof(CreateRuleRequest))]
public sealed partial class MkbVpnJson : JsonSerializerContext;
