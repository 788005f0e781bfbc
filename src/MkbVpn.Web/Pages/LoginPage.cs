using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using MkbVpn.Admin;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>
/// GET/POST /login and POST /logout. The login form carries an antiforgery token (bound to its
/// SameSite=Strict cookie), so another site cannot log a browser in; the session is opened in the
/// store and handed to the cookie scheme.
/// </summary>
internal static class LoginPage
{
    public static void Map(IEndpointRouteBuilder app, RouteGroupBuilder pages)
    {
        app.MapGet("/login", Show).ExcludeFromDescription().AllowAnonymous();
        // Checks its antiforgery token itself, to answer with the form again rather than a bare refusal.
        app.MapPost("/login", Submit).ExcludeFromDescription().AllowAnonymous().DisableAntiforgery();
        pages.MapPost("/logout", (Delegate)Logout).ExcludeFromDescription().FormOnly();
    }

    private static IResult Show(HttpContext ctx)
    {
        if (Session.Find(ctx) is not null)
            return Results.Redirect("/");
        return Form(ctx, null, 200);
    }

    private static IResult Form(HttpContext ctx, string? error, int status, string? name = null) =>
        Slices.Login.Create(new LoginView(Views.Chrome(ctx, "Log in"), WebSecurity.Token(ctx), error, name)).With(status);

    private static async Task<IResult> Submit(HttpContext ctx, AdminService admins, LoginThrottle throttle, IAntiforgery antiforgery, ILogger<WebServer> log)
    {
        if (!ctx.Request.HasFormContentType)
            return Form(ctx, "Send the login form.", 415);
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        if (!await antiforgery.IsRequestValidAsync(ctx))
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
        if (result is not { Outcome: LoginOutcome.Ok, SessionCookie: { } cookie, Principal: { SessionId: { } sessionId } admin })
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
        ctx.Response.Cookies.Append(LoginThrottle.DeviceCookieName, throttle.NewDeviceCookie(admin.Name), device);
        Log.LoginSucceeded(log, admin.Name, remote);
        var properties = new AuthenticationProperties { IsPersistent = true, ExpiresUtc = DateTimeOffset.UtcNow + AdminService.SessionLifetime };
        properties.Items[SessionCookie.Item] = cookie;
        await ctx.SignInAsync(Schemes.Cookie, Session.ForSession(admin.Name, sessionId), properties);
        return Results.Redirect("/", permanent: false, preserveMethod: false);
    }

    /// <summary>Ends the session in the store and in the browser (the cookie scheme's SigningOut event).</summary>
    private static async Task<IResult> Logout(HttpContext ctx)
    {
        await ctx.SignOutAsync(Schemes.Cookie);
        return Results.Redirect("/login");
    }
}
