using System.Net;
using System.Text.Json;

namespace MkbVpn.Web.Tests;

/// <summary>Groups, rules, check, edit and the audit log through the API and the page, with the CLI's validation and messages.</summary>
public sealed class AccessApiTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    private static async Task<JsonElement> Send(HttpClient http, HttpMethod method, string path, string? json, HttpStatusCode expected)
    {
        using var r = await http.SendAsync(new HttpRequestMessage(method, path) { Content = json is null ? null : WebHost.JsonBody(json) });
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(expected == r.StatusCode, $"{method} {path}: {(int)r.StatusCode} {body}");
        return body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public async Task Groups_rules_check_and_edit_through_the_api()
    {
        using var http = Host.TokenClient();
        var g = await Send(http, HttpMethod.Post, "/api/v1/groups", """{"name":"apiacct","description":"Bookkeeping"}""", HttpStatusCode.Created);
        Assert.Equal("apiacct", g.GetProperty("name").GetString());
        await Send(http, HttpMethod.Post, "/api/v1/groups", """{"name":"APIACCT"}""", HttpStatusCode.Conflict);
        var c = await Send(http, HttpMethod.Post, "/api/v1/clients", """{"name":"apibob","groups":["apiacct"],"expires":"30d"}""", HttpStatusCode.Created);
        Assert.Equal(["apiacct"], c.GetProperty("groups").EnumerateArray().Select(x => x.GetString()));
        Assert.True(c.GetProperty("expires_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddDays(29));

        var rule = await Send(http, HttpMethod.Post, "/api/v1/access/rules", """{"who":"group:apiacct","to":"198.51.100.20","port":"443","proto":"tcp"}""", HttpStatusCode.Created);
        Assert.Equal("group:apiacct -> 198.51.100.20/32 tcp/443", rule.GetProperty("text").GetString());
        long id = rule.GetProperty("id").GetInt64();
        var same = await Send(http, HttpMethod.Post, "/api/v1/access/rules", """{"who":"group:apiacct","to":"198.51.100.20/32","port":"443","proto":"tcp"}""", HttpStatusCode.OK);
        Assert.Equal(id, same.GetProperty("id").GetInt64());
        var rules = await Send(http, HttpMethod.Get, "/api/v1/access/rules", null, HttpStatusCode.OK);
        Assert.Contains(rules.EnumerateArray(), r => r.GetProperty("id").GetInt64() == id);

        var check = await Send(http, HttpMethod.Get, "/api/v1/access/check?client=apibob&destination=198.51.100.20:443/tcp", null, HttpStatusCode.OK);
        Assert.Equal("allow", check.GetProperty("verdict").GetString());
        var denied = await Send(http, HttpMethod.Get, "/api/v1/access/check?client=apibob&destination=192.0.2.1:443", null, HttpStatusCode.OK);
        Assert.Equal("deny", denied.GetProperty("verdict").GetString());

        var edited = await Send(http, HttpMethod.Patch, "/api/v1/clients/apibob", """{"groups":[],"expires":"never","rename":"apirob"}""", HttpStatusCode.OK);
        Assert.Equal("apirob", edited.GetProperty("name").GetString());
        Assert.Empty(edited.GetProperty("groups").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, edited.GetProperty("expires_at").ValueKind);

        // A group named by a rule is kept unless forced.
        await Send(http, HttpMethod.Delete, "/api/v1/groups/apiacct", null, HttpStatusCode.BadRequest);
        await Send(http, HttpMethod.Delete, "/api/v1/groups/apiacct?force=true", null, HttpStatusCode.NoContent);
        await Send(http, HttpMethod.Delete, $"/api/v1/access/rules/{id}", null, HttpStatusCode.NotFound);

        // The audit log names the token and the API.
        var audit = await Send(http, HttpMethod.Get, "/api/v1/audit?client=apirob", null, HttpStatusCode.OK);
        var items = audit.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal("set", items[0].GetProperty("action").GetString());
        Assert.All(items, e => Assert.Equal(("tests", "api"), (e.GetProperty("actor").GetString(), e.GetProperty("via").GetString())));
    }

    [Theory]
    [InlineData("""{"who":"group:nobody","to":"internal"}""", "who", HttpStatusCode.NotFound)]
    [InlineData("""{"who":"everyone","to":"192.0.2.0/24"}""", "to", HttpStatusCode.BadRequest)]
    [InlineData("""{"who":"everyone","to":"internal","port":"22","proto":"icmp"}""", "port", HttpStatusCode.BadRequest)]
    [InlineData("""{"who":"everyone","to":"internal","port":"9-1"}""", "port", HttpStatusCode.BadRequest)]
    [InlineData("""{"who":"everyone","to":"internal","proto":"gre"}""", "proto", HttpStatusCode.BadRequest)]
    public async Task Bad_rules_name_the_field_and_change_nothing(string json, string field, HttpStatusCode status)
    {
        using var http = Host.TokenClient();
        int before = Host.Clients.ListRules().Count;
        var p = await Send(http, HttpMethod.Post, "/api/v1/access/rules", json, status);
        Assert.True(p.GetProperty("errors").TryGetProperty(field, out _), p.ToString());
        Assert.StartsWith(field + ":", p.GetProperty("detail").GetString());
        Assert.Equal(before, Host.Clients.ListRules().Count);
    }

    [Fact]
    public async Task Bad_edits_name_the_json_field()
    {
        using var http = Host.TokenClient();
        await Send(http, HttpMethod.Post, "/api/v1/clients", """{"name":"apiedit"}""", HttpStatusCode.Created);
        var p = await Send(http, HttpMethod.Patch, "/api/v1/clients/apiedit", """{"allowed_ips":["not-a-network"]}""", HttpStatusCode.BadRequest);
        Assert.True(p.GetProperty("errors").TryGetProperty("allowed_ips", out _), p.ToString());
        p = await Send(http, HttpMethod.Patch, "/api/v1/clients/apiedit", """{"expires":"yesterday"}""", HttpStatusCode.BadRequest);
        Assert.True(p.GetProperty("errors").TryGetProperty("expires", out _), p.ToString());
        await Send(http, HttpMethod.Patch, "/api/v1/clients/apiedit", """{"colour":"red"}""", HttpStatusCode.BadRequest);
        await Send(http, HttpMethod.Patch, "/api/v1/clients/nobody", """{"expires":"never"}""", HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_page_adds_groups_and_rules_checks_and_edits_with_csrf_and_the_audit_names_the_admin()
    {
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        FormUrlEncodedContent Form(params (string, string)[] fields) =>
            new(fields.Append(("_csrf", csrf)).ToDictionary(f => f.Item1, f => f.Item2));

        using (var r = await http.PostAsync("/access/groups", Form(("name", "pagestaff"), ("description", "<b>Staff</b>"))))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        using (var r = await http.PostAsync("/access/groups", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "nocsrf" })))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.DoesNotContain(Host.Clients.ListGroups(), g => g.Name == "nocsrf");

        Host.Clients.Add([new Clients.AddRequest("pagecarol")]);
        using (var r = await http.PostAsync("/clients/pagecarol/edit", Form(("groups", "pagestaff"), ("expires", "14d"), ("rename", ""))))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.Equal(["pagestaff"], Host.Clients.Get("pagecarol").Client.Groups);

        using (var r = await http.PostAsync("/access/rules", Form(("who", "group:pagestaff"), ("to", "198.51.100.30"), ("port", "22"), ("proto", "tcp"))))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        using (var r = await http.PostAsync("/access/rules", Form(("who", "group:pagestaff"), ("to", "192.0.2.1"), ("port", ""), ("proto", "any"))))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("not inside the internal networks", await r.Content.ReadAsStringAsync());
        }

        string page = await http.GetStringAsync("/access?client=pagecarol&destination=198.51.100.30:22/tcp");
        Assert.Contains("id=\"check-result\" class=\"verdict allow\"", page);
        Assert.Contains("group:pagestaff -&gt; 198.51.100.30/32 tcp/22", page);
        Assert.Contains("&lt;b&gt;Staff&lt;/b&gt;", page);
        Assert.DoesNotContain("<b>Staff</b>", page);

        string detail = await http.GetStringAsync("/clients/pagecarol");
        Assert.Contains("<dd id=\"groups\">pagestaff</dd>", detail);

        string audit = await http.GetStringAsync("/audit?client=pagecarol");
        Assert.Contains("<td>admin</td><td>page</td><td>set</td>", audit);
    }

    [Fact]
    public async Task A_client_imported_without_its_private_key_has_no_qr_code_and_says_why()
    {
        using (var store = MkbVpn.Storage.Store.Open(Host.Paths.Database, create: false))
        {
            using var tx = store.BeginWrite();
            var pub = MkbVpn.WireGuard.Protocol.WireGuardKeys.PublicKeyOf(MkbVpn.WireGuard.Protocol.WireGuardKeys.NewPrivateKey());
            store.InsertClient(new Clients.Client
            {
                Id = 0, Name = "keyless1", PrivateKey = null, PublicKey = pub,
                PresharedKey = MkbVpn.WireGuard.Protocol.WireGuardKeys.NewPresharedKey(),
                Address4 = IPAddress.Parse("203.0.113.240"), Enabled = true, CreatedAt = DateTimeOffset.UtcNow,
            });
            tx.Commit();
        }
        using var http = Host.TokenClient();
        var c = await Send(http, HttpMethod.Get, "/api/v1/clients/keyless1", null, HttpStatusCode.OK);
        Assert.True(c.GetProperty("public_key_only").GetBoolean());
        var p = await Send(http, HttpMethod.Get, "/api/v1/clients/keyless1/qr.png", null, HttpStatusCode.BadRequest);
        Assert.Contains("private key", p.GetProperty("detail").GetString());
        var (page, _) = await Host.LoginAsync();
        using var __ = page;
        string html = await page.GetStringAsync("/clients/keyless1");
        Assert.Contains("id=\"public-key-only\"", html);
        Assert.DoesNotContain("id=\"qr\"", html);
    }
}
