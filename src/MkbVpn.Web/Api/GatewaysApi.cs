using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;

namespace MkbVpn.Web.Api;

/// <summary>/api/v1/gateways: the registry's gateways with their reported state (docs/gateways.md). Read only: gateways are added and removed with 'mkb-vpn gateway'.</summary>
internal static class GatewaysApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("mkb-vpn");
        api.MapGet("/gateways", List)
            .WithName("listGateways").WithSummary("Every gateway: endpoint, listen port, subnets, clients served, state (online, stale, never_seen), last seen, engine, peers")
            .Produces<GatewayDto[]>().ProducesProblem(401);
        api.MapGet("/gateways/{name}", Get)
            .WithName("getGateway").WithSummary("One gateway with its reported state")
            .Produces<GatewayDto>().ProducesProblem(401).ProducesProblem(404);
        api.MapGet("/gateways/{name}/clients", Clients)
            .WithName("getGatewayClients").WithSummary("The clients a gateway serves, each with what this gateway last reported of it (in 'gateways')")
            .Produces<ClientDto[]>().ProducesProblem(401).ProducesProblem(404);
    }

    private static IResult List(ClientService clients) => Results.Ok(clients.ListGateways().Select(GatewayDto.Of).ToArray());

    private static IResult Get(ClientService clients, string name) => Results.Ok(GatewayDto.Of(clients.GetGateway(name)));

    private static IResult Clients(ClientService clients, string name)
    {
        var report = clients.GatewayStatus(name)!;
        var now = DateTimeOffset.UtcNow;
        return Results.Ok(report.Clients.Select(c => ClientDto.Of(c, now)).ToArray());
    }
}
