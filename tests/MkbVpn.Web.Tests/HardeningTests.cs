using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using MkbVpn.Admin;

namespace MkbVpn.Web.Tests;

/// <summary>The faults of issue 12, each reproduced: TOTP reuse, sessions after a password change, /metrics labels, form routes, 405, reads that write, the lock.</summary>
public sealed class HardeningTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    /// <summary>A client that sends a session cookie it was given (no cookie jar).</summary>
    private HttpClient WithSession(string cookie)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(Host.BaseUrl) };
        http.DefaultRequestHeaders.Add("Cookie", "mkb_session=" + cookie);
        return http;
    }

    // ---- 1: a TOTP code is accepted once ------------------------------------

    [Fact]
    public async Task A_totp_code_logs_in_once_only()
    {
        Host.Admins.AddAdmin("totp-once", "a long enough password");
        string secret = Totp.NewSecret();
        Host.Admins.EnableTotp("totp-once", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        // A code of the next step: valid for the next minute (drift window), not the one used to enable.
        string code = Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1);
        using var first = Host.Anonymous();
        Assert.Equal(HttpStatusCode.Found, (await WebHost.TryLoginAsync(first, "totp-once", "a long enough password", code)).Status);
        using var second = Host.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebHost.TryLoginAsync(second, "totp-once", "a long enough password", code)).Status);
        using var third = Host.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebHost.TryLoginAsync(third, "totp-once", "a long enough password", code)).Status);
        // An older code (an earlier step, still inside the window) is spent too.
        Assert.Equal(LoginOutcome.CodeRequired, Host.Admins.Login("totp-once", "a long enough password", Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow))).Outcome);
    }

    // ---- 3: a new password or TOTP off ends sessions -----------------------

    [Fact]
    public async Task A_new_password_ends_the_admins_sessions_from_the_cli_all_of_them()
    {
        Host.Admins.AddAdmin("pw-change", "the first password");
        var a = Host.Admins.Login("pw-change", "the first password", null);
        var b = Host.Admins.Login("pw-change", "the first password", null);
        var other = Host.Admins.Login(WebHost.Admin, WebHost.Password, null);
        using var ha = WithSession(a.SessionCookie!);
        using var hb = WithSession(b.SessionCookie!);
        using var ho = WithSession(other.SessionCookie!);
        Assert.Equal(HttpStatusCode.OK, (await ha.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await hb.GetAsync("/api/v1/status")).StatusCode);

        Host.Admins.SetPassword("pw-change", "the second password");
        Assert.Equal(HttpStatusCode.Unauthorized, (await ha.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await hb.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ho.GetAsync("/api/v1/status")).StatusCode);   // another admin's session stays

        // Changed from a session of their own: that one stays, the others end.
        var c = Host.Admins.Login("pw-change", "the second password", null);
        var d = Host.Admins.Login("pw-change", "the second password", null);
        Host.Admins.SetPassword("pw-change", "the third password", keepSession: c.Principal!.SessionId);
        using var hc = WithSession(c.SessionCookie!);
        using var hd = WithSession(d.SessionCookie!);
        Assert.Equal(HttpStatusCode.OK, (await hc.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await hd.GetAsync("/api/v1/status")).StatusCode);
    }

    [Fact]
    public async Task Turning_totp_off_ends_the_admins_sessions()
    {
        Host.Admins.AddAdmin("totp-off", "a long enough password");
        string secret = Totp.NewSecret();
        Host.Admins.EnableTotp("totp-off", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        var s = Host.Admins.Login("totp-off", "a long enough password", Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
        Assert.Equal(LoginOutcome.Ok, s.Outcome);
        using var http = WithSession(s.SessionCookie!);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/status")).StatusCode);
        Host.Admins.DisableTotp("totp-off");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/status")).StatusCode);
    }

    // ---- 4: /metrics labels take fixed values -------------------------------

    [Fact]
    public async Task Metrics_labels_take_fixed_values_whatever_methods_and_paths_are_sent()
    {
        using var http = Host.TokenClient();
        for (int i = 0; i < 40; i++)
        {
            using var _ = await http.SendAsync(new HttpRequestMessage(new HttpMethod("XM" + Guid.NewGuid().ToString("N")), "/api/v1/status"));
            using var __ = await http.GetAsync("/nowhere-" + Guid.NewGuid().ToString("N"));
        }
        using (var _ = await http.SendAsync(new HttpRequestMessage(new HttpMethod(new string('Q', 7000)), "/metrics"))) { }
        string text = await http.GetStringAsync("/metrics");
        var series = text.Split('\n').Where(l => l.StartsWith("mkbvpn_http_requests_total{", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(series);
        var methods = series.Select(l => Regex.Match(l, "method=\"([^\"]*)\"").Groups[1].Value).ToHashSet();
        Assert.Subset(new HashSet<string> { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other" }, methods);
        Assert.Contains("other", methods);
        Assert.DoesNotContain(series, l => l.Contains("nowhere-", StringComparison.Ordinal) || l.Contains("XM", StringComparison.Ordinal));
        Assert.Contains(series, l => l.StartsWith("mkbvpn_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"}", StringComparison.Ordinal));
        // 40 random methods and 40 random paths made a handful of series, not 80.
        Assert.True(series.Count < 30, $"{series.Count} series:\n{string.Join('\n', series)}");
    }

    // ---- 6: form routes, flash messages, 405 ---------------------------------

    public static TheoryData<string> FormRoutes => new()
    {
        "/clients", "/clients/formonly/block", "/clients/formonly/reenable", "/clients/formonly/remove", "/clients/formonly/edit",
        "/access/groups", "/access/groups/nogroup/remove", "/access/rules", "/access/rules/1/revoke", "/logout",
    };

    [Theory]
    [MemberData(nameof(FormRoutes))]
    public async Task Form_routes_refuse_other_bodies_with_415_and_change_nothing(string path)
    {
        Host.Clients.Add([new Clients.AddRequest("formonly")]);
        try
        {
            int rules = Host.Clients.ListRules().Count;
            using var token = Host.TokenClient();
            using (var r = await token.PostAsync(path, WebHost.JsonBody("""{"name":"formjson","who":"everyone","to":"internal"}""")))
            {
                Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
                Assert.DoesNotContain("   at ", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            var (http, csrf) = await Host.LoginAsync();
            using (http)
            {
                var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("<x/>", System.Text.Encoding.UTF8, "application/xml") };
                req.Headers.Add("X-CSRF-Token", csrf);
                using var r = await http.SendAsync(req);
                Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
            }
            Assert.DoesNotContain(Host.Clients.List(), c => c.Name == "formjson");
            var still = Host.Clients.Get("formonly").Client;
            Assert.True(still.Enabled);
            Assert.Equal(rules, Host.Clients.ListRules().Count);
        }
        finally
        {
            Host.Clients.Remove(["formonly"]);
        }
    }

    [Fact]
    public async Task The_list_says_removed_only_after_a_removal_by_this_session()
    {
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        string forged = await http.GetStringAsync("/?removed=ghost1");
        Assert.DoesNotContain("removed", Regex.Replace(forged, "<[^>]*>", ""), StringComparison.OrdinalIgnoreCase);

        Host.Clients.Add([new Clients.AddRequest("gone1")]);
        using (var r = await http.PostAsync("/clients/gone1/remove", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf })))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/?removed=gone1", r.Headers.Location?.ToString());
        }
        string after = await http.GetStringAsync("/?removed=gone1");
        Assert.Contains("Client gone1 removed.", after, StringComparison.Ordinal);
        string again = await http.GetStringAsync("/?removed=gone1");   // once
        Assert.DoesNotContain("Client gone1 removed.", again, StringComparison.Ordinal);

        // A flash cookie made for another session says nothing here.
        var (other, otherCsrf) = await Host.LoginAsync();
        using var __ = other;
        Host.Clients.Add([new Clients.AddRequest("gone2")]);
        using var r2 = await other.PostAsync("/clients/gone2/remove", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = otherCsrf }));
        string flash = r2.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("mkb_flash=", StringComparison.Ordinal)).Split(';')[0];
        var req = new HttpRequestMessage(HttpMethod.Get, "/?removed=gone2");
        req.Headers.Add("Cookie", flash);
        using var r3 = await http.SendAsync(req);
        Assert.DoesNotContain("gone2 removed", await r3.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/api/v1/clients/someone/block", "POST")]
    [InlineData("DELETE", "/api/v1/status", "GET")]
    [InlineData("PUT", "/api/v1/clients", "GET, POST")]
    [InlineData("GET", "/clients/someone/remove", "POST")]
    [InlineData("DELETE", "/metrics", "GET")]
    public async Task A_wrong_method_on_a_known_route_is_405_with_allow(string method, string path, string allow)
    {
        using var http = Host.TokenClient();
        using var r = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, r.StatusCode);
        Assert.Equal(allow, string.Join(", ", r.Content.Headers.Allow));
        using var unknown = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/api/v1/no-such-thing"));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    // ---- 7: reads do not write; no request hangs on the lock --------------------

    [Fact]
    public async Task Metrics_and_other_reads_do_not_write_to_the_database()
    {
        using var http = Host.TokenClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/metrics")).StatusCode);
        using var db = new SqliteConnection($"Data Source={Host.Paths.Database};Mode=ReadOnly;Pooling=False");
        db.Open();
        long DataVersion()
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = "PRAGMA data_version;";
            return (long)cmd.ExecuteScalar()!;
        }
        long before = DataVersion();
        foreach (var path in new[] { "/metrics", "/metrics", "/api/v1/clients", "/api/v1/status", "/metrics" })
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(path)).StatusCode);
        Assert.Equal(before, DataVersion());
        // A change records the token's use (it writes anyway): the admin still sees the token at work.
        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"readonly1"}""")))
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        Assert.NotEqual(before, DataVersion());
        Assert.NotNull(Host.Admins.ListTokens().Single(t => t.Name == "tests").LastUsedAt);
    }

    [Fact]
    public async Task A_change_while_another_command_holds_the_lock_is_a_503_not_a_hang()
    {
        using var http = Host.TokenClient();
        http.Timeout = TimeSpan.FromSeconds(30);   // a deadline: the old code waited 60 s for the lock
        using (Sys.Lock(Host.Paths.LockFile, TimeSpan.FromSeconds(10)))
        {
            using var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"lockbusy"}"""));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(r.Headers.RetryAfter);
            Assert.Contains("lock", (await WebHost.Json(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
            // Reads go on while the lock is held.
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/clients")).StatusCode);
        }
        Assert.DoesNotContain(Host.Clients.List(), c => c.Name == "lockbusy");
        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"lockbusy"}""")))
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }
}
