using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using MkbVpn.Clients;
using MkbVpn.Json;

namespace MkbVpn.Tests;

/// <summary>
/// The one shape of each resource (MkbVpnJson: the CLI's --json and the API), and the service's parsers that the
/// CLI's add and the API's create both go through.
/// </summary>
public class JsonShapeTests
{
    private static string[] Members(string json) =>
        [.. JsonDocument.Parse(json).RootElement.EnumerateObject().Select(p => p.Name)];

    [Fact]
    public void A_client_has_the_api_members_in_snake_case_and_no_key_material()
    {
        var c = Fixtures.Client("alice", c => c with { LastEndpoint = "198.18.0.9:40000", Groups = ["staff"] });
        string json = JsonSerializer.Serialize(ClientDto.Of(c, c.CreatedAt), MkbVpnJson.Default.ClientDto);
        Assert.Equal(["name", "address4", "address6", "state", "public_key", "created_at", "online", "endpoint", "latest_handshake",
            "rx_bytes", "tx_bytes", "groups", "expires_at", "public_key_only"], Members(json));
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("198.18.0.9:40000", doc.RootElement.GetProperty("endpoint").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("expires_at").ValueKind);
        Assert.DoesNotContain(c.PrivateKey!.ToBase64(), json);
        Assert.DoesNotContain(c.PresharedKey!.ToBase64(), json);
    }

    [Fact]
    public void Show_adds_the_config_path_and_text_which_the_api_never_carries()
    {
        var dto = ClientDto.Of(Fixtures.Client(), DateTimeOffset.UnixEpoch) with { ConfigPath = "/d/clients/alice.conf", Config = "[Interface]\n" };
        var members = Members(JsonSerializer.Serialize(dto, MkbVpnJson.Default.ClientDto));
        Assert.Equal(["config_path", "config"], members[^2..]);
        Assert.Equal(14, members.Length - 2);
    }

    [Fact]
    public void Status_is_the_api_counts_and_the_cli_adds_engine_drops_and_clients_only_when_it_has_them()
    {
        var api = new StatusDto("mkbvpn0", true, 3, 2, 1);
        Assert.Equal(["interface", "interface_up", "clients_total", "clients_enabled", "clients_online"],
            Members(JsonSerializer.Serialize(api, MkbVpnJson.Default.StatusDto)));
        var cli = api with { Engine = "builtin", EngineReason = "no kernel module", Drops = new Dictionary<string, long> { ["dropped"] = 4 }, Clients = [] };
        var json = JsonSerializer.Serialize(cli, MkbVpnJson.Default.StatusDto);
        Assert.Equal(["interface", "interface_up", "clients_total", "clients_enabled", "clients_online", "engine", "engine_reason", "drops", "clients"], Members(json));
        Assert.Equal(4, JsonDocument.Parse(json).RootElement.GetProperty("drops").GetProperty("dropped").GetInt64());
    }

    [Fact]
    public void A_rule_list_is_an_array_of_the_api_rule()
    {
        var rule = new MkbVpn.Access.AccessRule
        {
            Id = 7, Subject = MkbVpn.Access.SubjectKind.Group, SubjectName = "staff", Target = "internal",
            Protocol = MkbVpn.Access.Protocol.Tcp, PortFrom = 443, PortTo = 443, CreatedAt = DateTimeOffset.UnixEpoch,
        };
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize([RuleDto.Of(rule)], MkbVpnJson.Default.RuleDtoArray));
        var r = doc.RootElement.EnumerateArray().Single();
        Assert.Equal((7L, "group:staff", "internal", "tcp", "443"),
            (r.GetProperty("id").GetInt64(), r.GetProperty("who").GetString(), r.GetProperty("to").GetString(), r.GetProperty("proto").GetString(), r.GetProperty("port").GetString()));
        Assert.True(r.TryGetProperty("created_at", out _));
    }

    [Fact]
    public void Requests_read_snake_case_members_through_the_generated_metadata()
    {
        var r = JsonSerializer.Deserialize("""{"name":"bob","allowed_ips":["198.51.100.0/24"],"full_tunnel":false,"keepalive":10}""", MkbVpnJson.Default.CreateClientRequest)!;
        Assert.Equal(("bob", "198.51.100.0/24", false, 10), (r.Name, r.AllowedIps!.Single(), r.FullTunnel, r.Keepalive));
    }

    [Fact]
    public void Reflection_json_is_off_so_a_shape_missing_from_the_context_fails_in_tests_as_in_the_native_binary()
    {
        Assert.False(AppContext.TryGetSwitch("System.Text.Json.JsonSerializer.IsReflectionEnabledByDefault", out bool on) && on);
        Assert.Throws<InvalidOperationException>(() => JsonSerializer.Serialize(new { name = "x" }));
    }

    [Theory]
    [InlineData("203.0.113.9", "203.0.113.9", null)]
    [InlineData("fd00:1234:5678::9/128", null, "fd00:1234:5678::9")]
    [InlineData("203.0.113.9,fd00:1234:5678::9", "203.0.113.9", "fd00:1234:5678::9")]
    public void Addresses_of_either_family_parse_together(string text, string? v4, string? v6)
    {
        var (a4, a6) = ClientService.ParseClientAddresses([text]);
        Assert.Equal((v4, v6), (a4?.ToString(), a6?.ToString()));
    }

    [Theory]
    [InlineData("203.0.113.9,203.0.113.10")]
    [InlineData("not-an-ip")]
    public void Bad_addresses_are_an_error_of_the_address_field(string text)
    {
        var e = Assert.Throws<FieldException>(() => ClientService.ParseClientAddresses([text]));
        Assert.Equal("address", e.Field);
        Assert.DoesNotContain("--", e.Message);
    }

    [Fact]
    public void An_address_of_the_wrong_family_names_its_field()
    {
        var e = Assert.Throws<FieldException>(() => ClientService.ParseClientAddress("fd00::9", AddressFamily.InterNetwork, "address4"));
        Assert.Equal("address4", e.Field);
        Assert.Equal("address4: 'fd00::9' is not an IPv4 address", e.Message);
        Assert.Equal(IPAddress.Parse("fd00::9"), ClientService.ParseClientAddress("fd00::9", AddressFamily.InterNetworkV6, "address6"));
    }

    [Fact]
    public void Full_tunnel_means_everything_and_contradicts_allowed_ips()
    {
        Assert.Equal([IPNetwork.Parse("0.0.0.0/0"), IPNetwork.Parse("::/0")], ClientService.ParseAllowedIps(null, fullTunnel: true));
        Assert.Null(ClientService.ParseAllowedIps(null, fullTunnel: false));
        var e = Assert.Throws<FieldException>(() => ClientService.ParseAllowedIps(["198.51.100.0/24"], fullTunnel: true));
        Assert.Equal("full-tunnel", e.Field);
        Assert.DoesNotContain("--", e.Message);
    }

    [Fact]
    public void A_bad_client_name_is_an_error_of_the_name_field()
    {
        var e = Assert.Throws<FieldException>(() => ClientName.RequireValid("bad name"));
        Assert.Equal("name", e.Field);
        Assert.Equal(ClientName.Validate("bad name"), e.Message);
        Assert.Equal("name", Assert.Throws<FieldException>(() => ClientName.RequireValid(null)).Field);
        Assert.Equal("bob", ClientName.RequireValid("bob"));
    }
}
