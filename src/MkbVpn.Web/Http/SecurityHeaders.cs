using Microsoft.AspNetCore.Http;

namespace MkbVpn.Web.Http;

/// <summary>
/// Security headers on every answer, set when the headers go out (so an error page written after the
/// response was cleared has them too): a strict CSP (no inline script or style), no framing, no
/// referrer, no caching except of the static assets, HSTS under TLS.
/// </summary>
internal static class SecurityHeaders
{
    public const string Csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static Task Apply(HttpContext ctx, RequestDelegate next)
    {
        ctx.Response.OnStarting(static state =>
        {
            var ctx = (HttpContext)state;
            var h = ctx.Response.Headers;
            // An endpoint may have set its own (the SVG charts: inline styles, no scripts at all).
            if (string.IsNullOrEmpty(h.ContentSecurityPolicy))
                h.ContentSecurityPolicy = Csp;
            h.XContentTypeOptions = "nosniff";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "no-referrer";
            h.CacheControl = ctx.Request.Path.StartsWithSegments("/static") && ctx.Response.StatusCode == StatusCodes.Status200OK ? "public, max-age=300" : "no-store";
            h.Pragma = default;
            h.Expires = default;
            if (ctx.Request.IsHttps)
                h.StrictTransportSecurity = "max-age=31536000";
            return Task.CompletedTask;
        }, ctx);
        return next(ctx);
    }
}
