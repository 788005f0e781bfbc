using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using MkbVpn.Admin;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>
/// The logged-in admin's own account: a new password, or the second factor off. Both need the
/// current password (a session left open must not be enough), count as login attempts for the
/// throttle, and end every other session of the admin; this one stays.
/// </summary>
internal static class AccountPage
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/account", (HttpContext ctx, AdminService admins) => Show(ctx, admins, null, 200)).ExcludeFromDescription();
        pages.MapPost("/account/password", ChangePassword).ExcludeFromDescription().FormOnly();
        pages.MapPost("/account/totp-off", TotpOff).ExcludeFromDescription().FormOnly();
    }

    private static IResult Show(HttpContext ctx, AdminService admins, string? error, int status)
    {
        if (Session.Find(ctx) is not { ViaToken: false } me)
            return Views.Message(ctx, "Account", "The account page is for admins logged in on the page (API tokens have no password).", 404);
        var account = admins.ListAdmins().FirstOrDefault(a => string.Equals(a.Name, me.Name, StringComparison.OrdinalIgnoreCase));
        return Slices.Account.Create(new AccountView(Views.Chrome(ctx, "Account"), error, error is null ? Flash.Take(ctx) : null, me.Name, account?.HasTotp == true)).With(status);
    }

    private static async Task<IResult> ChangePassword(HttpContext ctx, AdminService admins, LoginThrottle throttle, ILogger<WebServer> log)
    {
        if (Session.Find(ctx) is not { ViaToken: false, SessionId: { } session } me)
            return Show(ctx, admins, null, 404);
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        string password = form["new"].ToString();
        if (!string.Equals(password, form["repeat"].ToString(), StringComparison.Ordinal))
            return Show(ctx, admins, "The two new passwords differ.", 400);
        if (Passwords.Validate(password) is { } weak)
            return Show(ctx, admins, "New password: " + weak, 400);
        return Checked(ctx, admins, throttle, log, me.Name, () =>
            admins.ChangeOwnPassword(me.Name, form["current"].ToString(), password, session) ? "Password changed. Your other sessions are logged out." : null);
    }

    private static async Task<IResult> TotpOff(HttpContext ctx, AdminService admins, LoginThrottle throttle, ILogger<WebServer> log)
    {
        if (Session.Find(ctx) is not { ViaToken: false, SessionId: { } session } me)
            return Show(ctx, admins, null, 404);
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        return Checked(ctx, admins, throttle, log, me.Name, () =>
            admins.DisableOwnTotp(me.Name, form["current"].ToString(), session) ? "Second factor turned off. Your other sessions are logged out." : null);
    }

    /// <summary>Runs a change that checks the current password under the login throttle; the message on success, or a refusal.</summary>
    private static IResult Checked(HttpContext ctx, AdminService admins, LoginThrottle throttle, ILogger<WebServer> log, string name, Func<string?> change)
    {
        string remote = ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var (attempt, wait) = throttle.Begin(remote, name, null);
        if (attempt is null)
        {
            Log.LoginThrottled(log, remote);
            ctx.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Show(ctx, admins, $"Too many wrong passwords. Try again in {(int)Math.Ceiling(wait.TotalMinutes)} minutes.", 429);
        }
        // Counted as a failed attempt until the current password proves right.
        string? done = change();
        if (done is null)
        {
            Log.LoginFailed(log, remote);
            return Show(ctx, admins, "The current password is wrong.", 403);
        }
        attempt.Succeeded();
        Flash.Set(ctx, done);
        return Results.Redirect("/account");
    }
}
