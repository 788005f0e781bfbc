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

    [Fact]
    public async Task Parallel_logins_with_one_totp_code_open_one_session()
    {
        Host.Admins.AddAdmin("totp-race", "a long enough password");
        string secret = Totp.NewSecret();
        Host.Admins.EnableTotp("totp-race", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        string code = Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Host.Admins.Login("totp-race", "a long enough password", code).Outcome)));
        Assert.Equal(1, outcomes.Count(o => o == LoginOutcome.Ok));
    }

    [Fact]
    public async Task A_right_password_without_its_code_is_told_nothing_more_than_a_wrong_one()
    {
        Host.Admins.AddAdmin("totp-quiet", "a long enough password");
        string secret = Totp.NewSecret();
        Host.Admins.EnableTotp("totp-quiet", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        static string Notice(string page) => Regex.Match(page, "role=\"alert\">([^<]*)<").Groups[1].Value;
        async Task<string> Try(string password)
        {
            using var http = Host.Anonymous();
            string form = await http.GetStringAsync("/login");
            string token = Regex.Match(form, "name=\"_csrf\" value=\"([^\"]+)\"").Groups[1].Value;
            using var r = await http.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = token, ["name"] = "totp-quiet", ["password"] = password }));
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            return Notice(await r.Content.ReadAsStringAsync());
        }
        string right = await Try("a long enough password");
        string wrong = await Try("a wrong password guess");
        Assert.False(string.IsNullOrEmpty(right));
        Assert.Equal(wrong, right);
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
        static List<string> Series(string text) => [.. text.Split('\n').Where(l => l.StartsWith("mkbvpn_http_requests_total{", StringComparison.Ordinal)).Select(l => l[..l.LastIndexOf(' ')])];
        var before = Series(await http.GetStringAsync("/metrics"));
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
        // 40 random methods and 40 random paths made a handful of new series, not 80.
        var added = Series(text).Except(before).ToList();
        Assert.True(added.Count <= 4, $"{added.Count} new series:\n{string.Join('\n', added)}");
    }

    // ---- 5: list limits, and the QR code must fit before anything is committed ----

    [Theory]
    [InlineData("dns", 9)]
    [InlineData("allowed_ips", 65)]
    public async Task Create_through_the_api_keeps_the_services_list_limits(string member, int count)
    {
        using var http = Host.TokenClient();
        string items = string.Join(",", Enumerable.Range(1, count).Select(i => member == "dns" ? $"\"198.51.100.{i}\"" : $"\"198.18.{i}.0/24\""));
        using var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody($$"""{"name":"limit-{{member[0]}}","{{member}}":[{{items}}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.True((await WebHost.Json(r)).GetProperty("errors").TryGetProperty(member, out _));
        Assert.DoesNotContain(Host.Clients.List(), c => c.Name.StartsWith("limit-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_config_too_large_for_a_qr_code_is_refused_with_the_field_named_and_nothing_committed()
    {
        using var http = Host.TokenClient();
        string nets = string.Join(",", Enumerable.Range(0, 64).Select(i => $"\"fd00:1234:5678:9abc:def0:1234:5678:{i:x4}/128\""));
        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody($$"""{"name":"qrbig","allowed_ips":[{{nets}}]}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var p = await WebHost.Json(r);
            Assert.Contains("QR code", p.GetProperty("errors").GetProperty("allowed_ips")[0].GetString(), StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/v1/clients/qrbig")).StatusCode);
        Assert.False(File.Exists(Host.Paths.ClientConfig("qrbig")));

        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"qrsmall"}""")))
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var patch = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/clients/qrsmall") { Content = WebHost.JsonBody($$"""{"allowed_ips":[{{nets}}]}""") };
        using (var r = await http.SendAsync(patch))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.True((await WebHost.Json(r)).GetProperty("errors").TryGetProperty("allowed_ips", out _));
        }
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/clients/qrsmall/qr.svg")).StatusCode);
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

    [Fact]
    public async Task Client_and_access_pages_say_what_was_done_only_when_this_session_did_it()
    {
        var (http, csrf) = await Host.LoginAsync();
        using var _ = http;
        Host.Clients.Add([new Clients.AddRequest("flash1")]);
        Assert.DoesNotContain("flash1 blocked", await http.GetStringAsync("/clients/flash1?done=blocked"), StringComparison.Ordinal);
        Assert.DoesNotContain("flash1 added", await http.GetStringAsync("/clients/flash1?added=1"), StringComparison.Ordinal);
        Assert.DoesNotContain("Rule #99 revoked", await http.GetStringAsync("/access?done=" + Uri.EscapeDataString("Rule #99 revoked")), StringComparison.Ordinal);

        using (var r = await http.PostAsync("/clients/flash1/block", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf })))
            Assert.Equal("/clients/flash1?done=blocked", r.Headers.Location?.ToString());
        Assert.Contains("Client flash1 blocked.", await http.GetStringAsync("/clients/flash1?done=blocked"), StringComparison.Ordinal);
        using (var r = await http.PostAsync("/access/groups", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf, ["name"] = "flashgroup" })))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.Contains("Group flashgroup added.", await http.GetStringAsync("/access"), StringComparison.Ordinal);
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
        Assert.Empty(Host.Clients.AuditLog("lockbusy", null).Items);   // nothing was attempted, nothing recorded
        using (var r = await http.PostAsync("/api/v1/clients", WebHost.JsonBody("""{"name":"lockbusy"}""")))
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }
}

/// <summary>Fault 2: throttling per name and address with growing delays; the real admin's browser is not locked out; check-and-count is atomic.</summary>
public sealed class ThrottleTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private const string Attacker = "203.0.113.66", Office = "198.51.100.7";

    private static void Fail(Auth.LoginThrottle t, string address, string name, string? device = null)
    {
        var (attempt, wait) = t.Begin(address, name, device);
        Assert.NotNull(attempt);
        Assert.Equal(TimeSpan.Zero, wait);
    }

    [Fact]
    public void Failures_from_one_address_slow_that_address_for_that_name_not_the_admin_elsewhere()
    {
        var clock = new ManualClock();
        var t = new Auth.LoginThrottle(clock);
        for (int i = 0; i < Auth.LoginThrottle.PerName; i++)
            Fail(t, Attacker, "alice");
        Assert.Equal(TimeSpan.FromMinutes(1), t.Begin(Attacker, "alice", null).Wait);
        Assert.NotNull(t.Begin(Office, "alice", null).Attempt);       // the real admin, elsewhere
        Assert.NotNull(t.Begin(Attacker, "bob", null).Attempt);       // another name from the attacker's address
    }

    [Fact]
    public void Delays_grow_1_2_4_8_then_15_minutes_and_a_success_clears_them()
    {
        var clock = new ManualClock();
        var t = new Auth.LoginThrottle(clock);
        for (int i = 0; i < Auth.LoginThrottle.PerName; i++)
            Fail(t, Attacker, "alice");
        foreach (int minutes in new[] { 1, 2, 4, 8, 15, 15 })
        {
            Assert.Equal(TimeSpan.FromMinutes(minutes), t.Begin(Attacker, "alice", null).Wait);
            clock.Now += TimeSpan.FromMinutes(minutes) - TimeSpan.FromSeconds(1);
            Assert.Null(t.Begin(Attacker, "alice", null).Attempt);   // not a second early
            clock.Now += TimeSpan.FromSeconds(1);
            Fail(t, Attacker, "alice");
        }
        clock.Now += TimeSpan.FromMinutes(15);
        var (ok, _) = t.Begin(Attacker, "alice", null);
        ok!.Succeeded();
        Fail(t, Attacker, "alice");   // counting starts over
    }

    [Fact]
    public void A_browser_the_admin_logged_in_from_is_not_slowed_by_failures_elsewhere_even_from_the_same_address()
    {
        var clock = new ManualClock();
        var t = new Auth.LoginThrottle(clock);
        string device = t.NewDeviceCookie("alice");
        // Behind an SSH tunnel or a proxy everybody is 127.0.0.1; and guesses spread over many addresses.
        for (int i = 0; i < Auth.LoginThrottle.PerName; i++)
            Fail(t, "127.0.0.1", "alice");
        for (int i = 0; i < Auth.LoginThrottle.PerNameEverywhere - Auth.LoginThrottle.PerName; i++)
            Fail(t, $"198.18.0.{i + 1}", "alice");
        Assert.NotEqual(TimeSpan.Zero, t.Begin("127.0.0.1", "alice", null).Wait);
        Assert.NotEqual(TimeSpan.Zero, t.Begin("198.18.1.1", "alice", null).Wait);   // name-wide ceiling for unknown browsers
        Assert.NotNull(t.Begin("127.0.0.1", "alice", device).Attempt);
        // A device cookie is for its own name, and cannot be forged or moved to another name.
        Assert.Null(t.DeviceOf(device, "bob"));
        Assert.Null(t.DeviceOf(device[..^2] + "xx", "alice"));
        Assert.Null(t.DeviceOf(device.Replace("alice.", "bob.", StringComparison.Ordinal), "bob"));
        Assert.Null(new Auth.LoginThrottle(clock).DeviceOf(device, "alice"));   // another server's key
    }

    [Fact]
    public async Task Thirty_parallel_attempts_get_no_more_password_checks_than_the_limit()
    {
        // Enough threads that the 30 requests really run at once (the pool would otherwise grow slowly on a small machine).
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        await using var host = await WebHost.StartAsync();
        using var http = host.Anonymous();
        string form = await http.GetStringAsync("/login");
        string token = Regex.Match(form, "name=\"_csrf\" value=\"([^\"]+)\"").Groups[1].Value;
        var tasks = Enumerable.Range(0, 30).Select(async i =>
        {
            using var r = await http.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["_csrf"] = token, ["name"] = WebHost.Admin, ["password"] = "wrong password " + i,
            }));
            return r.StatusCode;
        }).ToList();
        var codes = await Task.WhenAll(tasks);
        ThreadPool.SetMinThreads(workers, io);
        Assert.Equal(Auth.LoginThrottle.PerName, codes.Count(c => c == HttpStatusCode.Unauthorized));
        Assert.Equal(30 - Auth.LoginThrottle.PerName, codes.Count(c => c == (HttpStatusCode)429));
    }

    [Fact]
    public async Task An_attacker_at_the_admins_address_does_not_lock_out_the_admins_browser()
    {
        await using var host = await WebHost.StartAsync();
        var (admin, csrf) = await host.LoginAsync();   // the admin's browser, which gets a device cookie
        using (admin)
        {
            using (var r = await admin.PostAsync("/logout", new FormUrlEncodedContent(new Dictionary<string, string> { ["_csrf"] = csrf })))
                Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            using var attacker = host.Anonymous();   // same address (127.0.0.1), no device cookie
            for (int i = 0; i < Auth.LoginThrottle.PerName; i++)
                Assert.Equal(HttpStatusCode.Unauthorized, (await WebHost.TryLoginAsync(attacker, WebHost.Admin, "guess " + i)).Status);
            var (blocked, _) = await WebHost.TryLoginAsync(attacker, WebHost.Admin, WebHost.Password);
            Assert.Equal((HttpStatusCode)429, blocked);
            Assert.Equal(HttpStatusCode.Found, (await WebHost.TryLoginAsync(admin, WebHost.Admin, WebHost.Password)).Status);
        }
    }
}

/// <summary>Fault 3 on the page: an admin changes their own password or turns TOTP off; the other sessions end, this one stays.</summary>
public sealed class AccountPageTests(WebHostFixture fixture) : IClassFixture<WebHostFixture>
{
    private WebHost Host => fixture.Host;

    private static FormUrlEncodedContent Form(string csrf, params (string, string)[] fields) =>
        new(fields.Append(("_csrf", csrf)).ToDictionary(f => f.Item1, f => f.Item2));

    [Fact]
    public async Task Changing_the_password_on_the_page_ends_the_other_sessions_and_keeps_this_one()
    {
        Host.Admins.AddAdmin("self-pw", "the first password");
        var (here, csrf) = await Host.LoginAsync("self-pw", "the first password");
        var (elsewhere, _) = await Host.LoginAsync("self-pw", "the first password");
        using var _1 = here;
        using var _2 = elsewhere;
        Assert.Contains("id=\"change-password\"", await here.GetStringAsync("/account"), StringComparison.Ordinal);

        using (var r = await here.PostAsync("/account/password", Form(csrf, ("current", "not the password"), ("new", "the second password"), ("repeat", "the second password"))))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        using (var r = await here.PostAsync("/account/password", Form(csrf, ("current", "the first password"), ("new", "short"), ("repeat", "short"))))
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal(LoginOutcome.Ok, Host.Admins.Login("self-pw", "the first password", null).Outcome);   // unchanged so far
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/api/v1/status")).StatusCode);

        using (var r = await here.PostAsync("/account/password", Form(csrf, ("current", "the first password"), ("new", "the second password"), ("repeat", "the second password"))))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/account", r.Headers.Location?.ToString());
        }
        Assert.Contains("Password changed.", await here.GetStringAsync("/account"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await elsewhere.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(LoginOutcome.Ok, Host.Admins.Login("self-pw", "the second password", null).Outcome);
        Assert.Equal(LoginOutcome.Failed, Host.Admins.Login("self-pw", "the first password", null).Outcome);
    }

    [Fact]
    public async Task Turning_totp_off_on_the_page_ends_the_other_sessions_and_keeps_this_one()
    {
        Host.Admins.AddAdmin("self-totp", "a long enough password");
        var other = Host.Admins.Login("self-totp", "a long enough password", null);   // another browser, before TOTP was turned on
        using var elsewhere = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(Host.BaseUrl) };
        elsewhere.DefaultRequestHeaders.Add("Cookie", "mkb_session=" + other.SessionCookie);
        string secret = Totp.NewSecret();
        Host.Admins.EnableTotp("self-totp", secret, Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        var (here, csrf) = await Host.LoginAsync("self-totp", "a long enough password", Totp.Code(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
        using var _1 = here;
        Assert.Contains("id=\"totp-off\"", await here.GetStringAsync("/account"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/api/v1/status")).StatusCode);
        using (var r = await here.PostAsync("/account/totp-off", Form(csrf, ("current", "a long enough password"))))
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.False(Host.Admins.ListAdmins().Single(a => a.Name == "self-totp").HasTotp);
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/api/v1/status")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await elsewhere.GetAsync("/api/v1/status")).StatusCode);
    }
}
