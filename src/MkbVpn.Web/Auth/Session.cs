using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using MkbVpn.Admin;

namespace MkbVpn.Web.Auth;

/// <summary>The request's principal, the session cookie and its CSRF token.</summary>
internal static class Session
{
    public const string CookieName = "mkb_session";
    public const string LoginCookieName = "mkb_login";
    public const string CsrfHeader = "X-CSRF-Token";
    public const string CsrfField = "_csrf";
    private static readonly object Key = new();

    public static Principal? Find(HttpContext ctx) => ctx.Items.TryGetValue(Key, out var p) ? p as Principal : null;

    public static Principal Of(HttpContext ctx) => Find(ctx) ?? throw new InvalidOperationException("request is not authenticated");

    public static void Set(HttpContext ctx, Principal? p) => ctx.Items[Key] = p;

    /// <summary>
    /// The synchronizer token of a session: an HMAC of the session cookie, so it is bound to the
    /// session, needs no storage, and cannot be computed by a page that cannot read the cookie.
    /// </summary>
    public static string CsrfFor(string sessionCookie)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(sessionCookie), "mkb-vpn csrf v1"u8);
        return Secrets.Base64Url(mac);
    }

    public static string? CsrfOf(HttpContext ctx) =>
        Find(ctx) is { ViaToken: false } && ctx.Request.Cookies[CookieName] is { } cookie ? CsrfFor(cookie) : null;

    public static bool SameSecret(string? a, string? b) =>
        a is not null && b is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    public static CookieOptions CookieOptions(HttpContext ctx, DateTimeOffset? expires = null) => new()
    {
        HttpOnly = true,
        Secure = ctx.Request.IsHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Expires = expires,
        IsEssential = true,
    };
}
