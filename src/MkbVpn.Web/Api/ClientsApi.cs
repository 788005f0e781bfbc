using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using MkbVpn.Clients;
using MkbVpn.Configs;
using MkbVpn.Web.Auth;

namespace MkbVpn.Web.Api;

/// <summary>/api/v1: clients, status, server. Thin over ClientService; every refusal a problem document.</summary>
internal static class ClientsApi
{
    public const int DefaultPageSize = 50;

    public static void Map(IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("mkb-vpn");

        api.MapGet("/clients", List)
            .WithName("listClients").WithSummary("List clients with live status, one page at a time")
            .WithDescription("Filters: q (part of a name or address), state (all, enabled, blocked, online, offline). page starts at 1; page_size at most 500.")
            .Produces<ClientListDto>().ProducesValidationProblem().ProducesProblem(401);
        api.MapPost("/clients", Create)
            .WithName("createClient").WithSummary("Add a client: fresh keys, the next free address; live at once")
            .AddOpenApiOperationTransformer(async (op, ctx, ct) =>
            {
                // Described here rather than with Accepts<T>(), which would make routing refuse other media types with 404 instead of 415.
                op.RequestBody = new Microsoft.OpenApi.OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, Microsoft.OpenApi.OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = await ctx.GetOrCreateSchemaAsync(typeof(CreateClientRequest), null, ct) },
                    },
                };
            })
            .Produces<ClientDto>(201).ProducesValidationProblem().ProducesProblem(401).ProducesProblem(403).ProducesProblem(409).ProducesProblem(413).ProducesProblem(415);
        api.MapGet("/clients/{name}", Get)
            .WithName("getClient").WithSummary("One client with its live status; on a registry of gateways also the gateways that serve it, with what each reported (gateways)")
            .Produces<ClientDto>().ProducesProblem(401).ProducesProblem(404);
        api.MapDelete("/clients/{name}", Delete)
            .WithName("deleteClient").WithSummary("Remove a client for good (keys revoked, address released)")
            .Produces(204).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);
        api.MapPost("/clients/{name}/block", Block)
            .WithName("blockClient").WithSummary("Block a client for now (same keys, address and config when re-enabled)")
            .Produces<ClientDto>().ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);
        api.MapPost("/clients/{name}/reenable", Reenable)
            .WithName("reenableClient").WithSummary("Re-enable a blocked client")
            .Produces<ClientDto>().ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);
        api.MapGet("/clients/{name}/config", Config)
            .WithName("getClientConfig").WithSummary("The client's wg-quick config (contains its private key); ?download=true as NAME.conf; ?gateway=G: the config for gateway G")
            .Produces<string>(200, "text/plain").ProducesProblem(401).ProducesProblem(404);
        api.MapGet("/clients/{name}/qr.png", QrPng)
            .WithName("getClientQrPng").WithSummary("The client's config as a QR code, PNG; ?gateway=G: for gateway G")
            .Produces(200, contentType: "image/png").ProducesProblem(401).ProducesProblem(404);
        api.MapGet("/clients/{name}/qr.svg", QrSvg)
            .WithName("getClientQrSvg").WithSummary("The client's config as a QR code, SVG; ?gateway=G: for gateway G")
            .Produces(200, contentType: "image/svg+xml").ProducesProblem(401).ProducesProblem(404);
        api.MapGet("/status", Status)
            .WithName("getStatus").WithSummary("Interface up or down; clients total, enabled, online")
            .Produces<StatusDto>().ProducesProblem(401);
        api.MapGet("/server", Server)
            .WithName("getServer").WithSummary("The server's settings and internal networks (never its private key)")
            .Produces<ServerDto>().ProducesProblem(401);
    }

    private static IResult List(ClientService clients, string? page, string? page_size, string? q, string? state)
    {
        int p = ParseInt(page, "page", 1);
        int size = ParseInt(page_size, "page_size", DefaultPageSize);
        var filter = ParseState(state);
        if (q is { Length: > 100 })
            throw new ApiProblem(400, "q: at most 100 characters", "q");
        var result = clients.Query(q, filter, p, size);
        return Results.Ok(new ClientListDto([.. result.Items.Select(ClientDto.Of)], result.Page, result.PageSize, result.Total, result.InterfaceUp,
            result.Damaged is { Count: > 0 } d ? d : null));
    }

    internal static int ParseInt(string? text, string field, int fallback)
    {
        if (string.IsNullOrEmpty(text))
            return fallback;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v))
            throw new ApiProblem(400, $"{field}: '{Shorten(text)}' is not a whole number", field);
        return v;
    }

    internal static ClientStateFilter ParseState(string? state) => state switch
    {
        null or "" or "all" => ClientStateFilter.All,
        "enabled" => ClientStateFilter.Enabled,
        "blocked" => ClientStateFilter.Blocked,
        "online" => ClientStateFilter.Online,
        "offline" => ClientStateFilter.Offline,
        _ => throw new ApiProblem(400, $"state: '{Shorten(state)}' is not one of all, enabled, blocked, online, offline", "state"),
    };

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    private static async Task<IResult> Create(HttpContext ctx, ClientService clients, ILogger<WebServer> log)
    {
        var body = await JsonBody.Read<CreateClientRequest>(ctx.Request);
        var request = ToAddRequest(body);
        var result = clients.Add([request]);
        var added = result.Clients[0];
        Log.ClientChanged(log, Session.Of(ctx).Name, "added", added.Name);
        return Results.Created($"/api/v1/clients/{Uri.EscapeDataString(added.Name)}", ClientDto.Of(added));
    }

    /// <summary>A create request as the service takes it; the service's parsers name the field that is wrong (as for 'mkb-vpn add').</summary>
    internal static AddRequest ToAddRequest(CreateClientRequest body) => new(ClientName.RequireValid(body.Name))
    {
        Address4 = body.Address4 is { } a4 ? ClientService.ParseClientAddress(a4, AddressFamily.InterNetwork, "address4") : null,
        Address6 = body.Address6 is { } a6 ? ClientService.ParseClientAddress(a6, AddressFamily.InterNetworkV6, "address6") : null,
        Dns = body.Dns is { } dns ? ClientService.ParseDns(dns, allowDefault: false) : null,
        AllowedIps = ClientService.ParseAllowedIps(body.AllowedIps, body.FullTunnel == true),
        Keepalive = body.Keepalive,
        Groups = body.Groups,
        Expires = body.Expires,
    };

    private static IResult Get(ClientService clients, string name)
    {
        var dto = ClientDto.Of(clients.StatusOf(name));
        if (clients.HasGateways())
        {
            // On a registry of gateways the live facts are the gateways' reports: the most recent handshake, bytes summed.
            var s = clients.GatewayStatus(null, name);
            dto = s is null ? dto with { Gateways = [.. clients.GatewaysServing(name).Select(GatewayPeerDto.Of)] } : ClientDto.Of(s.Clients.Single(), DateTimeOffset.UtcNow);
        }
        return Results.Ok(dto);
    }

    private static IResult Delete(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        clients.Remove([name]);
        Log.ClientChanged(log, Session.Of(ctx).Name, "removed", name);
        return Results.NoContent();
    }

    private static IResult Block(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        clients.Block([name]);
        Log.ClientChanged(log, Session.Of(ctx).Name, "blocked", name);
        return Results.Ok(ClientDto.Of(clients.StatusOf(name)));
    }

    private static IResult Reenable(HttpContext ctx, ClientService clients, ILogger<WebServer> log, string name)
    {
        clients.Reenable([name]);
        Log.ClientChanged(log, Session.Of(ctx).Name, "re-enabled", name);
        return Results.Ok(ClientDto.Of(clients.StatusOf(name)));
    }

    private static IResult Config(HttpContext ctx, ClientService clients, string name, bool? download, string? gateway)
    {
        string text = clients.ConfigText(name, string.IsNullOrEmpty(gateway) ? null : gateway);
        if (download == true)
            ctx.Response.Headers.ContentDisposition = string.IsNullOrEmpty(gateway) ? $"attachment; filename=\"{name}.conf\"" : $"attachment; filename=\"{name}-{clients.GetGateway(gateway).Gateway.Name}.conf\"";
        return Results.Text(text, "text/plain; charset=utf-8");
    }

    private static IResult QrPng(ClientService clients, string name, string? gateway) =>
        Results.Bytes(QrCodes.Png(clients.QrConfigText(name, string.IsNullOrEmpty(gateway) ? null : gateway)), "image/png");

    private static IResult QrSvg(ClientService clients, string name, string? gateway) =>
        Results.Text(QrCodes.Svg(clients.QrConfigText(name, string.IsNullOrEmpty(gateway) ? null : gateway)), "image/svg+xml");

    private static IResult Status(ClientService clients)
    {
        var server = clients.GetServer();
        var c = clients.Counts();
        return Results.Ok(new StatusDto(server.Interface, c.InterfaceUp, c.Total, c.Enabled, c.Online));
    }

    private static IResult Server(ClientService clients) => Results.Ok(ServerDto.Of(clients.GetServer()));
}
