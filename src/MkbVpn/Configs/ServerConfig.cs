using System.Text;
using MkbVpn.Clients;

namespace MkbVpn.Configs;

/// <summary>
/// The server as a plain wg-quick config (export: nobody is locked in). Each client is a [Peer]
/// under angristan's "### Client NAME" marker, so 'mkb-vpn import wg-quick' reads the names back;
/// a blocked client's block is commented out line by line, as people disable a peer by hand.
/// </summary>
public static class ServerConfig
{
    public static string Render(ServerSettings server, IReadOnlyList<Client> clients, DateTimeOffset exported)
    {
        var sb = new StringBuilder();
        sb.Append("# mkb-vpn server ").Append(server.Interface).Append(", exported ")
          .Append(exported.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))
          .Append(" (contains the server's private key)\n");
        var iface = new WgQuickConfig().AddSection("Interface");
        var addresses = new List<string>();
        if (server.Subnet4 is { } s4) addresses.Add($"{server.ServerAddress4}/{s4.PrefixLength}");
        if (server.Subnet6 is { } s6) addresses.Add($"{server.ServerAddress6}/{s6.PrefixLength}");
        iface.Add("PrivateKey", server.PrivateKey.ToBase64())
             .Add("Address", string.Join(", ", addresses))
             .Add("ListenPort", server.ListenPort)
             .Add("MTU", server.Mtu);
        Append(sb, iface, null);
        foreach (var c in clients)
        {
            sb.Append("\n### Client ").Append(c.Name).Append('\n');
            var peer = new WgQuickConfig().AddSection("Peer")
                .Add("PublicKey", c.PublicKey.ToBase64())
                .Add("PresharedKey", c.PresharedKey.IsZero ? null : c.PresharedKey.ToBase64())
                .Add("AllowedIPs", string.Join(", ", c.TunnelAddresses()));
            Append(sb, peer, c.Enabled ? null : "#");
        }
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, WgQuickConfig.Section s, string? prefix)
    {
        sb.Append(prefix).Append('[').Append(s.Name).Append("]\n");
        foreach (var (k, v) in s.Entries)
            sb.Append(prefix).Append(k).Append(" = ").Append(v).Append('\n');
    }
}
