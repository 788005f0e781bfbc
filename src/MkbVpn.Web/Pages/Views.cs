using System.Globalization;
using Microsoft.AspNetCore.Http;
using MkbVpn.Web.Auth;
using RazorSlices;

namespace MkbVpn.Web.Pages;

// The models of the page templates (Pages/Slices/*.cshtml). They are public only because the
// RazorSlices generator makes each template's Create(model) public; they hold plain values.

/// <summary>What the layout needs: the title, who is logged in, and the page session's antiforgery token.</summary>
public sealed record Chrome(string Title, string? Admin, string? Csrf);

/// <summary>An error and a done message, either or both absent.</summary>
public sealed record NoticeView(string? Error, string? Info);

public sealed record MessageView(Chrome Chrome, string Heading, string? Error, string? Info);

public sealed record LoginView(Chrome Chrome, string Token, string? Error, string? Name);

/// <summary>One client as the list and its page show it.</summary>
public sealed record ClientRow(string Name, string Address, string State, bool Enabled, bool Online, DateTimeOffset? LastSeen, string? Endpoint, long RxBytes, long TxBytes);

public sealed record ClientListView(
    Chrome Chrome, string? Error, string? Info, int Total, bool Filtered, string Interface, bool InterfaceUp,
    string? Q, string State, int Page, int Pages, int PageSize, IReadOnlyList<ClientRow> Rows, DateTimeOffset Now);

public sealed record ClientView(
    Chrome Chrome, string? Error, string? Info, ClientRow Client, string PublicKey, IReadOnlyList<string> Groups, string Expires,
    DateTimeOffset CreatedAt, string? PublicKeyOnlyNote, string? Config, bool ConfirmRemove, DateTimeOffset Now,
    IReadOnlyList<ClientGatewayRow>? Gateways = null, string? HomeGateway = null);

/// <summary>One gateway serving a client, with what it reported of it; a config and QR code per gateway when it has more than one.</summary>
public sealed record ClientGatewayRow(string Name, string State, string? Endpoint, DateTimeOffset? LastHandshake, long RxBytes, long TxBytes, bool PerGatewayConfig);

/// <summary>One gateway on the server page.</summary>
public sealed record GatewayRow(string Name, string State, DateTimeOffset? LastSeen, string Engine, string Peers, string Endpoint, int ListenPort,
    string Subnets, int Served, string InternalNetworks);

public sealed record ServerRow(string Label, string Value, string? Id = null, bool Code = false);

public sealed record ServerView(
    Chrome Chrome, string Interface, bool InterfaceUp, string? Engine, string? EngineReason, int Total, int Enabled, int Online,
    IReadOnlyList<ServerRow> Settings, IReadOnlyList<string> InternalNetworks, IReadOnlyList<GatewayRow>? Gateways = null, DateTimeOffset Now = default);

public sealed record RuleRow(long Id, string Who, string To, string Service, string Text);

public sealed record GroupRow(string Name, int Members, int Rules, string Description);

public sealed record CheckView(string Verdict, string Client, string Destination, int? Port, string Proto, IReadOnlyList<RuleRow> Rules, IReadOnlyList<RuleRow> Partial, string? Reason);

public sealed record AccessView(
    Chrome Chrome, string? Error, string? Info, string? Client, string? Destination, CheckView? Check, string? CheckError,
    IReadOnlyList<RuleRow> Rules, IReadOnlyList<GroupRow> Groups);

public sealed record AuditRow(string At, string Actor, string Via, string Action, string Target, string Outcome, string Detail);

public sealed record AuditView(Chrome Chrome, string? Error, string? Client, IReadOnlyList<AuditRow> Rows, int Page, int Pages);

public sealed record AccountView(Chrome Chrome, string? Error, string? Info, string Name, bool HasTotp);

/// <summary>Rendering the templates: the layout's model, the status code, and the formats they share.</summary>
internal static class Views
{
    public static Chrome Chrome(HttpContext ctx, string title)
    {
        var me = Session.Find(ctx);
        return new Chrome(title, me?.Name, me is { ViaToken: false } ? WebSecurity.Token(ctx) : null);
    }

    public static IResult With(this RazorSlice slice, int status)
    {
        slice.StatusCode = status;
        return slice;
    }

    /// <summary>A page with one message: errors, refusals, "not found".</summary>
    public static IResult Message(HttpContext ctx, string title, string message, int status) =>
        Slices.Message.Create(new MessageView(Chrome(ctx, title), title, message, null)).With(status);

    public static string Url(string s) => Uri.EscapeDataString(s);

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

    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    public static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => (n / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (n / 1024.0 / 1024).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        _ => (n / 1024.0 / 1024 / 1024).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
    };
}
