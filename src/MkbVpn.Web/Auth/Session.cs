using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using MkbVpn.Admin;

namespace MkbVpn.Web.Auth;

/// <summary>
/// Who the request's authenticated principal is, read from the claims the cookie and bearer
/// handlers set (<see cref="Schemes"/>): an admin through a page session, or an API token.
/// </summary>
internal static class Session
{
    public const string CookieName = "mkb_session";
    public const string CsrfHeader = "X-CSRF-Token";
    public const string CsrfField = "_csrf";
    public const string CsrfCookieName = "mkb_csrf";

    public static Principal? Find(HttpContext ctx) => Find(ctx.User);

    public static Principal? Find(ClaimsPrincipal user)
    {
        if (user.Identity is not { IsAuthenticated: true } identity || identity.Name is not { Length: > 0 } name)
            return null;
        bool viaToken = user.FindFirst(Schemes.ViaClaim)?.Value == Schemes.ViaToken;
        return new Principal(name, viaToken, viaToken ? null : user.FindFirst(Schemes.SessionIdClaim)?.Value);
    }

    public static Principal Of(HttpContext ctx) => Find(ctx) ?? throw new InvalidOperationException("request is not authenticated");

    /// <summary>Claims of an admin's page session; the id binds antiforgery tokens to this one session.</summary>
    public static ClaimsPrincipal ForSession(string admin, string sessionId) => new(new ClaimsIdentity(
    [
        new Claim(ClaimTypes.Name, admin),
        new Claim(ClaimTypes.NameIdentifier, "session:" + sessionId),
        new Claim(Schemes.SessionIdClaim, sessionId),
        new Claim(Schemes.ViaClaim, Schemes.ViaPage),
    ], Schemes.Cookie));

    public static ClaimsPrincipal ForToken(string token) => new(new ClaimsIdentity(
    [
        new Claim(ClaimTypes.Name, token),
        new Claim(ClaimTypes.NameIdentifier, "token:" + token),
        new Claim(Schemes.ViaClaim, Schemes.ViaToken),
    ], Schemes.Bearer));

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
