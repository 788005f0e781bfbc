using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;
using MkbVpn.Traffic;
using MkbVpn.Web.Pages;

namespace MkbVpn.Web.Api;

/// <summary>
/// /api/v1 traffic history: one client's, and the total over all clients, in buckets. The answer
/// is <see cref="TrafficHistory"/>, the shape 'mkb-vpn status NAME --history --json' prints. Also
/// maps the charts (<see cref="TrafficChart"/>): WebServer registers both with one line.
/// </summary>
internal static class TrafficApi
{
    private const string Parameters =
        "from and to: 24h (ago), 2026-11-01 (that day's start, host time), 2026-11-01T08:00Z; default the last 24 hours. " +
        "step: minute, hour, day or seconds (a multiple of 60); default: the finest of 1 min, 5 min, 15 min, 1 h, 6 h, 1 d, 7 d " +
        "giving at most 300 points. At most 3000 points. Buckets start at multiples of the step (UTC); minute detail only within the minute history (48 h by default).";

    public static void Map(IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("mkb-vpn");
        api.MapGet("/clients/{name}/traffic", Client)
            .WithName("getClientTraffic").WithSummary("A client's traffic history: bytes received and sent and minutes online per bucket")
            .WithDescription(Parameters)
            .Produces<TrafficHistory>().ProducesValidationProblem().ProducesProblem(401).ProducesProblem(404);
        api.MapGet("/traffic", Total)
            .WithName("getTraffic").WithSummary("Traffic of all clients together per bucket (online_minutes summed over clients)")
            .WithDescription(Parameters + " Removed clients' traffic stays in the total.")
            .Produces<TrafficHistory>().ProducesValidationProblem().ProducesProblem(401);
    }

    private static IResult Client(ClientService clients, string name, string? from, string? to, string? step) =>
        Results.Ok(clients.TrafficOf(name, clients.ParseTrafficRange(from, to, step)));

    private static IResult Total(ClientService clients, string? from, string? to, string? step) =>
        Results.Ok(clients.TrafficOf(null, clients.ParseTrafficRange(from, to, step)));
}
