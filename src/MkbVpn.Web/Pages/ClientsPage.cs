using System.Text;
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

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", List).ExcludeFromDescription();
        app.MapPost("/clients", Add).ExcludeFromDescription().FormOnly();
        app.MapGet("/clients/{name}", Detail).ExcludeFromDescription();
        app.MapPost("/clients/{name}/block", (HttpContext ctx, ClientService s, ILogger<WebServer> log, string name) => Verb(ctx, log, name, "blocked", () => s.Block([name]))).ExcludeFromDescription().FormOnly();
        app.MapPost("/clients/{name}/reenable", (HttpContext ctx, ClientService s, ILogger<WebServer> log, string name) => Verb(ctx, log, name, "re-enabled", () => s.Reenable([name]))).ExcludeFromDescription().FormOnly();
        app.MapPost("/clients/{name}/remove", Remove).ExcludeFromDescription().FormOnly();
        app.MapPost("/clients/{name}/edit", Edit).ExcludeFromDescription().FormOnly();
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
            p = ClientsApi.ParseInt(page, "page", 1);
            if (p < 1)
                p = 1;
        }
        catch (ApiProblem e)
        {
            (filter, p, error, status) = (ClientStateFilter.All, 1, e.Message, 400);
        }
        var result = clients.Query(q, filter, p, PageSize);
        int pages = Math.Max(1, (result.Total + PageSize - 1) / PageSize);
        var now = DateTimeOffset.UtcNow;
        string stateName = filter.ToString().ToLowerInvariant();
        var sb = new StringBuilder();
        sb.Append("<h1>Clients</h1>").Append(Html.Notice(error, error: true)).Append(Html.Notice(info, error: false));
        sb.Append($"""
            <p id="summary" class="summary">{result.Total} {(filter == ClientStateFilter.All && string.IsNullOrEmpty(q) ? "clients" : "matching clients")} ·
            interface {Html.E(result.Server.Interface)} <span id="iface" class="badge {(result.InterfaceUp ? "online" : "offline")}">{(result.InterfaceUp ? "up" : "down")}</span>
            · <span aria-live="polite">status updated <span id="updated">now</span></span></p>
            <div class="bar">
            <form method="post" action="/clients" class="add" aria-labelledby="add-h">
            {Html.CsrfInput(ctx)}
            <h2 id="add-h" class="sr">Add client</h2>
            <label for="new-name">New client name</label>
            <input id="new-name" name="name" required maxlength="15" pattern="[A-Za-z0-9][A-Za-z0-9_=+.\-]*" title="at most 15 of a-z A-Z 0-9 _ = + . - starting with a letter or digit" placeholder="e.g. alice-phone">
            <button type="submit" id="add">Add client</button>
            </form>
            <form method="get" action="/" role="search" class="search">
            <label for="q">Search</label>
            <input id="q" name="q" type="search" value="{Html.E(q)}" maxlength="100" placeholder="name or address">
            <label for="state">Show</label>
            <select id="state" name="state">
            """);
        foreach (var s in new[] { "all", "enabled", "blocked", "online", "offline" })
            sb.Append($"<option value=\"{s}\"{(s == stateName ? " selected" : "")}>{s}</option>");
        sb.Append("</select><button type=\"submit\">Filter</button></form></div>");
        sb.Append($"<table id=\"clients\" data-page=\"{result.Page}\" data-page-size=\"{PageSize}\" data-q=\"{Html.E(q)}\" data-state=\"{stateName}\">");
        sb.Append("<caption class=\"sr\">Clients, page ").Append(result.Page).Append(" of ").Append(pages).Append("</caption>");
        sb.Append("<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Address</th><th scope=\"col\">State</th><th scope=\"col\">Status</th>" +
                  "<th scope=\"col\">Latest handshake</th><th scope=\"col\">Endpoint</th><th scope=\"col\">Received</th><th scope=\"col\">Sent</th></tr></thead><tbody>");
        foreach (var s in result.Items)
        {
            var d = ClientDto.Of(s);
            sb.Append($"<tr data-name=\"{Html.E(d.Name)}\"><th scope=\"row\"><a href=\"/clients/{Html.Url(d.Name)}\">{Html.E(d.Name)}</a></th>")
              .Append($"<td>{Html.E(s.Client.AddressText)}</td>")
              .Append($"<td data-field=\"state\"><span class=\"badge {d.State}\">{d.State}</span></td>")
              .Append($"<td data-field=\"online\"><span class=\"badge {(d.Online ? "online" : "offline")}\">{(d.Online ? "online" : "offline")}</span></td>")
              .Append($"<td data-field=\"handshake\">{Html.Time(d.LatestHandshake, now)}</td>")
              .Append($"<td data-field=\"endpoint\">{Html.E(d.Endpoint ?? "-")}</td>")
              .Append($"<td data-field=\"rx\">{Html.Bytes(d.RxBytes)}</td><td data-field=\"tx\">{Html.Bytes(d.TxBytes)}</td></tr>");
        }
        if (result.Items.Count == 0)
            sb.Append("<tr><td colspan=\"8\" class=\"empty\">No clients here yet. Add one above.</td></tr>");
        sb.Append("</tbody></table>");
        string Link(int to) => $"/?page={to}" + (string.IsNullOrEmpty(q) ? "" : "&q=" + Html.Url(q)) + (filter == ClientStateFilter.All ? "" : "&state=" + stateName);
        sb.Append("<nav class=\"pages\" aria-label=\"Pages\">");
        sb.Append(result.Page > 1 ? $"<a href=\"{Html.E(Link(result.Page - 1))}\" rel=\"prev\">← Previous</a>" : "<span></span>");
        sb.Append($"<span>Page {result.Page} of {pages}</span>");
        sb.Append(result.Page < pages ? $"<a href=\"{Html.E(Link(result.Page + 1))}\" rel=\"next\">Next →</a>" : "<span></span>");
        sb.Append("</nav>");
        return Html.Page(ctx, "Clients", sb.ToString(), status);
    }

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
        return Results.Redirect($"/clients/{Html.Url(name)}?added=1");
    }

    private static IResult Verb(HttpContext ctx, ILogger<WebServer> log, string name, string action, Func<VerbResult> verb)
    {
        verb();
        Log.ClientChanged(log, Session.Of(ctx).Name, action, name);
        Flash.Set(ctx, $"Client {name} {action}.");
        return Results.Redirect($"/clients/{Html.Url(name)}?done={Html.Url(action)}");
    }

    private static IResult Remove(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        var removed = clients.Remove([name]).Clients[0].Name;
        Log.ClientChanged(log, Session.Of(ctx).Name, "removed", removed);
        Flash.Set(ctx, $"Client {removed} removed.");
        return Results.Redirect($"/?removed={Html.Url(removed)}");
    }

    /// <summary>The edit form: groups (comma separated; empty = none), expiry ("never" or a time), a new name. Blank fields stay.</summary>
    private static async Task<IResult> Edit(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        if (!ctx.Request.HasFormContentType)
            return DetailPage(ctx, clients, name, null, FormRoutes.Refusal, 415);
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
            return Results.Redirect($"/clients/{Html.Url(c.Name)}?done=saved");
        }
        catch (UserInputException e) when (e.ExitCode != ExitCodes.NotFound || e is FieldException)
        {
            return DetailPage(ctx, clients, name, null, e.Message, Problems.StatusOf(e));
        }
    }

    /// <summary>One client's page; what was just done comes from the session's flash cookie (?added=1 and ?done=... only name the page).</summary>
    private static IResult Detail(HttpContext ctx, ClientService clients, string name) =>
        DetailPage(ctx, clients, name, Flash.Take(ctx), null, 200);

    private static IResult DetailPage(HttpContext ctx, ClientService clients, string name, string? info, string? error, int status)
    {
        var s = clients.StatusOf(name);
        var d = ClientDto.Of(s);
        string config = clients.ConfigText(name);
        var now = DateTimeOffset.UtcNow;
        string n = Html.Url(d.Name);
        string notice = Html.Notice(info, error: false) + Html.Notice(error, error: true);
        string expiresText = d.ExpiresAt is { } ex ? MkbVpn.Access.When.Format(ex) : "never";
        string body = $"""
            <h1>Client <span id="client-name">{Html.E(d.Name)}</span></h1>
            {notice}
            <div class="detail">
            {(d.PublicKeyOnly ? $"<p class=\"notice\" id=\"public-key-only\">{Html.E(d.Name)} was {Html.E(MkbVpn.Configs.ClientConfig.PublicKeyOnlyNote)}.</p>" : $"""
            <figure class="qr"><img id="qr" src="/api/v1/clients/{n}/qr.svg" alt="QR code of the config of {Html.E(d.Name)}, for the WireGuard app" width="280" height="280">
            <figcaption>WireGuard app: + › Scan from QR code</figcaption></figure>
            """)}
            <dl class="facts" data-name="{Html.E(d.Name)}">
            <dt>Address</dt><dd>{Html.E(s.Client.AddressText)}</dd>
            <dt>State</dt><dd id="state"><span class="badge {d.State}">{d.State}</span></dd>
            <dt>Status</dt><dd><span class="badge {(d.Online ? "online" : "offline")}">{(d.Online ? "online" : "offline")}</span></dd>
            <dt>Latest handshake</dt><dd>{Html.Time(d.LatestHandshake, now)}</dd>
            <dt>Endpoint</dt><dd>{Html.E(d.Endpoint ?? "-")}</dd>
            <dt>Received / sent</dt><dd>{Html.Bytes(d.RxBytes)} / {Html.Bytes(d.TxBytes)}</dd>
            <dt>Public key</dt><dd><code>{Html.E(d.PublicKey)}</code></dd>
            <dt>Groups</dt><dd id="groups">{Html.E(d.Groups.Count == 0 ? "none" : string.Join(", ", d.Groups))}</dd>
            <dt>Expires</dt><dd id="expires">{Html.E(expiresText)}</dd>
            <dt>Created</dt><dd>{Html.E(d.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture))}</dd>
            </dl>
            </div>
            <form method="post" action="/clients/{n}/edit" class="edit" aria-labelledby="edit-h">{Html.CsrfInput(ctx)}
            <h2 id="edit-h">Edit</h2>
            <label for="edit-groups">Groups (comma separated)</label><input id="edit-groups" name="groups" maxlength="500" value="{Html.E(string.Join(", ", d.Groups))}">
            <label for="edit-expires">New expiry (now: {Html.E(expiresText)})</label><input id="edit-expires" name="expires" maxlength="40" placeholder="2026-12-31, 14d or never; blank keeps it">
            <label for="edit-rename">New name</label><input id="edit-rename" name="rename" maxlength="15" pattern="[A-Za-z0-9][A-Za-z0-9_=+.\-]*">
            <button type="submit" id="save">Save</button>
            </form>
            <div class="actions">
            <a class="button" id="download" href="/api/v1/clients/{n}/config?download=true" download="{Html.E(d.Name)}.conf">Download {Html.E(d.Name)}.conf</a>
            <form method="post" action="/clients/{n}/{(s.Client.Enabled ? "block" : "reenable")}">{Html.CsrfInput(ctx)}
            <button type="submit" id="{(s.Client.Enabled ? "block" : "reenable")}">{(s.Client.Enabled ? "Block" : "Re-enable")}</button></form>
            <form method="post" action="/clients/{n}/remove" data-confirm="Remove {Html.E(d.Name)} for good? Its keys stop working and its config cannot be restored.">{Html.CsrfInput(ctx)}
            <button type="submit" class="danger" id="remove">Remove</button></form>
            </div>
            <details id="config-details"><summary>Show config (contains the private key)</summary><pre id="config">{Html.E(config)}</pre></details>
            <p><a href="/">← All clients</a></p>
            """;
        return Html.Page(ctx, $"Client {d.Name}", body, status);
    }
}
