using System.Net;
using Microsoft.AspNetCore.Builder;

namespace MkbVpn.Web.Tests;

/// <summary>The page's forms and answers over HTTP: one-click block from the list, the removal's confirmation, antiforgery bound to the session, the server's live state, headers on error pages.</summary>
public sealed class PageTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    private static FormUrlEncodedContent Form(string csrf, params (string, string)[] fields) =>
        new(fields.Append(("_csrf", csrf)).ToDictionary(f => f.Item1, f => f.Item2));

    [Fact]
    public async Task Block_from_the_list_returns_to_the_same_list_and_never_elsewhere()
    {
        Host.Clients.Add([new Clients.AddRequest("listblock1")]);
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        string list = await http.GetStringAsync("/?q=listblock");
        Assert.Contains("action=\"/clients/listblock1/block\"", list, StringComparison.Ordinal);
        using (var r = await http.PostAsync("/clients/listblock1/block", Form(csrf, ("from", "list"), ("q", "listblock"), ("state", "enabled"), ("page", "1"))))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/?q=listblock&state=enabled", r.Headers.Location?.ToString());
        }
        Assert.False(Host.Clients.Get("listblock1").Client.Enabled);
        string after = await http.GetStringAsync("/?q=listblock");
        Assert.Contains("Client listblock1 blocked.", after, StringComparison.Ordinal);
        Assert.Contains("action=\"/clients/listblock1/reenable\"", after, StringComparison.Ordinal);

        // The way back is built from the filter's values, so a form cannot send the browser away.
        using (var r = await http.PostAsync("/clients/listblock1/reenable", Form(csrf, ("from", "list"), ("q", "//evil.example/x"), ("state", "https://evil.example"), ("page", "-3"))))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/?q=%2F%2Fevil.example%2Fx", r.Headers.Location?.ToString());
        }
        Assert.True(Host.Clients.Get("listblock1").Client.Enabled);
    }

    [Fact]
    public async Task The_removal_is_confirmed_on_a_page_of_its_own_before_anything_is_removed()
    {
        Host.Clients.Add([new Clients.AddRequest("confirm1")]);
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        string page = await http.GetStringAsync("/clients/confirm1");
        Assert.DoesNotContain("id=\"confirm-remove\"", page, StringComparison.Ordinal);
        Assert.Contains("href=\"/clients/confirm1?confirm=remove#confirm-remove\"", page, StringComparison.Ordinal);
        string confirm = await http.GetStringAsync("/clients/confirm1?confirm=remove");
        Assert.Contains("id=\"confirm-remove\"", confirm, StringComparison.Ordinal);
        Assert.Contains("<form method=\"post\" action=\"/clients/confirm1/remove\">", confirm, StringComparison.Ordinal);
        Assert.Contains(Host.Clients.List(), c => c.Name == "confirm1");
        using var r = await http.PostAsync("/clients/confirm1/remove", Form(csrf));
        Assert.Equal("/?removed=confirm1", r.Headers.Location?.ToString());
        Assert.DoesNotContain(Host.Clients.List(), c => c.Name == "confirm1");
    }

    [Fact]
    public async Task An_antiforgery_token_works_for_its_own_session_only()
    {
        Host.Clients.Add([new Clients.AddRequest("crosstoken1")]);
        var (mine, _) = await Host.LoginAsync();
        var (theirs, theirCsrf) = await Host.LoginAsync();
        using var _1 = mine;
        using var _2 = theirs;
        using (var r = await mine.PostAsync("/clients/crosstoken1/block", Form(theirCsrf)))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.True(Host.Clients.Get("crosstoken1").Client.Enabled);
        using (var r = await theirs.PostAsync("/clients/crosstoken1/block", Form(theirCsrf)))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.False(Host.Clients.Get("crosstoken1").Client.Enabled);
    }

    [Fact]
    public async Task The_server_page_shows_the_live_interface_and_the_engine()
    {
        var (http, _) = await Host.LoginAsync();
        using var _1 = http;
        string page = await http.GetStringAsync("/server");
        // The test host has no interface: down, and no engine runs.
        Assert.Matches("id=\"interface-state\">Interface <strong>mkbweb0</strong> <span id=\"iface\" class=\"badge offline\">down</span>", page);
        Assert.Contains("no engine runs: start it with <code>mkb-vpn up</code>", page, StringComparison.Ordinal);
        Assert.Contains(System.Text.Encodings.Web.HtmlEncoder.Default.Encode(Host.Clients.GetServer().PublicKey.ToBase64()), page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Error_answers_keep_the_security_headers()
    {
        var (http, _) = await Host.LoginAsync();
        using var _1 = http;
        using var token = Host.TokenClient();
        foreach (var (client, path, status) in new[] { (http, "/clients/nobody-here", HttpStatusCode.NotFound), (token, "/api/v1/clients/nobody-here", HttpStatusCode.NotFound), (http, "/no/such/page", HttpStatusCode.NotFound) })
        {
            using var r = await client.GetAsync(path);
            Assert.Equal(status, r.StatusCode);
            Assert.StartsWith("default-src 'none'", r.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            Assert.Equal("DENY", r.Headers.GetValues("X-Frame-Options").Single());
            Assert.Equal("no-store", r.Headers.CacheControl?.ToString());
        }
    }

    [Fact]
    public async Task A_route_mapped_without_saying_so_is_closed_and_needs_the_antiforgery_token_too()
    {
        int changes = 0;
        await using var host = await WebHost.StartAsync(app => app.MapPost("/probe-unmarked", () => ++changes));
        using (var anon = host.Anonymous())
        using (var r = await anon.PostAsync("/probe-unmarked", new FormUrlEncodedContent([])))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);   // the fallback policy: log in first
        var (http, csrf) = await host.LoginAsync();
        using var _ = http;
        using (var r = await http.PostAsync("/probe-unmarked", new FormUrlEncodedContent([])))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Equal(0, changes);
        using (var r = await http.PostAsync("/probe-unmarked", Form(csrf)))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using var token = host.TokenClient();
        using (var r = await token.PostAsync("/probe-unmarked", null))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(2, changes);
    }
}
