using System.Net;
using System.Text.Json;
using System.Xml.Linq;
using Microsoft.Extensions.Time.Testing;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Network;
using MkbVpn.Traffic;
using MkbVpn.Web.Pages;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Web.Tests;

/// <summary>
/// The traffic API and the chart routes on the real app, over history the service's sampler wrote
/// into the host's store from a stand-in interface on a fake clock (the last hour before now).
/// </summary>
public sealed class TrafficApiTests(TrafficApiTests.Fixture fixture) : IClassFixture<TrafficApiTests.Fixture>
{
    private WebHost Host => fixture.Host;

    /// <summary>One server; client tr1 sent traffic for 30 minutes (1,000 bytes received and 100 sent per minute, online throughout), tr2 never.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public WebHost Host { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Host = await WebHost.StartAsync();
            var added = Host.Clients.Add([new AddRequest("tr1"), new AddRequest("tr2")]).Clients;
            var device = new CountingDevice(WebHost.Interface);
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromMinutes(45));
            var sampler = new ClientService(Host.Paths, new ServiceHost(new OneDevice(device), LiveHostNetwork.Instance, LivePrivileges.Instance, FileLock.Instance, time));
            device.Set(added[0].PublicKey, 0, 0, null);
            device.Set(added[1].PublicKey, 0, 0, null);
            sampler.SampleTraffic();
            for (int i = 1; i <= 30; i++)
            {
                time.Advance(TimeSpan.FromMinutes(1));
                device.Set(added[0].PublicKey, 1_000L * i, 100L * i, time.GetUtcNow());
                Assert.True(sampler.SampleTraffic().InterfaceUp);
            }
        }

        public async Task DisposeAsync() => await Host.DisposeAsync();
    }

    private static async Task<JsonElement> GetJson(HttpClient http, string path)
    {
        using var r = await http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return await WebHost.Json(r);
    }

    [Fact]
    public async Task A_clients_history_comes_in_buckets_with_its_totals()
    {
        using var http = Host.TokenClient();
        var h = await GetJson(http, "/api/v1/clients/tr1/traffic?from=3h&step=hour");
        Assert.Equal("tr1", h.GetProperty("client").GetString());
        Assert.Equal(3600, h.GetProperty("step_seconds").GetInt32());
        Assert.Equal(30_000, h.GetProperty("rx_bytes").GetInt64());
        Assert.Equal(3_000, h.GetProperty("tx_bytes").GetInt64());
        var points = h.GetProperty("points").EnumerateArray().ToList();
        Assert.InRange(points.Count, 3, 4);
        Assert.Equal(30_000, points.Sum(p => p.GetProperty("rx_bytes").GetInt64()));
        Assert.Equal(30, points.Sum(p => p.GetProperty("online_minutes").GetInt64()));
        Assert.All(points, p => Assert.Equal(0, p.GetProperty("at").GetDateTimeOffset().ToUnixTimeSeconds() % 3600));
        Assert.NotEqual(JsonValueKind.Null, h.GetProperty("last_handshake").ValueKind);

        var minutes = await GetJson(http, "/api/v1/clients/tr1/traffic");    // defaults: 24 h, 5-minute steps
        Assert.Equal(300, minutes.GetProperty("step_seconds").GetInt32());
        Assert.Equal(30_000, minutes.GetProperty("rx_bytes").GetInt64());
        Assert.InRange(minutes.GetProperty("points").GetArrayLength(), 288, 289);

        var idle = await GetJson(http, "/api/v1/clients/tr2/traffic?step=3600");
        Assert.Equal(0, idle.GetProperty("rx_bytes").GetInt64());
    }

    [Fact]
    public async Task The_total_covers_all_clients()
    {
        using var http = Host.TokenClient();
        var t = await GetJson(http, "/api/v1/traffic?from=2h&step=minute");
        Assert.Equal(JsonValueKind.Null, t.GetProperty("client").ValueKind);
        Assert.Equal(30_000, t.GetProperty("rx_bytes").GetInt64());
        Assert.Equal(1, t.GetProperty("points").EnumerateArray().Max(p => p.GetProperty("online_minutes").GetInt64()));
    }

    [Theory]
    [InlineData("/api/v1/clients/tr1/traffic?from=tomorrowish", "from")]
    [InlineData("/api/v1/clients/tr1/traffic?from=1h&to=2h", "from")]
    [InlineData("/api/v1/clients/tr1/traffic?to=soon", "to")]
    [InlineData("/api/v1/traffic?step=fortnight", "step")]
    [InlineData("/api/v1/traffic?step=90", "step")]
    [InlineData("/api/v1/traffic?from=90d&step=minute", "step")]
    public async Task Bad_input_is_a_400_naming_the_parameter(string path, string field)
    {
        using var http = Host.TokenClient();
        using var r = await http.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.True((await WebHost.Json(r)).GetProperty("errors").TryGetProperty(field, out _));
    }

    [Fact]
    public async Task Unknown_clients_are_404_and_strangers_get_401_or_the_login_page()
    {
        using var http = Host.TokenClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/v1/clients/nobody/traffic")).StatusCode);
        using var anon = Host.Anonymous();
        foreach (var path in new[] { "/api/v1/clients/tr1/traffic", "/api/v1/traffic" })
            Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync(path)).StatusCode);
        foreach (var path in new[] { "/clients/tr1/traffic.svg", "/traffic.svg" })
        {
            using var r = await anon.GetAsync(path);
            Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
            Assert.Equal("/login", r.Headers.Location?.ToString());
        }
    }

    [Fact]
    public async Task The_charts_are_served_to_a_logged_in_admin_as_svg()
    {
        var (http, _) = await Host.LoginAsync();
        using (http)
        {
            foreach (var (path, title) in new[] { ("/clients/tr1/traffic.svg?from=2h", "Traffic of tr1"), ("/traffic.svg?size=small", "Traffic of all clients") })
            {
                using var r = await http.GetAsync(path);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                Assert.Equal("image/svg+xml", r.Content.Headers.ContentType?.MediaType);
                Assert.Contains("style-src 'unsafe-inline'", r.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
                Assert.DoesNotContain("script", r.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
                var svg = XDocument.Parse(await r.Content.ReadAsStringAsync());
                XNamespace ns = "http://www.w3.org/2000/svg";
                Assert.Equal(title, svg.Root!.Element(ns + "title")!.Value);
                Assert.Contains("received 30 KB and sent 3 KB", svg.Root.Element(ns + "desc")!.Value, StringComparison.Ordinal);
                Assert.Contains(svg.Descendants(ns + "rect"), e => (string?)e.Attribute("class") == "online");
            }
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/clients/nobody/traffic.svg")).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/traffic.svg?size=huge")).StatusCode);
        }
    }

    [Fact]
    public async Task The_OpenAPI_document_describes_both_endpoints_and_their_parameters()
    {
        using var anon = Host.Anonymous();
        var paths = (await GetJson(anon, "/api/v1/openapi.json")).GetProperty("paths");
        foreach (var path in new[] { "/api/v1/clients/{name}/traffic", "/api/v1/traffic" })
        {
            var get = paths.GetProperty(path).GetProperty("get");
            var names = get.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToHashSet();
            Assert.Superset(new HashSet<string?> { "from", "to", "step" }, names);
            Assert.Contains("step", get.GetProperty("description").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task In_chromium_the_chart_draws_on_a_desktop_and_a_phone_and_loads_as_an_image_in_the_page()
    {
        string path = Environment.GetEnvironmentVariable("MKB_VPN_CHROMIUM") is { Length: > 0 } c ? c : BrowserTests.Chromium;
        Assert.True(File.Exists(path), $"browser tests need Debian's chromium at {path}");
        using var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = path,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        string artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        foreach (var (width, height, size) in new[] { (1280, 800, "large"), (390, 844, "small") })
        {
            var context = await browser.NewContextAsync(new() { BaseURL = Host.BaseUrl, ViewportSize = new() { Width = width, Height = height } });
            var page = await context.NewPageAsync();
            page.SetDefaultTimeout(15_000);
            await page.GotoAsync("/login");
            await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
            await page.GetByLabel("Password").FillAsync(WebHost.Password);
            await page.GetByRole(Microsoft.Playwright.AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
            await page.WaitForURLAsync(Host.BaseUrl + "/");

            await page.GotoAsync($"/clients/tr1/traffic.svg?from=2h&size={size}");
            var received = await page.Locator("path.rx").BoundingBoxAsync();
            Assert.NotNull(received);
            Assert.InRange(received.Width, width / 2.0, width);           // the data spans the chart, which fits the screen
            Assert.True(received.Height > 10, $"the received line is flat: {received.Height}");
            await page.ScreenshotAsync(new() { Path = Path.Combine(artifacts, $"traffic-chart-{size}.png") });

            // As an <img> in the admin page (same origin, the page's CSP allows it).
            await page.GotoAsync("/");
            bool loaded = await page.EvaluateAsync<bool>("""
                () => new Promise(done => { const i = new Image(); i.onload = () => done(i.naturalWidth > 0); i.onerror = () => done(false);
                  i.src = '/traffic.svg?size=' + (innerWidth < 600 ? 'small' : 'large'); document.body.append(i); })
                """);
            Assert.True(loaded, "the total chart did not load as an image");
            await context.CloseAsync();
        }
    }

    /// <summary>A stand-in interface whose peers' counters and handshakes the test sets.</summary>
    private sealed class CountingDevice(string name) : IWireGuardDevice
    {
        private readonly Dictionary<WireGuardKey, PeerState> _peers = [];

        public string Name { get; } = name;

        public void Set(WireGuardKey key, long rx, long tx, DateTimeOffset? handshake) =>
            _peers[key] = new PeerState { PublicKey = key, RxBytes = rx, TxBytes = tx, LastHandshake = handshake };

        public InterfaceState Read() => new() { Peers = [.. _peers.Values] };

        public void Apply(DeviceChanges changes) => throw new IOException("read-only in this test");
    }

    private sealed class OneDevice(IWireGuardDevice device) : IDeviceLocator
    {
        public IWireGuardDevice? Find(string name) => name == device.Name ? device : null;

        public DataPlane Create(string name, string? engine) => throw new IOException("not in this test");

        public bool IsKernelLink(string name) => false;

        public void AwaitEngineExit(string name)
        {
        }
    }
}

/// <summary>The chart renderer alone: well-formed, accessible, encoded, bounded, for empty, tiny and long histories.</summary>
public sealed class TrafficChartTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private static TrafficHistory History(string? client, int stepSeconds, params (long Rx, long Tx, long Online)[] points) =>
        new(client, T0, T0.AddSeconds(stepSeconds * (double)Math.Max(1, points.Length)), stepSeconds,
            points.Sum(p => p.Rx), points.Sum(p => p.Tx), null,
            [.. points.Select((p, i) => new TrafficPoint(T0.AddSeconds((double)stepSeconds * i), p.Rx, p.Tx, p.Online))]);

    private static XElement Parse(string svg)
    {
        var root = XDocument.Parse(svg).Root!;
        Assert.Equal(Svg + "svg", root.Name);
        Assert.Equal("img", (string?)root.Attribute("role"));
        Assert.Equal("100%", (string?)root.Attribute("width"));
        Assert.NotNull(root.Attribute("viewBox"));
        return root;
    }

    /// <summary>Every coordinate of the data paths lies inside the viewBox.</summary>
    private static void AssertInside(XElement root)
    {
        var box = ((string)root.Attribute("viewBox")!).Split(' ').Select(double.Parse).ToArray();
        foreach (var path in root.Descendants(Svg + "path"))
        {
            var numbers = System.Text.RegularExpressions.Regex.Matches((string)path.Attribute("d")!, @"-?\d+(\.\d+)?").Select(m => double.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.All(numbers, n => Assert.InRange(n, 0, Math.Max(box[2], box[3])));
        }
    }

    [Fact]
    public void An_empty_history_says_so()
    {
        var root = Parse(TrafficChart.Render(History("alice", 3600)));
        Assert.Contains(root.Descendants(Svg + "text"), t => t.Value == "No traffic recorded in this period");
        Assert.Empty(root.Descendants(Svg + "path"));
        Assert.DoesNotContain(root.Descendants(Svg + "rect"), e => (string?)e.Attribute("class") == "online");
    }

    [Fact]
    public void One_point_draws_one_bucket_across_the_plot()
    {
        var root = Parse(TrafficChart.Render(History("alice", 3600, (2_500_000, 1_000, 60))));
        Assert.Equal(3, root.Descendants(Svg + "path").Count());
        Assert.Single(root.Descendants(Svg + "rect"), e => (string?)e.Attribute("class") == "online");
        Assert.Contains(root.Descendants(Svg + "text"), t => t.Value == "2.5 MB");      // the axis' top
        Assert.Contains("alice received 2.5 MB and sent 1 KB", root.Element(Svg + "desc")!.Value, StringComparison.Ordinal);
        AssertInside(root);
    }

    [Fact]
    public void Ninety_days_of_hours_render_with_day_labels_and_bands_for_each_online_run()
    {
        var points = Enumerable.Range(0, 90 * 24).Select(i => ((long)(i % 24) * 1_000_000_000L, (long)i * 1000, i % 24 is >= 8 and < 17 ? 60L : 0)).ToArray();
        var svg = TrafficChart.Render(History("bob", 3600, points));
        var root = Parse(svg);
        Assert.Equal(90, root.Descendants(Svg + "rect").Count(e => (string?)e.Attribute("class") == "online"));
        var labels = root.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains(labels, l => l.StartsWith("Nov ", StringComparison.Ordinal));
        Assert.Contains(labels, l => l.StartsWith("Jan ", StringComparison.Ordinal));
        Assert.Contains(labels, l => l.EndsWith(" GB", StringComparison.Ordinal));
        Assert.InRange(svg.Length, 10_000, 400_000);
        AssertInside(root);
    }

    [Fact]
    public void A_counter_reset_stays_a_positive_bucket_inside_the_plot()
    {
        // After a reset the service counts the new counter value: one large bucket, never a negative one.
        var root = Parse(TrafficChart.Render(History("carol", 60, (1_000, 10, 1), (5_000_000, 20, 1), (2_000, 30, 1)), TrafficChart.ChartSize.Small));
        AssertInside(root);
        Assert.Equal("0 0 420 270", (string)root.Attribute("viewBox")!);
        Assert.Single(root.Descendants(Svg + "rect"), e => (string?)e.Attribute("class") == "online");
    }

    [Fact]
    public void Text_from_data_is_encoded_and_the_ids_are_safe()
    {
        var svg = TrafficChart.Render(History("<script>&\"x\"", 60, (1, 1, 0)), idPrefix: "a\" onload=\"x");
        var root = Parse(svg);
        Assert.Equal("Traffic of <script>&\"x\"", root.Element(Svg + "title")!.Value);
        Assert.DoesNotContain("<script>", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("onload=", svg, StringComparison.Ordinal);
        Assert.Empty(root.Descendants(Svg + "script"));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(999, "999 B")]
    [InlineData(1_200, "1.2 KB")]
    [InlineData(34_000_000, "34 MB")]
    [InlineData(5_600_000_000, "5.6 GB")]
    public void Bytes_read_in_decimal_units(long n, string text) => Assert.Equal(text, TrafficChart.Bytes(n));
}
