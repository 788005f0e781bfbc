using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;
using MkbVpn.Web.Api;

namespace MkbVpn.Web.Pages;

/// <summary>The server's settings and internal networks (read only: change them with 'mkb-vpn init --change').</summary>
internal static class ServerPage
{
    public static void Map(IEndpointRouteBuilder app) => app.MapGet("/server", Show).ExcludeFromDescription();

    private static IResult Show(HttpContext ctx, ClientService clients)
    {
        var s = ServerDto.Of(clients.GetServer());
        var c = clients.Counts();
        string Row(string k, string v) => $"<tr><th scope=\"row\">{Html.E(k)}</th><td>{v}</td></tr>";
        var sb = new StringBuilder();
        sb.Append("<h1>Server</h1><table class=\"settings\" id=\"settings\"><caption class=\"sr\">Server settings</caption><tbody>");
        sb.Append(Row("Interface", $"{Html.E(s.Interface)} <span class=\"badge {(c.InterfaceUp ? "online" : "offline")}\">{(c.InterfaceUp ? "up" : "down")}</span>"));
        sb.Append(Row("Clients", $"{c.Total} ({c.Enabled} enabled, {c.Online} online)"));
        sb.Append(Row("Endpoint clients dial", Html.E(s.Endpoint)));
        sb.Append(Row("Listen port (UDP)", s.ListenPort.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        sb.Append(Row("VPN subnet (IPv4)", Html.E(s.Subnet4 is null ? "none" : $"{s.Subnet4} (server {s.ServerAddress4})")));
        sb.Append(Row("VPN subnet (IPv6)", Html.E(s.Subnet6 is null ? "none" : $"{s.Subnet6} (server {s.ServerAddress6})")));
        sb.Append(Row("DNS for clients", Html.E(s.Dns.Count == 0 ? "none" : string.Join(", ", s.Dns))));
        sb.Append(Row("Tunnel", s.FullTunnel ? "full: clients send all traffic through the VPN" : "split: clients route only the VPN and the internal networks"));
        sb.Append(Row("Masquerade", s.Masquerade ? "on" : "off"));
        sb.Append(Row("Client to client", s.ClientToClient ? "allowed" : "blocked"));
        sb.Append(Row("MTU", s.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        sb.Append(Row("Persistent keepalive", $"{s.Keepalive} s"));
        sb.Append(Row("Public key", $"<code>{Html.E(s.PublicKey)}</code>"));
        sb.Append("</tbody></table><h2>Internal networks</h2>");
        if (s.InternalNetworks.Count == 0)
            sb.Append("<p id=\"networks\">None: clients reach only the server.</p>");
        else
        {
            sb.Append("<ul id=\"networks\">");
            foreach (var n in s.InternalNetworks)
                sb.Append("<li>").Append(Html.E(n)).Append("</li>");
            sb.Append("</ul>");
        }
        sb.Append("<p class=\"hint\">Change settings on the server with <code>mkb-vpn init --change</code> (e.g. <code>--dns</code>, <code>--internal-network</code>).</p>");
        return Html.Page(ctx, "Server", sb.ToString());
    }
}
