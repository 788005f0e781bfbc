using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;

namespace MkbVpn.Web.Tests;

/// <summary>The REST API against the real app and a real SQLite file, authenticated with an API token.</summary>
public sealed class ApiTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    private async Task<JsonElement> CreateAsync(HttpClient http, string name, HttpStatusCode expected = HttpStatusCode.Created, string? json = null)
    {
        using var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody(json ?? $$"""{"name":"{{name}}"}"""));
        Assert.Equal(expected, r.StatusCode);
        return await WebHost.Json(r);
    }

    private static async Task AssertProblem(HttpResponseMessage r, HttpStatusCode status, string? field = null)
    {
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var p = await WebHost.Json(r);
        Assert.Equal((int)status, p.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(p.GetProperty("detail").GetString()));
        if (field is not null)
            Assert.True(p.GetProperty("errors").TryGetProperty(field, out _), $"the problem names the field '{field}': {p}");
    }

    [Fact]
    public async Task Unauthenticated_requests_get_401_and_learn_nothing()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "known1");
        using var anon = Host.Anonymous();
        var details = new HashSet<string>();
        foreach (var (method, path) in new[] { ("GET", "/api/v1/clients"), ("GET", "/api/v1/clients/known1"), ("GET", "/api/v1/clients/nobody"),
                     ("GET", "/api/v1/clients/known1/config"), ("GET", "/api/v1/no-such-endpoint"), ("DELETE", "/api/v1/clients/known1"), ("GET", "/api/v1/server") })
        {
            using var r = await anon.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            await AssertProblem(r, HttpStatusCode.Unauthorized);
            Assert.Contains("Bearer", r.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            details.Add((await WebHost.Json(r)).GetProperty("detail").GetString()!);
        }
        Assert.Single(details);   // the same answer whatever exists
        foreach (var bad in new[] { "mkbv_AAAAAAAAAAAA_wrong", Host.Token + "x", Host.Token[..^2], "nonsense", "" })
        {
            using var wrong = new HttpClient { BaseAddress = new Uri(Host.BaseUrl) };
            wrong.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + bad);
            using var r = await wrong.GetAsync("/api/v1/clients/known1");
            await AssertProblem(r, HttpStatusCode.Unauthorized);
            Assert.DoesNotContain("known1", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.NotNull(Host.Clients.Get("known1").Client);   // the DELETE changed nothing
    }

    [Fact]
    public async Task A_revoked_token_is_refused_at_once()
    {
        string token = Host.Admins.AddToken("short-lived");
        using var http = new HttpClient { BaseAddress = new Uri(Host.BaseUrl) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/status")).StatusCode);
        Host.Admins.RevokeToken("short-lived");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/status")).StatusCode);
    }

    [Fact]
    public async Task Create_get_block_reenable_delete()
    {
        using var http = Host.TokenClient();
        using var created = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"life1","keepalive":10,"dns":["198.51.100.53"]}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/api/v1/clients/life1", created.Headers.Location?.ToString());
        var c = await WebHost.Json(created);
        Assert.Equal("life1", c.GetProperty("name").GetString());
        Assert.Equal("enabled", c.GetProperty("state").GetString());
        Assert.StartsWith("203.0.113.", c.GetProperty("address4").GetString(), StringComparison.Ordinal);
        Assert.False(c.TryGetProperty("private_key", out _));
        string body = created.Content.Headers.ContentLength > 0 ? await created.Content.ReadAsStringAsync() : "";
        Assert.DoesNotContain(Host.Clients.Get("life1").Client.PrivateKey!.ToBase64(), body, StringComparison.Ordinal);

        var got = await WebHost.Json(await http.GetAsync("/api/v1/clients/life1"));
        Assert.Equal(c.GetProperty("public_key").GetString(), got.GetProperty("public_key").GetString());
        Assert.False(got.GetProperty("online").GetBoolean());

        var blocked = await WebHost.Json(await http.PostAsync("/api/v1/clients/life1/block", null));
        Assert.Equal("blocked", blocked.GetProperty("state").GetString());
        Assert.False(Host.Clients.Get("life1").Client.Enabled);
        var again = await WebHost.Json(await http.PostAsync("/api/v1/clients/life1/reenable", null));
        Assert.Equal("enabled", again.GetProperty("state").GetString());
        Assert.True(Host.Clients.Get("life1").Client.Enabled);

        string config = await http.GetStringAsync("/api/v1/clients/life1/config");
        Assert.Contains("PersistentKeepalive = 10", config, StringComparison.Ordinal);
        Assert.Contains("DNS = 198.51.100.53", config, StringComparison.Ordinal);
        Assert.Contains(Host.Clients.Get("life1").Client.PrivateKey!.ToBase64(), config, StringComparison.Ordinal);

        using var deleted = await http.DeleteAsync("/api/v1/clients/life1");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await AssertProblem(await http.GetAsync("/api/v1/clients/life1"), HttpStatusCode.NotFound);
        Assert.False(File.Exists(Host.Paths.ClientConfig("life1")));
    }

    [Fact]
    public async Task Unknown_client_is_404_on_every_endpoint()
    {
        using var http = Host.TokenClient();
        foreach (var (method, path) in new[] { ("GET", ""), ("DELETE", ""), ("POST", "/block"), ("POST", "/reenable"), ("GET", "/config"), ("GET", "/qr.png"), ("GET", "/qr.svg") })
        {
            using var r = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/api/v1/clients/ghost" + path));
            await AssertProblem(r, HttpStatusCode.NotFound);
            Assert.Contains("ghost", (await WebHost.Json(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Duplicate_name_is_409_whatever_the_case()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "dup1");
        using var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"DUP1"}"""));
        await AssertProblem(r, HttpStatusCode.Conflict);
        Assert.Single(Host.Clients.List(), c => c.Name.Equals("dup1", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("""{"name":"bad name"}""", "name")]
    [InlineData("""{"name":"waytoolongname123"}""", "name")]
    [InlineData("""{}""", "name")]
    [InlineData("""{"name":"v1","address4":"not-an-ip"}""", "address4")]
    [InlineData("""{"name":"v2","address4":"fd00::9"}""", "address4")]
    [InlineData("""{"name":"v3","address4":"198.51.100.7"}""", null)]
    [InlineData("""{"name":"v4","keepalive":70000}""", "keepalive")]
    [InlineData("""{"name":"v5","keepalive":"ten"}""", "keepalive")]
    [InlineData("""{"name":"v6","allowed_ips":["10.0.0.0/33"]}""", "allowed_ips")]
    [InlineData("""{"name":"v7","full_tunnel":true,"allowed_ips":["198.51.100.0/24"]}""", "full_tunnel")]
    [InlineData("""{"name":"v8","nmae":"typo"}""", "nmae")]
    [InlineData("""{"name":"v9",""", "body")]
    [InlineData("""not json at all""", "body")]
    [InlineData("""[1,2]""", null)]
    public async Task Invalid_input_is_400_naming_the_field_and_changes_nothing(string json, string? field)
    {
        using var http = Host.TokenClient();
        int before = Host.Clients.List().Count;
        using var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody(json));
        await AssertProblem(r, HttpStatusCode.BadRequest, field);
        Assert.Equal(before, Host.Clients.List().Count);
    }

    [Fact]
    public async Task Wrong_media_type_is_415_and_oversized_body_is_413()
    {
        using var http = Host.TokenClient();
        int before = Host.Clients.List().Count;
        await AssertProblem(await http.PostAsync("/api/v1/clients", new StringContent("name=x", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded")), HttpStatusCode.UnsupportedMediaType);
        string huge = "{\"name\":\"big\",\"dns\":[" + string.Join(",", Enumerable.Repeat("\"198.51.100.1\"", 10_000)) + "]}";
        await AssertProblem(await http.PostAsync("/api/v1/clients", WebHost.JsonBody(huge)), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(before, Host.Clients.List().Count);
    }

    [Fact]
    public async Task List_pages_filters_and_searches_in_the_store()
    {
        using var http = Host.TokenClient();
        for (int i = 0; i < 7; i++)
            await CreateAsync(http, $"pg-{i}");
        await http.PostAsync("/api/v1/clients/pg-3/block", null);
        var seen = new List<string>();
        for (int page = 1; page <= 3; page++)
        {
            var list = await WebHost.Json(await http.GetAsync($"/api/v1/clients?q=pg-&page={page}&page_size=3"));
            Assert.Equal(7, list.GetProperty("total").GetInt32());
            Assert.Equal(page, list.GetProperty("page").GetInt32());
            seen.AddRange(list.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()!));
        }
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"pg-{i}"), seen);
        var blocked = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=pg-&state=blocked"));
        Assert.Equal(["pg-3"], blocked.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        var enabled = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=PG-&state=enabled"));
        Assert.Equal(6, enabled.GetProperty("total").GetInt32());
        var offline = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=pg-&state=offline&page_size=500"));
        Assert.Equal(7, offline.GetProperty("total").GetInt32());   // no interface: nobody is online
        var online = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=pg-&state=online"));
        Assert.Equal(0, online.GetProperty("total").GetInt32());
        var literal = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=" + Uri.EscapeDataString("pg%")));
        Assert.Equal(0, literal.GetProperty("total").GetInt32());   // % is not a wildcard
        await AssertProblem(await http.GetAsync("/api/v1/clients?page_size=501"), HttpStatusCode.BadRequest);
        await AssertProblem(await http.GetAsync("/api/v1/clients?page=0"), HttpStatusCode.BadRequest);
        await AssertProblem(await http.GetAsync("/api/v1/clients?page=x"), HttpStatusCode.BadRequest, "page");
        await AssertProblem(await http.GetAsync("/api/v1/clients?state=sleeping"), HttpStatusCode.BadRequest, "state");
    }

    [Fact]
    public async Task A_client_row_that_does_not_parse_is_named_and_the_list_still_answers()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "dmg-ok");
        var created = await CreateAsync(http, "dmg-bad");
        string key = created.GetProperty("public_key").GetString()!;
        void SetKey(string value)
        {
            using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Host.Paths.Database};Pooling=false");
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE clients SET public_key = $k WHERE name = 'dmg-bad'";
            cmd.Parameters.AddWithValue("$k", value);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        SetKey("not a key"); // edited by hand, or a damaged disk
        try
        {
            using var r = await http.GetAsync("/api/v1/clients?q=dmg-");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode); // was a 500
            var list = await WebHost.Json(r);
            Assert.Equal(["dmg-ok"], list.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
            Assert.Equal(2, list.GetProperty("total").GetInt32());
            Assert.Contains("'dmg-bad'", Assert.Single(list.GetProperty("damaged").EnumerateArray()).GetString());
            var clean = await WebHost.Json(await http.GetAsync("/api/v1/clients?q=dmg-ok"));
            Assert.False(clean.TryGetProperty("damaged", out _)); // absent when nothing is damaged
        }
        finally
        {
            SetKey(key);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync("/api/v1/clients/dmg-bad")).StatusCode);
    }

    [Fact]
    public async Task Config_download_and_QR_codes()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "qr1");
        using var dl = await http.GetAsync("/api/v1/clients/qr1/config?download=true");
        Assert.Equal("text/plain", dl.Content.Headers.ContentType?.MediaType);
        Assert.Contains("attachment", dl.Content.Headers.ContentDisposition?.ToString() ?? dl.Headers.GetValues("Content-Disposition").First(), StringComparison.Ordinal);
        Assert.Equal("no-store", dl.Headers.CacheControl?.ToString());
        Assert.StartsWith("# mkb-vpn client 'qr1'", await dl.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var png = await http.GetAsync("/api/v1/clients/qr1/qr.png");
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, (await png.Content.ReadAsByteArrayAsync())[..4]);
        using var svg = await http.GetAsync("/api/v1/clients/qr1/qr.svg");
        Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<svg", await svg.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_and_server_settings_never_show_the_private_key()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "st1");
        var status = await WebHost.Json(await http.GetAsync("/api/v1/status"));
        Assert.Equal(WebHost.Interface, status.GetProperty("interface").GetString());
        Assert.False(status.GetProperty("interface_up").GetBoolean());
        Assert.True(status.GetProperty("clients_total").GetInt32() >= 1);
        using var r = await http.GetAsync("/api/v1/server");
        string text = await r.Content.ReadAsStringAsync();
        var server = Host.Clients.GetServer();
        Assert.DoesNotContain(server.PrivateKey.ToBase64(), text, StringComparison.Ordinal);
        var s = await WebHost.Json(r);
        Assert.Equal(server.PublicKey.ToBase64(), s.GetProperty("public_key").GetString());
        Assert.Equal(["198.51.100.0/24"], s.GetProperty("internal_networks").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("vpn.example.com:51820", s.GetProperty("endpoint").GetString());
    }

    [Fact]
    public async Task OpenApi_document_describes_every_api_endpoint()
    {
        using var anon = Host.Anonymous();
        using var r = await anon.GetAsync("/api/v1/openapi.json");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var doc = await WebHost.Json(r);
        Assert.StartsWith("3.", doc.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = doc.GetProperty("paths");
        var endpoints = ((IEndpointRouteBuilder)Host.Server.App).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/api/v1/", StringComparison.Ordinal) && e.RoutePattern.RawText != "/api/v1/openapi.json")
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => (Path: e.RoutePattern.RawText!, Method: m.ToLowerInvariant())))
            .ToList();
        Assert.True(endpoints.Count >= 11, $"expected the API's endpoints, found {endpoints.Count}");
        foreach (var (path, method) in endpoints)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} is missing from the OpenAPI document");
            Assert.True(item.TryGetProperty(method, out var op), $"{method.ToUpperInvariant()} {path} is missing from the OpenAPI document");
            Assert.False(string.IsNullOrEmpty(op.GetProperty("summary").GetString()));
        }
        Assert.True(paths.GetProperty("/api/v1/clients").GetProperty("post").GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.Equal("bearer", doc.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task Metrics_need_a_token_and_count_peers_and_requests()
    {
        using var http = Host.TokenClient();
        await CreateAsync(http, "met1");
        await http.PostAsync("/api/v1/clients/met1/block", null);
        using var anon = Host.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/metrics")).StatusCode);
        string text = await http.GetStringAsync("/metrics");
        var total = Host.Clients.List();
        Assert.Contains($"\nmkbvpn_peers {total.Count}\n", text, StringComparison.Ordinal);
        Assert.Contains($"\nmkbvpn_peers_enabled {total.Count(c => c.Enabled)}\n", text, StringComparison.Ordinal);
        Assert.Contains("\nmkbvpn_peers_online 0\n", text, StringComparison.Ordinal);
        Assert.Contains("mkbvpn_peer_receive_bytes_total{name=\"met1\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("mkbvpn_http_requests_total{route=\"/api/v1/clients/{name}/block\",method=\"POST\",code=\"200\"}", text, StringComparison.Ordinal);
        Assert.Contains("mkbvpn_http_requests_total{route=\"/api/v1/clients\",method=\"POST\",code=\"201\"}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_store_holds_no_token_or_password_in_clear()
    {
        using var http = Host.TokenClient();
        await http.GetAsync("/api/v1/status");
        var (session, _) = await Host.LoginAsync();
        var bytes = File.ReadAllBytes(Host.Paths.Database).Concat(File.Exists(Host.Paths.Database + "-wal") ? File.ReadAllBytes(Host.Paths.Database + "-wal") : []).ToArray();
        string raw = System.Text.Encoding.Latin1.GetString(bytes);
        // The secret part as the server parses it (base64url may itself contain '_', so not "after the last '_'").
        string secret = MkbVpn.Admin.Secrets.Parse(Host.Token, MkbVpn.Admin.Secrets.TokenPrefix)!.Value.Secret;
        Assert.DoesNotContain(secret, raw, StringComparison.Ordinal);
        Assert.DoesNotContain(WebHost.Password, raw, StringComparison.Ordinal);
        Assert.Contains("pbkdf2-sha256$600000$", raw, StringComparison.Ordinal);
    }
}
