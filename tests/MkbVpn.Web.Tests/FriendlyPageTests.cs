using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace MkbVpn.Web.Tests;

/// <summary>
/// The page on a phone (390×844), in dark mode, one-click block from the list, and the removal's
/// confirmation with and without script, in Debian's chromium. Screenshots go to the test output's
/// artifacts folder; each test prints where.
/// </summary>
public sealed class FriendlyPageTests(WebHostFixture fixture, ITestOutputHelper output) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    private async Task<IPage> LoggedInAsync(IBrowser browser, BrowserNewContextOptions? options = null)
    {
        options ??= new BrowserNewContextOptions();
        options.BaseURL = Host.BaseUrl;
        var context = await browser.NewContextAsync(options);
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout((float)BrowserTests.Deadline.TotalMilliseconds);
        await page.GotoAsync("/login");
        await page.GetByLabel("Admin name").FillAsync(WebHost.Admin);
        await page.GetByLabel("Password").FillAsync(WebHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Clients", Exact = true })).ToBeVisibleAsync();
        return page;
    }

    private async Task ScreenshotAsync(IPage page, string name)
    {
        string path = BrowserTests.ArtifactPath(name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        Assert.True(new FileInfo(path).Length > 1000, $"screenshot {path} is empty");
        output.WriteLine($"screenshot: {path}");
    }

    /// <summary>How far the page is wider than the window (0: no horizontal scrolling).</summary>
    private static Task<int> OverflowAsync(IPage page) =>
        page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");

    [Fact]
    public async Task On_a_phone_nothing_scrolls_sideways_and_add_and_block_work()
    {
        Host.Clients.Add([new Clients.AddRequest("phone-long-1")]);
        var (playwright, browser) = await BrowserTests.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await LoggedInAsync(browser, new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 390, Height = 844 }, IsMobile = true, HasTouch = true, DeviceScaleFactor = 2,
        });

        await page.GotoAsync("/?q=phone-");
        await Assertions.Expect(page.Locator("tr[data-name='phone-long-1']")).ToBeVisibleAsync();
        Assert.Equal(0, await OverflowAsync(page));
        // Each client is a card: its cells stack, so the row is not wider than the screen.
        var card = await page.Locator("tr[data-name='phone-long-1']").BoundingBoxAsync();
        Assert.NotNull(card);
        Assert.True(card.X >= 0 && card.X + card.Width <= 390, $"the card spans {card.X}..{card.X + card.Width}");
        await ScreenshotAsync(page, "phone-list.png");

        // One tap blocks, from the list, and the list says so; another re-enables.
        await page.Locator("tr[data-name='phone-long-1'] button[data-verb]").TapAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/\\?q=phone-$"));
        await Assertions.Expect(page.Locator("tr[data-name='phone-long-1'] [data-field='state']")).ToHaveTextAsync("blocked");
        Assert.False(Host.Clients.Get("phone-long-1").Client.Enabled);
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Client phone-long-1 blocked.");
        await page.Locator("tr[data-name='phone-long-1'] button[data-verb='reenable']").TapAsync();
        await Assertions.Expect(page.Locator("tr[data-name='phone-long-1'] [data-field='state']")).ToHaveTextAsync("enabled");
        Assert.True(Host.Clients.Get("phone-long-1").Client.Enabled);

        // The add form fits and works; the client's page (QR code, download) fits too.
        await page.GetByLabel("New client name").FillAsync("phone-added");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add client" }).TapAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/clients/phone-added\\?added=1$"));
        await page.WaitForFunctionAsync("() => { const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 100; }");
        await Assertions.Expect(page.Locator("#download")).ToBeVisibleAsync();
        Assert.Equal(0, await OverflowAsync(page));
        await ScreenshotAsync(page, "phone-client.png");

        foreach (var path in new[] { "/server", "/access", "/audit", "/account" })
        {
            await page.GotoAsync(path);
            Assert.True(await OverflowAsync(page) == 0, $"{path} scrolls sideways on a phone");
        }
    }

    [Fact]
    public async Task Dark_mode_follows_the_system()
    {
        var (playwright, browser) = await BrowserTests.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        const string Luminance = """
            () => {
              const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
              return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
            }
            """;
        var dark = await LoggedInAsync(browser, new BrowserNewContextOptions { ColorScheme = ColorScheme.Dark });
        double darkBackground = await dark.EvaluateAsync<double>(Luminance);
        Assert.True(darkBackground < 0.2, $"dark mode background luminance {darkBackground}");
        double darkText = await dark.EvaluateAsync<double>("() => { const [r, g, b] = getComputedStyle(document.body).color.match(/\\d+/g).map(Number); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; }");
        Assert.True(darkText > 0.7, $"dark mode text luminance {darkText}");
        await ScreenshotAsync(dark, "dark-list.png");

        var light = await LoggedInAsync(browser, new BrowserNewContextOptions { ColorScheme = ColorScheme.Light });
        double lightBackground = await light.EvaluateAsync<double>(Luminance);
        Assert.True(lightBackground > 0.8, $"light mode background luminance {lightBackground}");
    }

    [Fact]
    public async Task Removing_asks_first_also_without_script()
    {
        Host.Clients.Add([new Clients.AddRequest("noscript1")]);
        var (playwright, browser) = await BrowserTests.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await LoggedInAsync(browser, new BrowserNewContextOptions { JavaScriptEnabled = false });
        await page.GotoAsync("/clients/noscript1");
        await page.Locator("#remove").ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-remove")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#confirm-remove")).ToContainTextAsync("Remove noscript1 for good?");
        Assert.Contains(Host.Clients.List(), c => c.Name == "noscript1");   // asking removed nothing
        await ScreenshotAsync(page, "confirm-remove.png");

        await page.Locator("#cancel-remove").ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-remove")).ToHaveCountAsync(0);
        Assert.Contains(Host.Clients.List(), c => c.Name == "noscript1");

        await page.Locator("#remove").ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Yes, remove noscript1" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/\\?removed=noscript1$"));
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Client noscript1 removed.");
        Assert.DoesNotContain(Host.Clients.List(), c => c.Name == "noscript1");
    }
}
