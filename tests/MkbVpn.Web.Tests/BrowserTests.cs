using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace MkbVpn.Web.Tests;

/// <summary>
/// The admin page in Debian's headless chromium (apt package 'chromium'), driven by Playwright.
/// Never downloads a browser: without /usr/bin/chromium these tests fail and say so.
/// </summary>
public sealed class BrowserTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    public const string Chromium = "/usr/bin/chromium";
    internal static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private WebHost Host => fixture.Host;

    internal static async Task<(IPlaywright, IBrowser)> LaunchAsync()
    {
        string path = Environment.GetEnvironmentVariable("MKB_VPN_CHROMIUM") is { Length: > 0 } p ? p : Chromium;
        Assert.True(File.Exists(path), $"browser tests need Debian's chromium at {path}: apt-get install chromium (scripts/test.sh does)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = path,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        return (playwright, browser);
    }

    internal static string ArtifactPath(string name)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    [Fact]
    public async Task Log_in_add_see_QR_block_reenable_remove_log_out()
    {
        var (playwright, browser) = await LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = Host.BaseUrl });
        page.SetDefaultTimeout((float)Deadline.TotalMilliseconds);

        await page.GotoAsync("/");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/login$"));
        await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
        await page.GetByLabel("Password").FillAsync(WebHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Clients", Exact = true })).ToBeVisibleAsync();

        // Add a client: its page shows the QR code and the download at once.
        await page.GetByLabel("New client name").FillAsync("phone1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add client" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/clients/phone1\\?added=1$"));
        var qr = page.Locator("#qr");
        await Assertions.Expect(qr).ToBeVisibleAsync();
        await page.WaitForFunctionAsync("() => { const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 100; }");
        await Assertions.Expect(page.Locator("#download")).ToHaveAttributeAsync("href", "/api/v1/clients/phone1/config?download=true");
        var download = await page.RunAndWaitForDownloadAsync(() => page.Locator("#download").ClickAsync());
        Assert.Equal("phone1.conf", download.SuggestedFilename);
        string conf = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.Contains(Host.Clients.Get("phone1").Client.PrivateKey!.ToBase64(), conf, StringComparison.Ordinal);
        await page.GetByText("Show config").ClickAsync();
        await Assertions.Expect(page.Locator("#config")).ToContainTextAsync("[Interface]");

        // Block and re-enable.
        await page.Locator("#block").ClickAsync();
        await Assertions.Expect(page.Locator("#reenable")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("blocked");
        Assert.False(Host.Clients.Get("phone1").Client.Enabled);
        await page.Locator("#reenable").ClickAsync();
        await Assertions.Expect(page.Locator("#block")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("enabled");
        Assert.True(Host.Clients.Get("phone1").Client.Enabled);

        // The list refreshes its live status by itself; screenshot it as an artifact.
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("tr[data-name='phone1']")).ToBeVisibleAsync();
        await page.WaitForFunctionAsync("() => Number(document.getElementById('clients').dataset.refreshed || '0') >= 1");
        await Assertions.Expect(page.Locator("tr[data-name='phone1'] [data-field='online']")).ToHaveTextAsync("offline");
        string shot = ArtifactPath("client-list.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        Assert.True(new FileInfo(shot).Length > 1000);

        // Remove, confirming the dialog.
        await page.Locator("tr[data-name='phone1'] a").ClickAsync();
        string? asked = null;
        page.Dialog += async (_, dialog) =>
        {
            asked = dialog.Message;
            await dialog.AcceptAsync();
        };
        await page.Locator("#remove").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/\\?removed=phone1$"));
        Assert.Contains("phone1", asked, StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("tr[data-name='phone1']")).ToHaveCountAsync(0);
        Assert.DoesNotContain(Host.Clients.List(), c => c.Name == "phone1");

        // Log out: the page is closed to this browser again.
        await page.Locator("#logout").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/login$"));
        await page.GotoAsync("/");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/login$"));
    }

    [Fact]
    public async Task Dismissing_the_confirmation_keeps_the_client()
    {
        Host.Clients.Add([new Clients.AddRequest("keep1")]);
        var (playwright, browser) = await LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = Host.BaseUrl });
        page.SetDefaultTimeout((float)Deadline.TotalMilliseconds);
        await page.GotoAsync("/login");
        await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
        await page.GetByLabel("Password").FillAsync(WebHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.GotoAsync("/?q=keep1");
        await Assertions.Expect(page.Locator("tr[data-name='keep1']")).ToBeVisibleAsync();
        await page.GotoAsync("/clients/keep1");
        page.Dialog += async (_, dialog) => await dialog.DismissAsync();
        await page.Locator("#remove").ClickAsync();
        await Assertions.Expect(page.Locator("#client-name")).ToHaveTextAsync("keep1");
        Assert.Contains(Host.Clients.List(), c => c.Name == "keep1");
    }

    [Fact]
    public async Task Groups_rules_and_the_check_on_the_access_page()
    {
        var (playwright, browser) = await LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = Host.BaseUrl });
        page.SetDefaultTimeout((float)Deadline.TotalMilliseconds);
        page.Dialog += (_, d) => d.AcceptAsync();
        await page.GotoAsync("/login");
        await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
        await page.GetByLabel("Password").FillAsync(WebHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        Host.Clients.Add([new Clients.AddRequest("brdora")]);

        await page.GetByRole(AriaRole.Link, new() { Name = "Access", Exact = true }).ClickAsync();
        await page.GetByLabel("Name").FillAsync("brwiki");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add group" }).ClickAsync();
        await Assertions.Expect(page.Locator("#groups tr[data-name='brwiki']")).ToBeVisibleAsync();

        await page.GetByLabel("Who").FillAsync("group:brwiki");
        await page.GetByLabel("To", new() { Exact = true }).FillAsync("198.51.100.44");
        await page.GetByLabel("Port").FillAsync("443");
        await page.GetByLabel("Protocol").SelectOptionAsync("tcp");
        await page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        await Assertions.Expect(page.Locator("#rules")).ToContainTextAsync("group:brwiki");

        // Put the client in the group from its page, then ask.
        await page.GotoAsync("/clients/brdora");
        await page.GetByLabel("Groups (comma separated)").FillAsync("brwiki");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Assertions.Expect(page.Locator("#groups")).ToHaveTextAsync("brwiki");
        await page.GotoAsync("/access");
        await page.GetByLabel("Client").FillAsync("brdora");
        await page.GetByLabel("Destination").FillAsync("198.51.100.44:443/tcp");
        await page.GetByRole(AriaRole.Button, new() { Name = "Check" }).ClickAsync();
        await Assertions.Expect(page.Locator("#check-result")).ToContainTextAsync("allow");
        await Assertions.Expect(page.Locator("#check-result")).ToContainTextAsync("group:brwiki -> 198.51.100.44/32 tcp/443");
        await page.ScreenshotAsync(new() { Path = ArtifactPath("access.png"), FullPage = true });

        await page.GotoAsync("/audit?client=brdora");
        await Assertions.Expect(page.Locator("#audit")).ToContainTextAsync("set");
    }
}
