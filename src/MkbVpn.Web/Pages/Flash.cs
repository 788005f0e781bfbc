using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using MkbVpn.Admin;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>
/// A one-time message for the page after a redirect ("Client bob removed."), carried in a cookie
/// signed with the session: a link such as /?removed=bob cannot make the page claim anything, and a
/// message set for one session is not shown in another.
/// </summary>
internal static class Flash
{
    public const string CookieName = "mkb_flash";

    public static void Set(HttpContext ctx, string message)
    {
        if (ctx.Request.Cookies[Session.CookieName] is not { Length: > 0 } session)
            return;
        string value = Secrets.Base64Url(Encoding.UTF8.GetBytes(message)) + "." + Mac(session, message);
        var options = Session.CookieOptions(ctx);
        options.MaxAge = TimeSpan.FromMinutes(5);
        ctx.Response.Cookies.Append(CookieName, value, options);
    }

    /// <summary>The message set by this session's previous request, once; null when there is none or it is not this session's.</summary>
    public static string? Take(HttpContext ctx)
    {
        if (ctx.Request.Cookies[CookieName] is not { Length: > 0 } value)
            return null;
        ctx.Response.Cookies.Delete(CookieName, Session.CookieOptions(ctx));
        if (ctx.Request.Cookies[Session.CookieName] is not { Length: > 0 } session || Session.Find(ctx) is not { ViaToken: false })
            return null;
        int dot = value.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0)
            return null;
        string message;
        try
        {
            message = Encoding.UTF8.GetString(Convert.FromBase64String(FromUrl(value[..dot])));
        }
        catch (FormatException)
        {
            return null;
        }
        return Session.SameSecret(value[(dot + 1)..], Mac(session, message)) ? message : null;
    }

    private static string Mac(string session, string message) =>
        Secrets.Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(session), Encoding.UTF8.GetBytes("mkb-vpn flash v1\n" + message)));

    private static string FromUrl(string s)
    {
        s = s.Replace('-', '+').Replace('_', '/');
        return s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
    }
}
