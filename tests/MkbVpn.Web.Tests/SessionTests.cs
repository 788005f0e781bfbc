using System.Net;
using MkbVpn.Admin;

namespace MkbVpn.Web.Tests;

/// <summary>Login, session cookies, CSRF, logout, throttling and TOTP.</summary>
public sealed class SessionTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    [Fact]
    public async Task Login_sets_a_strict_httponly_session_cookie_storing_only_a_hash()
    {
        using var http = Host.Anonymous();
        string form = await http.GetStringAsync("/login");
        string token = System.Text.RegularExpressions.Regex.Match(form, "name=\"_csrf\" value=\"([^\"]+)\"").Groups[1].Value;
        using var r = await http.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_csrf"] = token, ["name"] = WebHost.Admin, ["password"] = WebHost.Password,
        }));
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        string cookie = r.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("mkb_session=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", cookie, StringComparison.OrdinalIgnoreCase);   // plain HTTP on loopback; Secure under TLS
        string value = cookie.Split(';')[0]["mkb_session=".Length..];
        Assert.NotNull(Host.Admins.Session(value));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/clients")).StatusCode);
    }

    [Fact]
    public async Task Login_form_without_its_token_is_refused()
    {
        using var http = Host.Anonymous();
        using var r = await http.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_csrf"] = "forged", ["name"] = WebHost.Admin, ["password"] = WebHost.Password,
        }));
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.DoesNotContain(r.Headers.TryGetValues("Set-Cookie", out var c) ? c : [], v => v.StartsWith("mkb_session=s_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Wrong_password_is_401_with_a_message_that_tells_nothing()
    {
        using var http = Host.Anonymous();
        var (status, _) = await WebHost.TryLoginAsync(http, WebHost.Admin, "wrong password here");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        var (unknown, _) = await WebHost.TryLoginAsync(http, "nobody-at-all", "wrong password here");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown);
        Assert.Equal(HttpStatusCode.Found, (await http.GetAsync("/")).StatusCode);   // still not logged in: redirected to /login
    }

    [Fact]
    public async Task Cookie_requests_that_change_state_need_the_csrf_token_bearer_requests_do_not()
    {
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        int before = Host.Clients.List().Count;
        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"csrf1"}""")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        }
        var wrong = new HttpRequestMessage(HttpMethod.Post, "/api/v1/clients") { Content = WebHost.JsonBody("""{"name":"csrf1"}""") };
        wrong.Headers.Add("X-CSRF-Token", csrf[..^2] + "xx");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(wrong)).StatusCode);
        using (var r = await http.PostAsync("/clients", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "csrf1" })))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Equal(before, Host.Clients.List().Count);

        var right = new HttpRequestMessage(HttpMethod.Post, "/api/v1/clients") { Content = WebHost.JsonBody("""{"name":"csrf1"}""") };
        right.Headers.Add("X-CSRF-Token", csrf);
        Assert.Equal(HttpStatusCode.Created, (await http.SendAsync(right)).StatusCode);
        using (var r = await http.PostAsync("/clients/csrf1/block", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf })))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.False(Host.Clients.Get("csrf1").Client.Enabled);

        using var token = Host.TokenClient();
        Assert.Equal(HttpStatusCode.OK, (await token.PostAsync("/api/v1/clients/csrf1/reenable", null)).StatusCode);
        Assert.True(Host.Clients.Get("csrf1").Client.Enabled);
    }

    [Fact]
    public async Task Logout_ends_the_session_on_the_server()
    {
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/status")).StatusCode);
        using (var r = await http.PostAsync("/logout", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf })))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/login", r.Headers.Location?.ToString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/status")).StatusCode);
    }

    [Fact]
    public async Task Pages_need_a_login_and_escape_what_they_show()
    {
        using var anon = Host.Anonymous();
        foreach (var path in new[] { "/", "/server", "/clients/anything" })
        {
            using var r = await anon.GetAsync(path);
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/login", r.Headers.Location?.ToString());
        }
        var (http, _) = await Host.LoginAsync();
        using var __ = http;
        string page = await http.GetStringAsync("/?q=" + Uri.EscapeDataString("<script>alert(1)</script>"));
        Assert.DoesNotContain("<script>alert(1)", page, StringComparison.Ordinal);
        string server = await http.GetStringAsync("/server");
        Assert.Contains("198.51.100.0/24", server, StringComparison.Ordinal);
        Assert.DoesNotContain(Host.Clients.GetServer().PrivateKey.ToBase64(), server, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_attempts_are_throttled_per_name()
    {
        await using var host = await WebHost.StartAsync();
        using var http = host.Anonymous();
        for (int i = 0; i < Auth.LoginThrottle.PerName; i++)
            Assert.Equal(HttpStatusCode.Unauthorized, (await WebHost.TryLoginAsync(http, WebHost.Admin, "not the password " + i)).Status);
        var (blocked, _) = await WebHost.TryLoginAsync(http, WebHost.Admin, WebHost.Password);
        Assert.Equal((HttpStatusCode)429, blocked);   // even the right password waits: the limit is per name and address
    }

    [Fact]
    public async Task Totp_second_factor_for_the_page_while_tokens_keep_working()
    {
        await using var host = await WebHost.StartAsync();
        host.Admins.AddAdmin("two", "another long password");
        string secret = Totp.NewSecret();
        Assert.Throws<UserInputException>(() => host.Admins.EnableTotp("two", secret, "000000" == Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)) ? "111111" : "000000"));
        host.Admins.EnableTotp("two", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        using var http = host.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebHost.TryLoginAsync(http, "two", "another long password")).Status);
        Assert.Equal(HttpStatusCode.Found, (await WebHost.TryLoginAsync(http, "two", "another long password", Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)))).Status);
        using var token = host.TokenClient();
        Assert.Equal(HttpStatusCode.OK, (await token.GetAsync("/api/v1/clients")).StatusCode);
    }
}

/// <summary>Password hashes, secrets and TOTP against their specifications.</summary>
public sealed class SecretTests
{
    [Fact]
    public void Password_hashes_are_salted_slow_and_verified()
    {
        string a = Passwords.Hash("correct horse battery", iterations: 1000);
        string b = Passwords.Hash("correct horse battery", iterations: 1000);
        Assert.NotEqual(a, b);
        Assert.True(Passwords.Verify("correct horse battery", a));
        Assert.False(Passwords.Verify("correct horse batterx", a));
        Assert.False(Passwords.Verify("correct horse battery", null));
        Assert.False(Passwords.Verify("x", "garbage"));
        Assert.StartsWith("pbkdf2-sha256$600000$", Passwords.Hash("some password"), StringComparison.Ordinal);
    }

    [Fact]
    public void Totp_matches_RFC_6238_test_vectors()
    {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890"; 6 digits are the last 6 of the 8 given.
        string secret = Totp.Base32("12345678901234567890"u8);
        Assert.Equal("287082", Totp.Code(secret, 59 / 30));
        Assert.Equal("081804", Totp.Code(secret, 1111111109 / 30));
        Assert.Equal("005924", Totp.Code(secret, 1234567890 / 30));
        Assert.Equal("279037", Totp.Code(secret, 2000000000 / 30));
        var t = DateTimeOffset.FromUnixTimeSeconds(1111111109);
        Assert.True(Totp.Verify(secret, "081804", t));
        Assert.True(Totp.Verify(secret, "081 804", t.AddSeconds(25)));
        Assert.False(Totp.Verify(secret, "081804", t.AddMinutes(5)));
        Assert.False(Totp.Verify(secret, "08180", t));
    }

    [Fact]
    public void Tokens_parse_only_in_their_own_shape()
    {
        var (id, secret, whole) = Secrets.New(Secrets.TokenPrefix);
        Assert.Equal((id, secret), Secrets.Parse(whole, Secrets.TokenPrefix));
        Assert.Null(Secrets.Parse(whole, "s_"));
        Assert.Null(Secrets.Parse("mkbv_short", Secrets.TokenPrefix));
        Assert.True(Secrets.Matches(secret, Secrets.HashOf(secret)));
        Assert.False(Secrets.Matches(secret + "x", Secrets.HashOf(secret)));
    }
}
