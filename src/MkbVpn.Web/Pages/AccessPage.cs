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
    public static void Map(RouteGroupBuilder app)
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
        CheckView? check = null;
        string? checkError = null;
        if (!string.IsNullOrEmpty(client) && !string.IsNullOrEmpty(destination))
        {
            try
            {
                var c = AccessApi.ToDto(s.Check(client, destination));
                check = new CheckView(c.Verdict, c.Client, c.Destination, c.Port, c.Proto, [.. c.Rules.Select(Rule)], [.. c.Partial.Select(Rule)], c.Reason);
            }
            catch (UserInputException e)
            {
                checkError = e.Message;
            }
        }
        var view = new AccessView(Views.Chrome(ctx, "Access"), error, done, client, destination, check, checkError,
            [.. s.ListRules().Select(r => new RuleRow(r.Id, r.Who, r.Target, r.ServiceText, r.ToString()))],
            [.. s.ListGroups().Select(g => new GroupRow(g.Name, g.Members, g.Rules, g.Description))]);
        return Slices.Access.Create(view).With(status);
    }

    private static RuleRow Rule(RuleDto r) => new(r.Id, r.Who, r.To, r.Port is null ? r.Proto : $"{r.Proto}/{r.Port}", r.Text);

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
        var rows = items.Select(e => new AuditRow(When.Format(e.At), e.Actor, e.Via, e.Action, e.Target ?? "-", e.Outcome, e.Detail ?? "")).ToList();
        var view = new AuditView(Views.Chrome(ctx, "Audit log"), error, client, rows, p, Math.Max(1, (total + size - 1) / size));
        return Slices.Audit.Create(view);
    }
}
