using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using MkbVpn.Admin;

namespace MkbVpn.Web.Auth;

/// <summary>
/// The page's session cookie on the framework's cookie handler. The cookie carries the store's
/// session secret itself ("s_ID_SECRET", of which the store keeps a hash), not a serialized ticket:
/// the store stays the one place that says whether a session is alive, so ending sessions there
/// (logout, a new password, TOTP turned off, 'mkb-vpn admin passwd') ends them here at once.
/// </summary>
internal static class SessionCookie
{
    /// <summary>The authentication property that carries the cookie's value between the handler and <see cref="TicketFormat"/>.</summary>
    public const string Item = ".mkb.session";

    public static void Configure(CookieAuthenticationOptions o, AdminService admins)
    {
        o.Cookie.Name = Session.CookieName;
        o.Cookie.HttpOnly = true;
        o.Cookie.SameSite = SameSiteMode.Strict;
        o.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;   // Secure under TLS
        o.Cookie.Path = "/";
        o.Cookie.IsEssential = true;
        o.ExpireTimeSpan = AdminService.SessionLifetime;
        o.SlidingExpiration = false;   // the store's session has a fixed lifetime
        o.LoginPath = "/login";
        o.LogoutPath = "/logout";
        o.TicketDataFormat = new TicketFormat();
        o.Events = new Events(admins);
    }

    /// <summary>Writes the store's session secret as the cookie, and reads it back unchecked (<see cref="Events.ValidatePrincipal"/> checks it).</summary>
    private sealed class TicketFormat : ISecureDataFormat<AuthenticationTicket>
    {
        public string Protect(AuthenticationTicket data) => Protect(data, null);

        public string Protect(AuthenticationTicket data, string? purpose) =>
            data.Properties.Items.TryGetValue(Item, out var cookie) && cookie is not null
                ? cookie
                : throw new InvalidOperationException("a page session is opened by AdminService.Login (the store), never by the cookie handler alone");

        public AuthenticationTicket? Unprotect(string? protectedText) => Unprotect(protectedText, null);

        public AuthenticationTicket? Unprotect(string? protectedText, string? purpose)
        {
            if (Secrets.Parse(protectedText, AdminService.SessionPrefix) is null)
                return null;
            var properties = new AuthenticationProperties();
            properties.Items[Item] = protectedText;
            // No identity yet: only the store can vouch for the session.
            return new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity()), properties, Schemes.Cookie);
        }
    }

    private sealed class Events(AdminService admins) : CookieAuthenticationEvents
    {
        /// <summary>On every request: the session must still be in the store (constant-time hash comparison there), else the cookie counts for nothing.</summary>
        public override Task ValidatePrincipal(CookieValidatePrincipalContext context)
        {
            var principal = admins.Session(context.Properties.Items.TryGetValue(Item, out var cookie) ? cookie : null);
            if (principal?.SessionId is { } id)
                context.ReplacePrincipal(Session.ForSession(principal.Name, id));
            else
                context.RejectPrincipal();
            return Task.CompletedTask;
        }

        /// <summary>Logging out ends the session in the store, not only in this browser.</summary>
        public override Task SigningOut(CookieSigningOutContext context)
        {
            if (Session.Find(context.HttpContext) is { ViaToken: false, SessionId: { } id })
                admins.Logout(id);
            return Task.CompletedTask;
        }

        /// <summary>A page asked without a session goes to the login form (plainly /login: the tests and bookmarks know it).</summary>
        public override Task RedirectToLogin(RedirectContext<CookieAuthenticationOptions> context)
        {
            context.Response.Redirect("/login");
            return Task.CompletedTask;
        }

        public override Task RedirectToAccessDenied(RedirectContext<CookieAuthenticationOptions> context)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return Task.CompletedTask;
        }
    }
}
