using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Access;
using MkbVpn.Clients;
using MkbVpn.Web.Api;

namespace MkbVpn.Web.Pages;

/// <summary>Groups, access rules (with the check), and the audit log; the forms post to the same service the CLI uses.</summary>
internal static class AccessPage
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/access", (HttpContext ctx, ClientService s, string? client, string? destination) =>
            Show(ctx, s, client, destination, null, 200, Flash.Take(ctx))).ExcludeFromDescription();
        app.MapPost("/access/groups", (HttpContext ctx, ClientService s) => Post(ctx, s, async f =>
        {
            var g = s.AddGroup(f["name"].ToString().Trim(), f["description"].ToString());
            return $"Group {g.Name} added.";
        })).ExcludeFromDescription().FormOnly();
        app.MapPost("/access/groups/{name}/remove", (HttpContext ctx, ClientService s, string name) => Post(ctx, s, async f =>
        {
            var (g, rules) = s.RemoveGroup(name, f["force"] == "on");
            return rules.Count == 0 ? $"Group {g.Name} removed." : $"Group {g.Name} removed with {rules.Count} rule(s).";
        })).ExcludeFromDescription().FormOnly();
        app.MapPost("/access/rules", (HttpContext ctx, ClientService s) => Post(ctx, s, async f =>
        {
            var r = s.Allow(new AllowRequest(f["who"].ToString(), f["to"].ToString())
            {
                Port = f["port"].ToString() is { Length: > 0 } p ? p : null,
                Protocol = f["proto"].ToString() is { Length: > 0 } pr ? pr : null,
            });
            return r.Created ? $"Rule #{r.Rule.Id} added: {r.Rule}" : $"Rule #{r.Rule.Id} already says this.";
        })).ExcludeFromDescription().FormOnly();
        app.MapPost("/access/rules/{id:long}/revoke", (HttpContext ctx, ClientService s, long id) => Post(ctx, s, async f =>
        {
            var r = s.Revoke(id);
            return $"Rule #{r.Id} revoked: {r}";
        })).ExcludeFromDescription().FormOnly();
        app.MapGet("/audit", Audit).ExcludeFromDescription();
    }

    private static async Task<IResult> Post(HttpContext ctx, ClientService s, Func<IFormCollection, Task<string>> action)
    {
        if (!ctx.Request.HasFormContentType)
            return Show(ctx, s, null, null, "send the form (application/x-www-form-urlencoded)", 415);
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        try
        {
            string done = await action(form);
            Flash.Set(ctx, done);   // the message travels signed with the session, not in the address (?done= could say anything)
            return Results.Redirect("/access");
        }
        catch (UserInputException e)
        {
            return Show(ctx, s, null, null, e.Message, Problems.StatusOf(e));
        }
    }

    private static IResult Show(HttpContext ctx, ClientService s, string? client, string? destination, string? error, int status, string? done = null)
    {
        var groups = s.ListGroups();
        var rules = s.ListRules();
        var sb = new StringBuilder();
        sb.Append("<h1>Access</h1>").Append(Html.Notice(error, error: true)).Append(Html.Notice(done, error: false));
        sb.Append("<p class=\"hint\">Rules only allow. A client reaches the union of the rules that name it, its groups, or everyone; ")
          .Append("what no rule allows is dropped. <code>everyone → internal</code> is the default; revoke it for least privilege.</p>");

        // Check first: it is what an admin asks most.
        sb.Append("<h2 id=\"check-h\">Check</h2><form method=\"get\" action=\"/access\" class=\"check\" aria-labelledby=\"check-h\">")
          .Append($"<label for=\"check-client\">Client</label><input id=\"check-client\" name=\"client\" required maxlength=\"15\" value=\"{Html.E(client)}\">")
          .Append($"<label for=\"check-dest\">Destination</label><input id=\"check-dest\" name=\"destination\" required maxlength=\"60\" placeholder=\"198.51.100.20:443/tcp\" value=\"{Html.E(destination)}\">")
          .Append("<button type=\"submit\" id=\"check\">Check</button></form>");
        if (!string.IsNullOrEmpty(client) && !string.IsNullOrEmpty(destination))
        {
            try
            {
                var c = AccessApi.ToDto(s.Check(client, destination));
                sb.Append($"<div id=\"check-result\" class=\"verdict {c.Verdict}\"><p><strong>{Html.E(c.Verdict)}</strong>: {Html.E(c.Client)} → {Html.E(c.Destination)}")
                  .Append(c.Port is { } p ? $":{p}" : "").Append($"/{Html.E(c.Proto)}</p><ul>");
                foreach (var r in c.Rules)
                    sb.Append($"<li>by rule #{r.Id}: {Html.E(r.Text)}</li>");
                foreach (var r in c.Partial)
                    sb.Append($"<li>partly, rule #{r.Id}: {Html.E(r.Text)}</li>");
                if (c.Reason is not null)
                    sb.Append($"<li>{Html.E(c.Reason)}</li>");
                sb.Append("</ul></div>");
            }
            catch (UserInputException e)
            {
                sb.Append(Html.Notice(e.Message, error: true));
            }
        }

        sb.Append("<h2>Rules</h2><table id=\"rules\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Who</th><th scope=\"col\">To</th><th scope=\"col\">Service</th><th scope=\"col\"><span class=\"sr\">Revoke</span></th></tr></thead><tbody>");
        foreach (var r in rules)
        {
            sb.Append($"<tr data-id=\"{r.Id}\"><td>{r.Id}</td><td>{Html.E(r.Who)}</td><td>{Html.E(r.Target)}</td><td>{Html.E(r.ServiceText)}</td>")
              .Append($"<td><form method=\"post\" action=\"/access/rules/{r.Id}/revoke\" data-confirm=\"Revoke rule #{r.Id} ({Html.E(r.ToString())})?\">{Html.CsrfInput(ctx)}<button type=\"submit\" class=\"danger\">Revoke</button></form></td></tr>");
        }
        if (rules.Count == 0)
            sb.Append("<tr><td colspan=\"5\" class=\"empty\">No rules: clients reach nothing behind the server.</td></tr>");
        sb.Append("</tbody></table>");
        sb.Append("<form method=\"post\" action=\"/access/rules\" class=\"add-rule\" aria-labelledby=\"rule-h\"><h3 id=\"rule-h\">Allow</h3>").Append(Html.CsrfInput(ctx))
          .Append("<label for=\"rule-who\">Who</label><input id=\"rule-who\" name=\"who\" required maxlength=\"60\" placeholder=\"everyone, group:staff, client:alice\" list=\"who-list\">")
          .Append("<datalist id=\"who-list\"><option value=\"everyone\">");
        foreach (var g in groups)
            sb.Append($"<option value=\"group:{Html.E(g.Name)}\">");
        sb.Append("</datalist>")
          .Append("<label for=\"rule-to\">To</label><input id=\"rule-to\" name=\"to\" required maxlength=\"60\" placeholder=\"internal, server, 198.51.100.20, 198.51.100.0/28\">")
          .Append("<label for=\"rule-port\">Port</label><input id=\"rule-port\" name=\"port\" maxlength=\"11\" placeholder=\"443 or 8000-8100\">")
          .Append("<label for=\"rule-proto\">Protocol</label><select id=\"rule-proto\" name=\"proto\"><option>any</option><option>tcp</option><option>udp</option><option>icmp</option></select>")
          .Append("<button type=\"submit\" id=\"allow\">Allow</button></form>");

        sb.Append("<h2>Groups</h2><table id=\"groups\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Members</th><th scope=\"col\">Rules</th><th scope=\"col\">Description</th><th scope=\"col\"><span class=\"sr\">Remove</span></th></tr></thead><tbody>");
        foreach (var g in groups)
        {
            string n = Html.Url(g.Name);
            sb.Append($"<tr data-name=\"{Html.E(g.Name)}\"><td>{Html.E(g.Name)}</td><td>{g.Members}</td><td>{g.Rules}</td><td>{Html.E(g.Description)}</td>")
              .Append($"<td><form method=\"post\" action=\"/access/groups/{n}/remove\" data-confirm=\"Remove group {Html.E(g.Name)}?\">{Html.CsrfInput(ctx)}")
              .Append(g.Rules > 0 ? "<label><input type=\"checkbox\" name=\"force\"> and its rules</label>" : "")
              .Append("<button type=\"submit\" class=\"danger\">Remove</button></form></td></tr>");
        }
        if (groups.Count == 0)
            sb.Append("<tr><td colspan=\"5\" class=\"empty\">No groups yet.</td></tr>");
        sb.Append("</tbody></table>");
        sb.Append("<form method=\"post\" action=\"/access/groups\" class=\"add-group\" aria-labelledby=\"group-h\"><h3 id=\"group-h\">New group</h3>").Append(Html.CsrfInput(ctx))
          .Append("<label for=\"group-name\">Name</label><input id=\"group-name\" name=\"name\" required maxlength=\"32\" pattern=\"[A-Za-z0-9][A-Za-z0-9_.\\-]*\">")
          .Append("<label for=\"group-description\">Description</label><input id=\"group-description\" name=\"description\" maxlength=\"200\">")
          .Append("<button type=\"submit\" id=\"add-group\">Add group</button></form>");
        return Html.Page(ctx, "Access", sb.ToString(), status);
    }

    private static IResult Audit(HttpContext ctx, ClientService s, string? client, string? page)
    {
        const int size = 100;
        int p = 1;
        string? error = null;
        IReadOnlyList<Audit.AuditEntry> items = [];
        int total = 0;
        try
        {
            p = Math.Max(1, ClientsApi.ParseInt(page, "page", 1));
            (items, total) = s.AuditLog(string.IsNullOrEmpty(client) ? null : client, null, (p - 1) * size, size);
        }
        catch (UserInputException e)
        {
            error = e.Message;
        }
        var sb = new StringBuilder();
        sb.Append("<h1>Audit log</h1>").Append(Html.Notice(error, error: true));
        sb.Append($"<form method=\"get\" action=\"/audit\" class=\"search\"><label for=\"audit-client\">Client</label><input id=\"audit-client\" name=\"client\" maxlength=\"15\" value=\"{Html.E(client)}\"><button type=\"submit\">Filter</button></form>");
        sb.Append("<table id=\"audit\"><thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who</th><th scope=\"col\">Via</th><th scope=\"col\">Action</th><th scope=\"col\">Target</th><th scope=\"col\">Outcome</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
        foreach (var e in items)
        {
            sb.Append($"<tr><td>{Html.E(When.Format(e.At))}</td><td>{Html.E(e.Actor)}</td><td>{Html.E(e.Via)}</td><td>{Html.E(e.Action)}</td>")
              .Append($"<td>{Html.E(e.Target ?? "-")}</td><td>{Html.E(e.Outcome)}</td><td>{Html.E(e.Detail ?? "")}</td></tr>");
        }
        if (items.Count == 0)
            sb.Append("<tr><td colspan=\"7\" class=\"empty\">Nothing recorded.</td></tr>");
        sb.Append("</tbody></table>");
        int pages = Math.Max(1, (total + size - 1) / size);
        string Link(int to) => $"/audit?page={to}" + (string.IsNullOrEmpty(client) ? "" : "&client=" + Html.Url(client));
        sb.Append("<nav class=\"pages\" aria-label=\"Pages\">")
          .Append(p > 1 ? $"<a href=\"{Html.E(Link(p - 1))}\" rel=\"prev\">← Newer</a>" : "<span></span>")
          .Append($"<span>Page {p} of {pages}</span>")
          .Append(p < pages ? $"<a href=\"{Html.E(Link(p + 1))}\" rel=\"next\">Older →</a>" : "<span></span>")
          .Append("</nav>");
        return Html.Page(ctx, "Audit log", sb.ToString());
    }
}
