using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;

namespace MkbVpn.Web.Pages;

/// <summary>The live interface (up or down, and the engine that runs it, as 'mkb-vpn status' tells), the server's settings and internal networks (read only: change them with 'mkb-vpn init --change').</summary>
internal static class ServerPage
{
    public static void Map(RouteGroupBuilder pages) => pages.MapGet("/server", Show).ExcludeFromDescription();

    private static IResult Show(HttpContext ctx, ClientService clients)
    {
        var s = clients.GetServer();
        var c = clients.Counts();
        var plane = c.InterfaceUp ? clients.DataPlane() : null;
        string N(int v) => v.ToString(CultureInfo.InvariantCulture);
        ServerRow[] settings =
        [
            new("Endpoint clients dial", s.Endpoint),
            new("Listen port (UDP)", N(s.ListenPort)),
            new("VPN subnet (IPv4)", s.Subnet4 is null ? "none" : $"{s.Subnet4} (server {s.ServerAddress4})"),
            new("VPN subnet (IPv6)", s.Subnet6 is null ? "none" : $"{s.Subnet6} (server {s.ServerAddress6})"),
            new("DNS for clients", s.Dns.Count == 0 ? "none" : string.Join(", ", s.Dns)),
            new("Tunnel", s.FullTunnel ? "full: clients send all traffic through the VPN" : "split: clients route only the VPN and the internal networks"),
            new("Masquerade", s.Masquerade ? "on" : "off"),
            new("Client to client", s.ClientToClient ? "allowed" : "blocked"),
            new("MTU", N(s.Mtu)),
            new("Persistent keepalive", $"{N(s.Keepalive)} s"),
            new("Public key", s.PublicKey.ToBase64(), Code: true),
        ];
        // Gateways (docs/gateways.md): shown once the registry has more than the server's own, or one reports.
        var gateways = clients.HasGateways()
            ? clients.ListGateways().Select(v => new GatewayRow(v.Gateway.Name, v.State.Replace('_', ' '), v.Gateway.LastSeen, v.Gateway.Engine ?? "-",
                v.Gateway.PeerCount is { } pc ? N(pc) : "-", v.Gateway.Endpoint, v.Gateway.ListenPort,
                string.Join(", ", new[] { v.Gateway.Subnet4 ?? s.Subnet4, v.Gateway.Subnet6 ?? s.Subnet6 }.OfType<System.Net.IPNetwork>()) + (v.Gateway.Subnet4 is null && v.Gateway.Subnet6 is null ? " (the registry's)" : ""),
                v.Served, v.Gateway.InternalNetworks.Count == 0 ? "none" : string.Join(", ", v.Gateway.InternalNetworks))).ToList()
            : null;
        var view = new ServerView(Views.Chrome(ctx, "Server"), s.Interface, c.InterfaceUp, plane?.Engine, plane?.Reason, c.Total, c.Enabled, c.Online,
            settings, [.. s.InternalNetworks.Select(n => n.ToString())], gateways, DateTimeOffset.UtcNow);
        return Slices.Server.Create(view);
    }
}
