using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using MkbVpn.Admin;
using MkbVpn.Clients;
using MkbVpn.Gateways;
using MkbVpn.Storage;
using MkbVpn.Tests;

namespace MkbVpn.Web.Tests;

/// <summary>
/// Gateways in the API and on the page, on a real PostgreSQL registry with two gateways: main
/// (reporting) and berlin (a slice of the subnet, its last report five minutes old: stale). The
/// reports are written to the registry as a gateway's follower writes them.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GatewayWebTests(PostgresServer pg)
{
    private sealed class Registry : IAsyncDisposable
    {
        public required string Location { get; init; }
        public required string DataDir { get; init; }
        public required WebServer Server { get; init; }
        public required string Token { get; init; }
        public ClientService Clients => new(new Paths(DataDir, Location));
        public string BaseUrl => Server.Urls[0].TrimEnd('/');

        public HttpClient TokenClient()
        {
            var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(BaseUrl) };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
            return http;
        }

        /// <summary>main reports now (alice, bob online); berlin reported five minutes ago (alice, carol).</summary>
        public void Report()
        {
            var now = DateTimeOffset.UtcNow;
            var c = Clients;
            long Gw(string n) => c.GetGateway(n).Gateway.Id;
            long Cl(string n) => c.Get(n).Client.Id;
            using var store = Store.Open(StoreLocation.Parse(Location), create: false);
            store.ReportGateway(Gw("main"), now, "built-in", [
                new GatewayPeerReport(Gw("main"), Cl("alice"), now.AddSeconds(-20), "198.18.0.10:40000", 1500, 2500, now),
                new GatewayPeerReport(Gw("main"), Cl("bob"), now.AddSeconds(-30), "198.18.0.11:40000", 10, 20, now)], 2);
            var then = now.AddMinutes(-5);
            store.ReportGateway(Gw("berlin"), then, "kernel", [
                new GatewayPeerReport(Gw("berlin"), Cl("alice"), then.AddSeconds(-10), "198.18.1.10:50000", 700, 800, then),
                new GatewayPeerReport(Gw("berlin"), Cl("carol"), then.AddSeconds(-10), "198.18.1.12:50000", 7, 8, then)], 2);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.App.StopAsync();
            await Server.App.DisposeAsync();
            try
            {
                Directory.Delete(DataDir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }

    private async Task<Registry> StartAsync()
    {
        string location = pg.NewDatabase();
        string dir = Path.Combine(Path.GetTempPath(), "mkbvpn-webgw-" + Guid.NewGuid().ToString("N"));
        var paths = new Paths(dir, location);
        var svc = new ClientService(paths);
        svc.Init(new InitOptions
        {
            Endpoint = "vpn.example.com",
            Subnet4 = "203.0.113.0/24",
            Subnet6 = "fd00:5eb::/64",
            InternalNetworks = ["198.51.100.0/24"],
            Interface = WebHost.Interface,
        });
        svc.AddGateway(new GatewayRequest("berlin") { Endpoint = "vpn-berlin.example.com:51822", ListenPort = 51822, Interface = "mkbwebb", Subnet4 = "203.0.113.128/25", InternalNetworks = ["198.51.100.128/25"] });
        svc.Add([new AddRequest("alice"), new AddRequest("bob") { Gateways = ["main"] }, new AddRequest("carol") { Gateways = ["berlin"] }]);
        var admins = new AdminService(paths);
        admins.AddAdmin(WebHost.Admin, WebHost.Password);
        string token = admins.AddToken("tests");
        var server = WebServer.Create(new WebOptions { DataDir = dir, Store = location, Listen = "127.0.0.1:0", LogLevel = LogLevel.Warning });
        await server.App.StartAsync();
        var r = new Registry { Location = location, DataDir = dir, Server = server, Token = token };
        r.Report();
        return r;
    }

    [Fact]
    public async Task The_api_lists_gateways_with_their_state_and_a_clients_gateways_and_configs_per_gateway()
    {
        await using var reg = await StartAsync();
        using var http = reg.TokenClient();

        using (var anonymous = new HttpClient { BaseAddress = new Uri(reg.BaseUrl) })
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/gateways")).StatusCode);

        reg.Report();
        var status = await WebHost.Json(await http.GetAsync("/api/v1/status"));
        Assert.Equal(2, status.GetProperty("clients_online").GetInt32());   // from the reports: alice and bob on main
        // The client list too: online and endpoint from the fresh gateways' reports (carol's only gateway is stale).
        var clientList = (await WebHost.Json(await http.GetAsync("/api/v1/clients"))).GetProperty("items").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => (c.GetProperty("online").GetBoolean(), c.GetProperty("endpoint").GetString()));
        Assert.Equal((true, "198.18.0.10:40000"), clientList["alice"]);
        Assert.False(clientList["carol"].Item1);
        Assert.Equal(["alice", "bob"], (await WebHost.Json(await http.GetAsync("/api/v1/clients?state=online"))).GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        // /metrics counts as the page does (it counted the web host's own interface: none here, so 0 online).
        string metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("\nmkbvpn_peers_online 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("\nmkbvpn_peer_receive_bytes_total{name=\"alice\"} 2200\n", metrics, StringComparison.Ordinal); // main 1500 + berlin 700
        // A damaged client row (edited by hand) neither breaks /metrics nor the list on a registry: it is named and left out.
        var carolKey = (await WebHost.Json(await http.GetAsync("/api/v1/clients/carol"))).GetProperty("public_key").GetString();
        pg.Sql(reg.Location, "UPDATE clients SET public_key = 'not a key' WHERE name = 'carol'");
        Assert.Contains("\nmkbvpn_peers_online 2\n", await http.GetStringAsync("/metrics"), StringComparison.Ordinal);
        var withDamage = await WebHost.Json(await http.GetAsync("/api/v1/clients"));
        Assert.Equal(["alice", "bob"], withDamage.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        Assert.Contains("'carol'", Assert.Single(withDamage.GetProperty("damaged").EnumerateArray()).GetString());
        pg.Sql(reg.Location, $"UPDATE clients SET public_key = '{carolKey}' WHERE name = 'carol'");
        var list = await WebHost.Json(await http.GetAsync("/api/v1/gateways"));
        Assert.Equal(["berlin", "main"], list.EnumerateArray().Select(g => g.GetProperty("name").GetString()));
        var berlin = list[0];
        Assert.Equal("stale", berlin.GetProperty("state").GetString());
        Assert.Equal("203.0.113.128/25", berlin.GetProperty("subnet4").GetString());
        Assert.Equal(51822, berlin.GetProperty("listen_port").GetInt32());
        Assert.Equal("vpn-berlin.example.com:51822", berlin.GetProperty("endpoint").GetString());
        Assert.Equal(2, berlin.GetProperty("served").GetInt32());   // alice (every gateway) and carol
        Assert.Equal("kernel", berlin.GetProperty("engine").GetString());
        var main = list[1];
        Assert.Equal(("online", 2, 2), (main.GetProperty("state").GetString(), main.GetProperty("peers").GetInt32(), main.GetProperty("served").GetInt32()));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, main.GetProperty("subnet4").ValueKind);

        var one = await WebHost.Json(await http.GetAsync("/api/v1/gateways/BERLIN"));
        Assert.Equal(("berlin", "198.51.100.128/25"), (one.GetProperty("name").GetString(), one.GetProperty("internal_networks")[0].GetString()));
        using (var missing = await http.GetAsync("/api/v1/gateways/paris"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
            Assert.Contains("paris", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.DeleteAsync("/api/v1/gateways/berlin")).StatusCode);

        var served = await WebHost.Json(await http.GetAsync("/api/v1/gateways/berlin/clients"));
        Assert.Equal(["alice", "carol"], served.EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        Assert.Equal("198.18.1.12:50000", served[1].GetProperty("gateways")[0].GetProperty("endpoint").GetString());

        // alice: served by both; online through main; berlin's report is stale.
        var alice = await WebHost.Json(await http.GetAsync("/api/v1/clients/alice"));
        Assert.True(alice.GetProperty("online").GetBoolean());
        Assert.Equal("198.18.0.10:40000", alice.GetProperty("endpoint").GetString());
        Assert.Equal("203.0.113.130", alice.GetProperty("address4").GetString());
        var gws = alice.GetProperty("gateways");
        Assert.Equal([("berlin", "stale"), ("main", "online")], gws.EnumerateArray().Select(g => (g.GetProperty("gateway").GetString(), g.GetProperty("state").GetString())));
        Assert.Equal(1500 + 700, alice.GetProperty("rx_bytes").GetInt64());

        // One config per gateway; a gateway that does not serve the client is a 404.
        var berlinKey = reg.Clients.GetGateway("berlin").Gateway.PublicKey.ToBase64();
        string conf = await http.GetStringAsync("/api/v1/clients/alice/config?gateway=berlin");
        Assert.Contains($"PublicKey = {berlinKey}", conf, StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51822", conf, StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn.example.com:51820", await http.GetStringAsync("/api/v1/clients/alice/config?gateway=main"), StringComparison.Ordinal);
        using (var download = await http.GetAsync("/api/v1/clients/alice/config?gateway=berlin&download=true"))
            Assert.Equal("attachment; filename=\"alice-berlin.conf\"", download.Content.Headers.ContentDisposition?.ToString() ?? string.Join(";", download.Content.Headers.GetValues("Content-Disposition")));
        using (var notServed = await http.GetAsync("/api/v1/clients/bob/config?gateway=berlin"))
            Assert.Equal(HttpStatusCode.NotFound, notServed.StatusCode);
        using (var qr = await http.GetAsync("/api/v1/clients/alice/qr.svg?gateway=berlin"))
        {
            Assert.Equal(HttpStatusCode.OK, qr.StatusCode);
            Assert.StartsWith("<svg", (await qr.Content.ReadAsStringAsync()).TrimStart(), StringComparison.Ordinal);
        }
        Assert.NotEqual(await (await http.GetAsync("/api/v1/clients/alice/qr.svg?gateway=berlin")).Content.ReadAsStringAsync(),
            await (await http.GetAsync("/api/v1/clients/alice/qr.svg?gateway=main")).Content.ReadAsStringAsync());

        // Without ?gateway: the client's home gateway. alice (every gateway) and bob (main): the registry's server;
        // carol (berlin only): berlin's config and QR code, not main's (which does not serve her).
        Assert.Equal(await http.GetStringAsync("/api/v1/clients/alice/config?gateway=main"), await http.GetStringAsync("/api/v1/clients/alice/config"));
        Assert.Equal(await http.GetStringAsync("/api/v1/clients/bob/config?gateway=main"), await http.GetStringAsync("/api/v1/clients/bob/config"));
        string carolConf = await http.GetStringAsync("/api/v1/clients/carol/config");
        Assert.Equal(await http.GetStringAsync("/api/v1/clients/carol/config?gateway=berlin"), carolConf);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51822", carolConf, StringComparison.Ordinal);
        Assert.Equal(await http.GetStringAsync("/api/v1/clients/carol/qr.svg?gateway=berlin"), await http.GetStringAsync("/api/v1/clients/carol/qr.svg"));
        Assert.Equal(carolConf, await File.ReadAllTextAsync(reg.Clients.Paths.ClientConfig("carol")));
    }

    [Fact]
    public async Task The_server_page_shows_the_gateways_and_a_clients_page_its_gateways_with_a_config_each()
    {
        await using var reg = await StartAsync();
        var (playwright, browser) = await BrowserTests.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = reg.BaseUrl });
        page.SetDefaultTimeout((float)BrowserTests.Deadline.TotalMilliseconds);

        await page.GotoAsync("/login");
        await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
        await page.GetByLabel("Password").FillAsync(WebHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Clients", Exact = true })).ToBeVisibleAsync();

        reg.Report();
        await page.GotoAsync("/server");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Gateways" })).ToBeVisibleAsync();
        var berlinRow = page.Locator("#gateways tr[data-gateway=berlin]");
        await Assertions.Expect(berlinRow.Locator(".gateway-state")).ToHaveTextAsync("stale");
        await Assertions.Expect(berlinRow).ToContainTextAsync("203.0.113.128/25");
        await Assertions.Expect(berlinRow).ToContainTextAsync("vpn-berlin.example.com:51822");
        await Assertions.Expect(berlinRow).ToContainTextAsync(new Regex("[5-9]m ago"));
        // The counts are the gateways': alice and bob online on main (berlin is stale, so carol is not).
        await Assertions.Expect(page.Locator("#counts")).ToHaveTextAsync("3 clients: 3 enabled, 2 online");
        var mainRow = page.Locator("#gateways tr[data-gateway=main]");
        await Assertions.Expect(mainRow.Locator(".gateway-state")).ToHaveTextAsync("online");
        await Assertions.Expect(mainRow).ToContainTextAsync("built-in");
        await page.ScreenshotAsync(new() { Path = BrowserTests.ArtifactPath("gateways-server.png"), FullPage = true });

        // alice is served by both: a config and a QR code per gateway.
        await page.GotoAsync("/clients/alice");
        var rows = page.Locator("#client-gateways tbody tr");
        await Assertions.Expect(rows).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#client-gateways tr[data-gateway=berlin] .gateway-state")).ToHaveTextAsync("stale");
        await Assertions.Expect(page.Locator("#client-gateways tr[data-gateway=main]")).ToContainTextAsync("198.18.0.10:40000");
        var download = await page.RunAndWaitForDownloadAsync(() => page.Locator("#client-gateways tr[data-gateway=berlin] a.gateway-config").ClickAsync());
        Assert.Equal("alice-berlin.conf", download.SuggestedFilename);
        string conf = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51822", conf, StringComparison.Ordinal);
        Assert.Contains(reg.Clients.Get("alice").Client.PrivateKey!.ToBase64(), conf, StringComparison.Ordinal);
        await page.Locator("#client-gateways tr[data-gateway=berlin] a.gateway-qr").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/api/v1/clients/alice/qr.svg\\?gateway=berlin$"));
        await Assertions.Expect(page.Locator("svg")).ToBeVisibleAsync();

        // carol is served by berlin only: her gateway, no per-gateway downloads.
        await page.GotoAsync("/clients/carol");
        await Assertions.Expect(page.Locator("#client-gateways tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#client-gateways tr[data-gateway=berlin]")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("a.gateway-config")).ToHaveCountAsync(0);
        // Her QR code, download and config are berlin's, and the page says so.
        await Assertions.Expect(page.Locator("#home-gateway")).ToContainTextAsync("gateway berlin");
        await Assertions.Expect(page.Locator("#config")).ToContainTextAsync("Endpoint = vpn-berlin.example.com:51822");
        // alice: served by both; the default config is the registry's server's.
        await page.GotoAsync("/clients/alice");
        await Assertions.Expect(page.Locator("#home-gateway")).ToContainTextAsync("for the registry's server");
        // The hint says where they are: the QR code above it, the download button below it (after the gateways table).
        await Assertions.Expect(page.Locator("#home-gateway")).ToContainTextAsync("the QR code above and the download button below");
        Assert.True(await page.EvaluateAsync<bool>("() => { const hint = document.getElementById('home-gateway'); " +
            "return !!(hint.compareDocumentPosition(document.getElementById('qr')) & Node.DOCUMENT_POSITION_PRECEDING) " +
            "&& !!(hint.compareDocumentPosition(document.getElementById('download')) & Node.DOCUMENT_POSITION_FOLLOWING); }"));
    }
}
