using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using MkbVpn.Admin;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>
/// GET/POST /login and POST /logout. The login form carries a pre-session token that must equal
/// a SameSite=Strict cookie (double submit), so another site cannot log a browser in.
/// </summary>
internal static class LoginPage
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/login", Show).ExcludeFromDescription();
        app.MapPost("/login", Submit).ExcludeFromDescription().DisableAntiforgery();
        app.MapPost("/logout", Logout).ExcludeFromDescription().FormOnly();
    }

    private static IResult Show(HttpContext ctx)
    {
        if (Session.Find(ctx) is not null)
            return Results.Redirect("/");
        return Form(ctx, null, 200);
    }

    private static IResult Form(HttpContext ctx, string? error, int status, string? name = null)
    {
        string token = ctx.Request.Cookies[Session.LoginCookieName] is { Length: 43 } t ? t : Secrets.Base64Url(RandomNumberGenerator.GetBytes(32));
        ctx.Response.Cookies.Append(Session.LoginCookieName, token, Session.CookieOptions(ctx));
        string body = $"""
            <section class="login" aria-labelledby="login-h">
            <h1 id="login-h">Log in</h1>
            {Html.Notice(error, error: true)}
            <form method="post" action="/login">
            <input type="hidden" name="{Session.CsrfField}" value="{Html.E(token)}">
            <label for="name">Admin name</label>
            <input id="name" name="name" autocomplete="username" required maxlength="32" value="{Html.E(name)}" autofocus>
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
            <label for="code">Authenticator code <span class="hint">(only if you turned on a second factor)</span></label>
            <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="8" pattern="[0-9 ]*">
            <button type="submit">Log in</button>
            </form>
            <p class="hint">No admin yet? On the server: <code>mkb-vpn admin add NAME</code></p>
            </section>
            """;
        return Html.Page(ctx, "Log in", body, status);
    }

    private static async Task<IResult> Submit(HttpContext ctx, AdminService admins, LoginThrottle throttle, ILogger<WebServer> log)
    {
        if (!ctx.Request.HasFormContentType)
            return Form(ctx, "Send the login form.", 415);
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        if (!Session.SameSecret(form[Session.CsrfField], ctx.Request.Cookies[Session.LoginCookieName]))
            return Form(ctx, "The form expired. Please try again.", 403);
        string name = form["name"].ToString().Trim();
        string password = form["password"].ToString();
        string? code = form["code"].ToString() is { Length: > 0 } c ? c : null;
        string remote = ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var (attempt, wait) = throttle.Begin(remote, name, ctx.Request.Cookies[LoginThrottle.DeviceCookieName]);
        if (attempt is null)
        {
            Log.LoginThrottled(log, remote);
            ctx.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string when = wait.TotalSeconds < 90 ? $"{(int)Math.Ceiling(wait.TotalSeconds)} seconds" : $"{(int)Math.Ceiling(wait.TotalMinutes)} minutes";
            return Form(ctx, $"Too many failed attempts. Try again in {when}.", 429, name);
        }
        // Counted as failed already (so parallel attempts cannot pass the limit); a success clears it.
        var result = admins.Login(name, password, code);
        if (result.Outcome != LoginOutcome.Ok)
        {
            Log.LoginFailed(log, remote);
            // One message whatever was wrong: "enter the code" only for a right password would tell a guesser it was right.
            return Form(ctx, code is null
                ? "Wrong name or password, or a second factor is on: enter the code from your authenticator app."
                : "Wrong name, password or code.", 401, name);
        }
        attempt.Succeeded();
        var device = Session.CookieOptions(ctx, DateTimeOffset.UtcNow + LoginThrottle.DeviceCookieLifetime);
        device.Path = "/login";
        ctx.Response.Cookies.Append(LoginThrottle.DeviceCookieName, throttle.NewDeviceCookie(result.Principal!.Name), device);
        Log.LoginSucceeded(log, result.Principal!.Name, remote);
        ctx.Response.Cookies.Append(Session.CookieName, result.SessionCookie!, Session.CookieOptions(ctx, DateTimeOffset.UtcNow + AdminService.SessionLifetime));
        ctx.Response.Cookies.Delete(Session.LoginCookieName, Session.CookieOptions(ctx));
        return Results.Redirect("/", permanent: false, preserveMethod: false);
    }

    /// <summary>Ends the session (the CSRF check ran in the middleware).</summary>
    private static IResult Logout(HttpContext ctx, AdminService admins)
    {
        if (Session.Find(ctx) is { SessionId: { } id })
            admins.Logout(id);
        ctx.Response.Cookies.Delete(Session.CookieName, Session.CookieOptions(ctx));
        return Results.Redirect("/login");
    }
}
