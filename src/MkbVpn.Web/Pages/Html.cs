using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Http;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>Server-rendered HTML: one layout, every value encoded. No inline scripts or styles (the CSP forbids them).</summary>
internal static class Html
{
    public static string E(string? s) => HtmlEncoder.Default.Encode(s ?? "");

    public static string Url(string s) => Uri.EscapeDataString(s);

    public static IResult Page(HttpContext ctx, string title, string body, int status = 200)
    {
        var principal = Session.Find(ctx);
        string? csrf = Session.CsrfOf(ctx);
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
          .Append("<title>").Append(E(title)).Append(" · mkb-vpn</title>")
          .Append("<link rel=\"stylesheet\" href=\"/static/app.css\">");
        if (csrf is not null)
            sb.Append("<meta name=\"csrf-token\" content=\"").Append(E(csrf)).Append("\">");
        sb.Append("<script src=\"/static/app.js\" defer></script></head><body>");
        sb.Append("<a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\"><span class=\"brand\">mkb-vpn</span>");
        if (principal is not null)
        {
            sb.Append("<nav aria-label=\"Main\"><a href=\"/\">Clients</a><a href=\"/access\">Access</a><a href=\"/audit\">Audit</a><a href=\"/server\">Server</a></nav>");
            if (csrf is not null)
            {
                sb.Append("<form method=\"post\" action=\"/logout\" class=\"logout\">").Append(CsrfInput(ctx))
                  .Append("<a class=\"who\" href=\"/account\" title=\"Your account\">").Append(E(principal.Name)).Append("</a><button type=\"submit\" id=\"logout\">Log out</button></form>");
            }
        }
        sb.Append("</header><main id=\"main\">").Append(body).Append("</main></body></html>");
        return Results.Content(sb.ToString(), "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    public static string CsrfInput(HttpContext ctx) =>
        Session.CsrfOf(ctx) is { } t ? $"<input type=\"hidden\" name=\"{Session.CsrfField}\" value=\"{E(t)}\">" : "";

    public static string Ago(DateTimeOffset? t, DateTimeOffset now)
    {
        if (t is not { } v)
            return "never";
        var d = now - v;
        if (d < TimeSpan.Zero)
            d = TimeSpan.Zero;
        return d.TotalSeconds < 60 ? $"{(int)d.TotalSeconds}s ago"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes}m ago"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours}h ago"
            : $"{(int)d.TotalDays}d ago";
    }

    public static string Time(DateTimeOffset? t, DateTimeOffset now) => t is { } v
        ? $"<time datetime=\"{v.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)}\">{E(Ago(v, now))}</time>"
        : "never";

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => (n / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (n / 1024.0 / 1024).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        _ => (n / 1024.0 / 1024 / 1024).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
    };

    public static string Notice(string? message, bool error) => message is null ? ""
        : error ? $"<p class=\"notice error\" role=\"alert\">{E(message)}</p>"
        : $"<p class=\"notice\" role=\"status\">{E(message)}</p>";
}
