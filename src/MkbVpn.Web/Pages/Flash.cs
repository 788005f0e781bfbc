using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>
/// A one-time message for the page after a redirect ("Client bob removed."), carried in a cookie
/// protected by the framework's data protection for this session only (the purpose names the
/// session) and for 5 minutes: a link such as /?removed=bob cannot make the page claim anything,
/// and a message set for one session is not shown in another.
/// </summary>
internal static class Flash
{
    public const string CookieName = "mkb_flash";
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    public static void Set(HttpContext ctx, string message)
    {
        if (Protector(ctx) is not { } protector)
            return;
        var options = Session.CookieOptions(ctx);
        options.MaxAge = Lifetime;
        ctx.Response.Cookies.Append(CookieName, protector.Protect(message, Lifetime), options);
    }

    /// <summary>The message set by this session's previous request, once; null when there is none or it is not this session's.</summary>
    public static string? Take(HttpContext ctx)
    {
        if (ctx.Request.Cookies[CookieName] is not { Length: > 0 } value)
            return null;
        ctx.Response.Cookies.Delete(CookieName, Session.CookieOptions(ctx));
        if (Protector(ctx) is not { } protector)
            return null;
        try
        {
            return protector.Unprotect(value, out _);
        }
        catch (CryptographicException)
        {
            return null;   // another session's, expired, or made up
        }
    }

    private static ITimeLimitedDataProtector? Protector(HttpContext ctx) =>
        Session.Find(ctx) is { ViaToken: false, SessionId: { } session }
            ? ctx.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector("mkb-vpn flash v2", session).ToTimeLimitedDataProtector()
            : null;
}
