using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using MkbVpn.Admin;
using MkbVpn.Clients;
using MkbVpn.Web;

namespace MkbVpn.Web.Tests;

/// <summary>
/// A real mkb-vpn web server on 127.0.0.1 (port chosen by the OS) over a real SQLite file in a
/// temporary data directory, initialised with the test addresses of docs/testing.md. The WireGuard
/// interface it names does not exist, so the service works store-only.
/// </summary>
public sealed partial class WebHost : IAsyncDisposable
{
    public const string Admin = "admin";
    public const string Password = "correct horse battery staple";
    public const string Interface = "mkbweb0";

    private WebHost(string dir, WebServer server, string token)
    {
        DataDir = dir;
        Server = server;
        Token = token;
        BaseUrl = server.Urls[0].TrimEnd('/');
    }

    public string DataDir { get; }
    public WebServer Server { get; }
    public string Token { get; }
    public string BaseUrl { get; }
    public Paths Paths => new(DataDir);
    public ClientService Clients => new(Paths);
    public AdminService Admins => new(Paths);

    /// <param name="extra">Routes a test adds before the server starts (as another part of the program would).</param>
    public static async Task<WebHost> StartAsync(Action<Microsoft.AspNetCore.Builder.WebApplication>? extra = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mkbvpn-web-" + Guid.NewGuid().ToString("N"));
        var paths = new Paths(dir);
        new ClientService(paths).Init(new InitOptions
        {
            Endpoint = "vpn.example.com",
            Subnet4 = "203.0.113.0/24",
            Subnet6 = "fd00:5eb::/64",
            InternalNetworks = ["198.51.100.0/24"],
            Dns = ["203.0.113.1"],
            Interface = Interface,
        });
        var admins = new AdminService(paths);
        admins.AddAdmin(Admin, Password);
        string token = admins.AddToken("tests");
        var server = WebServer.Create(new WebOptions { DataDir = dir, Listen = "127.0.0.1:0", LogLevel = LogLevel.Warning });
        extra?.Invoke(server.App);
        await server.App.StartAsync();
        return new WebHost(dir, server, token);
    }

    /// <summary>A client that sends the API token.</summary>
    public HttpClient TokenClient()
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(BaseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return http;
    }

    /// <summary>A client with no credentials (cookies kept, redirects not followed).</summary>
    public HttpClient Anonymous() =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(BaseUrl) };

    /// <summary>Logs in through the form like a browser; returns the client (with the session cookie) and the page's CSRF token.</summary>
    public async Task<(HttpClient Http, string Csrf)> LoginAsync(string name = Admin, string password = Password, string? code = null)
    {
        var http = Anonymous();
        var (status, csrf) = await TryLoginAsync(http, name, password, code);
        Assert.Equal(HttpStatusCode.Found, status);
        return (http, csrf!);
    }

    public static async Task<(HttpStatusCode Status, string? Csrf)> TryLoginAsync(HttpClient http, string name, string password, string? code = null)
    {
        string form = await http.GetStringAsync("/login");
        string loginToken = HiddenCsrf().Match(form).Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(loginToken));
        var fields = new Dictionary<string, string> { ["_csrf"] = loginToken, ["name"] = name, ["password"] = password };
        if (code is not null)
            fields["code"] = code;
        using var r = await http.PostAsync("/login", new FormUrlEncodedContent(fields));
        if (r.StatusCode != HttpStatusCode.Found)
            return (r.StatusCode, null);
        string page = await http.GetStringAsync("/");
        return (r.StatusCode, MetaCsrf().Match(page).Groups[1].Value);
    }

    [GeneratedRegex("name=\"_csrf\" value=\"([^\"]+)\"")]
    private static partial Regex HiddenCsrf();

    [GeneratedRegex("name=\"csrf-token\" content=\"([^\"]+)\"")]
    public static partial Regex MetaCsrf();

    public static async Task<JsonElement> Json(HttpResponseMessage r)
    {
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.Clone();
    }

    public static StringContent JsonBody(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

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

/// <summary>One server shared by the tests of a class; each test uses its own client names.</summary>
public sealed class WebHostFixture : IAsyncLifetime
{
    public WebHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await WebHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}
