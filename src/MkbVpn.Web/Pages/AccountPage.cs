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
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/account", (HttpContext ctx, AdminService admins) => Show(ctx, admins, null, 200)).ExcludeFromDescription();
        app.MapPost("/account/password", ChangePassword).ExcludeFromDescription().FormOnly();
        app.MapPost("/account/totp-off", TotpOff).ExcludeFromDescription().FormOnly();
    }

    private static IResult Show(HttpContext ctx, AdminService admins, string? error, int status)
    {
        if (Session.Find(ctx) is not { ViaToken: false } me)
            return Html.Page(ctx, "Account", $"<h1>Account</h1>{Html.Notice("The account page is for admins logged in on the page (API tokens have no password).", error: true)}", 404);
        var account = admins.ListAdmins().FirstOrDefault(a => string.Equals(a.Name, me.Name, StringComparison.OrdinalIgnoreCase));
        string body = $"""
            <h1>Account <span id="account-name">{Html.E(me.Name)}</span></h1>
            {Html.Notice(error, error: true)}{Html.Notice(Flash.Take(ctx), error: false)}
            <form method="post" action="/account/password" class="edit" aria-labelledby="pw-h">{Html.CsrfInput(ctx)}
            <h2 id="pw-h">Change password</h2>
            <label for="current">Current password</label><input id="current" name="current" type="password" autocomplete="current-password" required maxlength="1024">
            <label for="new">New password</label><input id="new" name="new" type="password" autocomplete="new-password" required maxlength="1024">
            <label for="repeat">New password again</label><input id="repeat" name="repeat" type="password" autocomplete="new-password" required maxlength="1024">
            <button type="submit" id="change-password">Change password</button>
            <p class="hint">Your other sessions (other browsers) are logged out; this one stays.</p>
            </form>
            {(account?.HasTotp == true ? $"""
            <form method="post" action="/account/totp-off" class="edit" aria-labelledby="totp-h">{Html.CsrfInput(ctx)}
            <h2 id="totp-h">Second factor</h2>
            <p>On. Turning it off logs out your other sessions.</p>
            <label for="totp-current">Current password</label><input id="totp-current" name="current" type="password" autocomplete="current-password" required maxlength="1024">
            <button type="submit" class="danger" id="totp-off">Turn off the second factor</button>
            </form>
            """ : "<p class=\"hint\">Second factor: off. Turn it on on the server with <code>mkb-vpn admin totp NAME</code>.</p>")}
            """;
        return Html.Page(ctx, "Account", body, status);
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
