using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;

namespace MkbVpn.Web.Api;

/// <summary>/api/v1: groups, access rules and their check, editing a client, the audit log. Thin over ClientService.</summary>
internal static class AccessApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("mkb-vpn");

        api.MapPatch("/clients/{name}", Update)
            .WithName("updateClient").WithSummary("Edit a client in place: groups, expires, dns, allowed_ips, keepalive, rename (keys and address stay)")
            .WithDescription("Only the members given change. groups replaces the list ([] = none); expires takes 2026-12-31, 2026-12-31T18:00Z, 14d or never; dns, allowed_ips and keepalive take \"default\".")
            .WithJsonBody<UpdateClientRequest>()
            .Produces<ClientDto>().ProducesValidationProblem().ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(415);

        api.MapGet("/groups", (ClientService s) => Results.Ok<GroupDto[]>([.. s.ListGroups().Select(GroupDto.Of)]))
            .WithName("listGroups").WithSummary("Groups with their member and rule counts")
            .Produces<GroupDto[]>().ProducesProblem(401);
        api.MapPost("/groups", CreateGroup)
            .WithName("createGroup").WithSummary("Create a group")
            .WithJsonBody<CreateGroupRequest>()
            .Produces<GroupDto>(201).ProducesValidationProblem().ProducesProblem(401).ProducesProblem(403).ProducesProblem(409).ProducesProblem(415);
        api.MapDelete("/groups/{name}", (ClientService s, string name, bool? force) =>
            {
                s.RemoveGroup(name, force == true);
                return Results.NoContent();
            })
            .WithName("deleteGroup").WithSummary("Remove a group; refused (400) while rules name it unless force=true, which removes them too")
            .Produces(204).ProducesValidationProblem().ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);

        api.MapGet("/access/rules", (ClientService s) => Results.Ok<RuleDto[]>([.. s.ListRules().Select(RuleDto.Of)]))
            .WithName("listRules").WithSummary("The access rules (allow only; a client reaches the union of the rules naming it, its groups or everyone)")
            .Produces<RuleDto[]>().ProducesProblem(401);
        api.MapPost("/access/rules", CreateRule)
            .WithName("createRule").WithSummary("Allow who (everyone, group:NAME, client:NAME) to reach to (address, CIDR, internal or server), optionally one port or range and proto")
            .WithJsonBody<CreateRuleRequest>()
            .Produces<RuleDto>(201).Produces<RuleDto>(200).ProducesValidationProblem().ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(415);
        api.MapDelete("/access/rules/{id}", (ClientService s, string id) =>
            {
                s.Revoke(ParseId(id));
                return Results.NoContent();
            })
            .WithName("deleteRule").WithSummary("Revoke a rule")
            .Produces(204).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);
        api.MapGet("/access/check", Check)
            .WithName("checkAccess").WithSummary("May client reach destination (ADDRESS[:PORT][/PROTO])? The verdict and the rules that decide it")
            .Produces<CheckDto>().ProducesValidationProblem().ProducesProblem(401).ProducesProblem(404);

        api.MapGet("/audit", Audit)
            .WithName("listAudit").WithSummary("The audit log, newest first: client and since (2026-11-01, 24h, 7d) filter; page starts at 1, page_size at most 500")
            .Produces<AuditListDto>().ProducesValidationProblem().ProducesProblem(401);
    }

    /// <summary>Describes a JSON body without making routing refuse other media types (those get 415 from JsonBody).</summary>
    private static RouteHandlerBuilder WithJsonBody<T>(this RouteHandlerBuilder b) =>
        b.AddOpenApiOperationTransformer(async (op, ctx, ct) =>
        {
            op.RequestBody = new Microsoft.OpenApi.OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, Microsoft.OpenApi.OpenApiMediaType>
                {
                    ["application/json"] = new() { Schema = await ctx.GetOrCreateSchemaAsync(typeof(T), null, ct) },
                },
            };
        });

    private static long ParseId(string id) =>
        long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) && v > 0
            ? v : throw new ApiProblem(400, "id: not a rule id", "id");

    private static async Task<IResult> Update(HttpContext ctx, ClientService clients, string name)
    {
        var body = await JsonBody.Read<UpdateClientRequest>(ctx.Request);
        var c = clients.Set(new SetRequest(name)
        {
            Groups = body.Groups,
            Expires = body.Expires,
            Dns = body.Dns is { Count: 0 } ? ["none"] : body.Dns,
            AllowedIps = body.AllowedIps,
            Keepalive = body.Keepalive,
            Rename = body.Rename,
        });
        return Results.Ok(ClientDto.Of(clients.StatusOf(c.Name)));
    }

    private static async Task<IResult> CreateGroup(HttpContext ctx, ClientService clients)
    {
        var body = await JsonBody.Read<CreateGroupRequest>(ctx.Request);
        var g = clients.AddGroup(body.Name ?? "", body.Description);
        return Results.Created($"/api/v1/groups/{Uri.EscapeDataString(g.Name)}", GroupDto.Of(g));
    }

    private static async Task<IResult> CreateRule(HttpContext ctx, ClientService clients)
    {
        var body = await JsonBody.Read<CreateRuleRequest>(ctx.Request);
        var r = clients.Allow(new AllowRequest(body.Who ?? "", body.To ?? "") { Port = body.Port, Protocol = body.Proto });
        return r.Created ? Results.Created($"/api/v1/access/rules/{r.Rule.Id}", RuleDto.Of(r.Rule)) : Results.Ok(RuleDto.Of(r.Rule));
    }

    private static IResult Check(ClientService clients, string? client, string? destination)
    {
        if (string.IsNullOrEmpty(client))
            throw new ApiProblem(400, "client: required", "client");
        if (string.IsNullOrEmpty(destination))
            throw new ApiProblem(400, "destination: required (ADDRESS[:PORT][/PROTO])", "destination");
        var c = clients.Check(client, destination);
        return Results.Ok(ToDto(c));
    }

    internal static CheckDto ToDto(AccessCheck c) => CheckDto.Of(c);

    private static IResult Audit(ClientService clients, string? client, string? since, string? page, string? page_size)
    {
        int p = ClientsApi.ParseInt(page, "page", 1);
        int size = ClientsApi.ParseInt(page_size, "page_size", ClientsApi.DefaultPageSize);
        if (p < 1)
            throw new ApiProblem(400, "page: must be 1 or more", "page");
        if (size is < 1 or > ClientService.MaxPageSize)
            throw new ApiProblem(400, $"page_size: must be between 1 and {ClientService.MaxPageSize}", "page_size");
        var (items, total) = clients.AuditLog(string.IsNullOrEmpty(client) ? null : client, string.IsNullOrEmpty(since) ? null : since, (p - 1) * size, size);
        return Results.Ok(new AuditListDto([.. items.Select(AuditDto.Of)], p, size, total));
    }
}
