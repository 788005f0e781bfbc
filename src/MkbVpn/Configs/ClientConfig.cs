using System.Text;
using MkbVpn.Clients;

namespace MkbVpn.Configs;

/// <summary>Renders a client's wg-quick config from the store. The store is the truth; this is a view.</summary>
public static class ClientConfig
{
    /// <summary>What show and qr say of a client imported without its private key.</summary>
    public const string PublicKeyOnlyNote =
        "imported without its private key (public key only): the device keeps its own config; this one lacks the PrivateKey line";

    /// <summary>Renders with the client's own AllowedIPs or the server's default (no access rules considered).</summary>
    public static string Render(ServerSettings server, Client client) =>
        Render(server, client, client.AllowedIps ?? server.DefaultClientAllowedIps());

    /// <summary>Renders with the AllowedIPs the access policy gives the client.</summary>
    public static string Render(ServerSettings server, Client client, IReadOnlyList<System.Net.IPNetwork> allowedIps)
    {
        var config = new WgQuickConfig();
        config.AddSection("Interface")
            .Add("PrivateKey", client.PrivateKey?.ToBase64())
            .Add("Address", string.Join(", ", client.TunnelAddresses()))
            .Add("DNS", string.Join(", ", client.Dns ?? server.Dns))
            .Add("MTU", server.Mtu);
        config.AddSection("Peer")
            .Add("PublicKey", server.PublicKey.ToBase64())
            .Add("PresharedKey", client.PresharedKey.IsZero ? null : client.PresharedKey.ToBase64())
            .Add("AllowedIPs", string.Join(", ", allowedIps))
            .Add("Endpoint", server.Endpoint)
            .Add("PersistentKeepalive", (client.Keepalive ?? server.Keepalive) is > 0 and var ka ? ka : null);
        var sb = new StringBuilder();
        sb.Append("# mkb-vpn client '").Append(client.Name).Append("' (created ")
          .Append(client.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)).Append(")\n");
        if (client.PrivateKey is null)
            sb.Append("# ").Append(PublicKeyOnlyNote).Append('\n');
        else
            sb.Append("# Import into the WireGuard app, or on Linux: wg-quick up ./").Append(client.Name).Append(".conf\n");
        sb.Append(config);
        return sb.ToString();
    }
}
