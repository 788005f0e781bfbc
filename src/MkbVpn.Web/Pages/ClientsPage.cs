using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using MkbVpn.Clients;
using MkbVpn.Web.Api;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Pages;

/// <summary>The client list (paged and filtered on the server), one client's page, and the form posts behind their buttons.</summary>
internal static class ClientsPage
{
    public const int PageSize = 50;

    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/", List).ExcludeFromDescription();
        pages.MapPost("/clients", Add).ExcludeFromDescription().FormOnly();
        pages.MapGet("/clients/{name}", Detail).ExcludeFromDescription();
        pages.MapPost("/clients/{name}/block", (HttpContext ctx, ClientService s, ILogger<WebServer> log, string name) => Verb(ctx, log, name, "blocked", () => s.Block([name]))).ExcludeFromDescription().FormOnly();
        pages.MapPost("/clients/{name}/reenable", (HttpContext ctx, ClientService s, ILogger<WebServer> log, string name) => Verb(ctx, log, name, "re-enabled", () => s.Reenable([name]))).ExcludeFromDescription().FormOnly();
        pages.MapPost("/clients/{name}/remove", Remove).ExcludeFromDescription().FormOnly();
        pages.MapPost("/clients/{name}/edit", Edit).ExcludeFromDescription().FormOnly();
    }

    /// <summary>The list; after a removal the message comes from the session's flash cookie, never from the query (?removed=NAME only names the page).</summary>
    private static IResult List(HttpContext ctx, ClientService clients, string? q, string? state, string? page) =>
        ListPage(ctx, clients, q, state, page, null, 200, Flash.Take(ctx));

    private static IResult ListPage(HttpContext ctx, ClientService clients, string? q, string? state, string? page, string? error, int status, string? info = null)
    {
        ClientStateFilter filter;
        int p;
        try
        {
            filter = ClientsApi.ParseState(state);
            p = Math.Max(1, ClientsApi.ParseInt(page, "page", 1));
        }
        catch (ApiProblem e)
        {
            (filter, p, error, status) = (ClientStateFilter.All, 1, e.Message, 400);
        }
        if (q is { Length: > 100 })
            q = q[..100];
        var result = clients.Query(q, filter, p, PageSize);
        if (result.Damaged.Count > 0)
            error ??= result.Damaged.Count == 1 ? result.Damaged[0] : $"{result.Damaged.Count} client rows do not parse and are left out ({result.Damaged[0]}; ...)";
        var now = DateTimeOffset.UtcNow;
        var view = new ClientListView(Views.Chrome(ctx, "Clients"), error, info, result.Total,
            filter != ClientStateFilter.All || !string.IsNullOrEmpty(q), result.Server.Interface, result.InterfaceUp,
            q, filter.ToString().ToLowerInvariant(), result.Page, Math.Max(1, (result.Total + PageSize - 1) / PageSize), PageSize,
            [.. result.Items.Select(s => Row(s, now))], now);
        return Slices.Clients.Create(view).With(status);
    }

    internal static ClientRow Row(ClientService.ClientStatus s, DateTimeOffset now) => new(
        s.Client.Name, s.Client.AddressText, s.Client.StateAt(now), s.Client.Enabled, s.Online,
        // Last seen: the live handshake when the interface knows one, else the one the store kept.
        s.Live?.LastHandshake ?? s.Client.LastHandshake,
        s.Live?.Endpoint ?? s.Client.LastEndpoint, s.Live?.RxBytes ?? 0, s.Live?.TxBytes ?? 0);

    private static async Task<IResult> Add(HttpContext ctx, ClientService clients, ILogger<WebServer> log)
    {
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        string name = form["name"].ToString().Trim();
        try
        {
            var request = ClientsApi.ToAddRequest(new CreateClientRequest(name));
            clients.Add([request]);
        }
        catch (UserInputException e)
        {
            return ListPage(ctx, clients, null, null, null, e.Message, Problems.StatusOf(e));
        }
        Log.ClientChanged(log, Session.Of(ctx).Name, "added", name);
        Flash.Set(ctx, $"Client {name} added. Scan the QR code with the WireGuard app, or download the config file.");
        return Results.Redirect($"/clients/{Views.Url(name)}?added=1");
    }

    /// <summary>Block or re-enable: one click from the list (back to the same list) or from the client's page.</summary>
    private static async Task<IResult> Verb(HttpContext ctx, ILogger<WebServer> log, string name, string action, Func<VerbResult> verb)
    {
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        verb();
        Log.ClientChanged(log, Session.Of(ctx).Name, action, name);
        Flash.Set(ctx, $"Client {name} {action}.");
        if (form["from"] == "list")
            return Results.Redirect(BackToList(form["q"], form["state"], form["page"]));
        return Results.Redirect($"/clients/{Views.Url(name)}?done={Views.Url(action)}");
    }

    /// <summary>The list the button was on: always "/" with the filter's own values re-encoded (never an address the form names).</summary>
    private static string BackToList(string? q, string? state, string? page)
    {
        var parts = new List<string>();
        if (!string.IsNullOrEmpty(q) && q.Length <= 100)
            parts.Add("q=" + Views.Url(q));
        if (state is "enabled" or "blocked" or "online" or "offline")
            parts.Add("state=" + state);
        if (int.TryParse(page, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && p > 1)
            parts.Add("page=" + p.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return parts.Count == 0 ? "/" : "/?" + string.Join('&', parts);
    }

    private static IResult Remove(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        var removed = clients.Remove([name]).Clients[0].Name;
        Log.ClientChanged(log, Session.Of(ctx).Name, "removed", removed);
        Flash.Set(ctx, $"Client {removed} removed.");
        return Results.Redirect($"/?removed={Views.Url(removed)}");
    }

    /// <summary>The edit form: groups (comma separated; empty = none), expiry ("never" or a time), a new name. Blank fields stay.</summary>
    private static async Task<IResult> Edit(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        string groups = form["groups"].ToString();
        string expires = form["expires"].ToString().Trim();
        string rename = form["rename"].ToString().Trim();
        try
        {
            var c = clients.Set(new SetRequest(name)
            {
                Groups = [.. groups.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
                Expires = expires.Length > 0 ? expires : null,
                Rename = rename.Length > 0 ? rename : null,
            });
            Log.ClientChanged(log, Session.Of(ctx).Name, "edited", c.Name);
            Flash.Set(ctx, $"Client {c.Name} saved.");
            return Results.Redirect($"/clients/{Views.Url(c.Name)}?done=saved");
        }
        catch (UserInputException e) when (e.ExitCode != ExitCodes.NotFound || e is FieldException)
        {
            return DetailPage(ctx, clients, name, null, e.Message, Problems.StatusOf(e), confirmRemove: false);
        }
    }

    /// <summary>
    /// One client's page; what was just done comes from the session's flash cookie (?added=1 and
    /// ?done=... only name the page). ?confirm=remove shows the removal's confirmation (the step
    /// that works without script).
    /// </summary>
    private static IResult Detail(HttpContext ctx, ClientService clients, string name, string? confirm) =>
        DetailPage(ctx, clients, name, Flash.Take(ctx), null, 200, confirm == "remove");

    /// <summary>The gateways that serve the client and what each reported; null on a single server (no gateways beyond its own).</summary>
    private static List<ClientGatewayRow>? GatewayRows(ClientService clients, Client c)
    {
        if (!clients.HasGateways())
            return null;
        var serving = clients.GatewaysServing(c.Name);
        bool several = serving.Count > 1 && c.PrivateKey is not null;
        return [.. serving.Select(g => new ClientGatewayRow(g.Gateway.Name, g.Gateway.LastSeen is null ? "never seen" : g.Stale ? "stale" : g.Online ? "online" : "offline",
            g.Report?.Endpoint, g.Report?.LastHandshake, g.Report?.RxBytes ?? 0, g.Report?.TxBytes ?? 0, several))];
    }

    private static IResult DetailPage(HttpContext ctx, ClientService clients, string name, string? info, string? error, int status, bool confirmRemove)
    {
        var s = clients.StatusOf(name);
        var now = DateTimeOffset.UtcNow;
        var c = s.Client;
        var gateways = GatewayRows(clients, c);
        // The default config (QR code, download, the config shown) is the client's home gateway's: named when it is not the registry's server.
        string? home = gateways is null ? null : clients.HomeGateway(c.Name)?.Name;
        var view = new ClientView(Views.Chrome(ctx, $"Client {c.Name}"), error, info, Row(s, now), c.PublicKey.ToBase64(), c.Groups,
            c.ExpiresAt is { } ex ? MkbVpn.Access.When.Format(ex) : "never", c.CreatedAt,
            c.PrivateKey is null ? MkbVpn.Configs.ClientConfig.PublicKeyOnlyNote : null, clients.ConfigText(c.Name), confirmRemove, now, gateways, home);
        return Slices.Client.Create(view).With(status);
    }
}
