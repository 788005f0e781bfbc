using System.Data.Common;
using MkbVpn.Clients;
using MkbVpn.WireGuard.Protocol;
using System.Net;

namespace MkbVpn.Storage;

public sealed partial class Store
{
    public ServerSettings? GetServer()
    {
        using var cmd = Command("SELECT interface, private_key, public_key, listen_port, endpoint_host, endpoint_port, subnet4, subnet6, dns, mtu, internal_networks, full_tunnel, masquerade, client_to_client, keepalive, created_at FROM server WHERE id = 1");
        using var r = Reader(cmd);
        if (!r.Read())
            return null;
        return new ServerSettings
        {
            Interface = r.GetString(0),
            PrivateKey = WireGuardKey.ParseBase64(r.GetString(1)),
            PublicKey = WireGuardKey.ParseBase64(r.GetString(2)),
            ListenPort = Int32(r, 3),
            EndpointHost = r.GetString(4),
            EndpointPort = Int32(r, 5),
            Subnet4 = Net(r.GetValue(6)),
            Subnet6 = Net(r.GetValue(7)),
            Dns = SplitList(r.GetString(8)),
            Mtu = Int32(r, 9),
            InternalNetworks = [.. SplitList(r.GetString(10)).Select(IPNetwork.Parse)],
            FullTunnel = Int64(r, 11) != 0,
            Masquerade = Int64(r, 12) != 0,
            ClientToClient = Int64(r, 13) != 0,
            Keepalive = Int32(r, 14),
            CreatedAt = ParseTime(r.GetString(15)),
        };
    }

    public ServerSettings RequireServer() =>
        GetServer() ?? throw new UserInputException($"mkb-vpn is not initialised here ({Where}): run 'mkb-vpn init' first", ExitCodes.NotInitialised);

    public void SaveServer(ServerSettings s)
    {
        Execute("""
            INSERT INTO server (id, interface, private_key, public_key, listen_port, endpoint_host, endpoint_port, subnet4, subnet6, dns, mtu, internal_networks, full_tunnel, masquerade, client_to_client, keepalive, created_at)
            VALUES (1, @if, @priv, @pub, @port, @eh, @ep, @s4, @s6, @dns, @mtu, @nets, @full, @masq, @c2c, @ka, @created)
            ON CONFLICT (id) DO UPDATE SET interface = @if, private_key = @priv, public_key = @pub, listen_port = @port,
              endpoint_host = @eh, endpoint_port = @ep, subnet4 = @s4, subnet6 = @s6, dns = @dns, mtu = @mtu,
              internal_networks = @nets, full_tunnel = @full, masquerade = @masq, client_to_client = @c2c, keepalive = @ka
            """,
            ("@if", s.Interface), ("@priv", s.PrivateKey.ToBase64()), ("@pub", s.PublicKey.ToBase64()),
            ("@port", s.ListenPort), ("@eh", s.EndpointHost), ("@ep", s.EndpointPort),
            ("@s4", s.Subnet4?.ToString()), ("@s6", s.Subnet6?.ToString()), ("@dns", JoinList(s.Dns)), ("@mtu", s.Mtu),
            ("@nets", JoinList(s.InternalNetworks)), ("@full", s.FullTunnel ? 1 : 0), ("@masq", s.Masquerade ? 1 : 0),
            ("@c2c", s.ClientToClient ? 1 : 0), ("@ka", s.Keepalive), ("@created", Time(s.CreatedAt)));
        SyncServerGateway(s);
    }

    public string? GetRuntime(string key)
    {
        using var cmd = Command("SELECT value FROM runtime WHERE key = @k", ("@k", key));
        return Scalar(cmd) as string;
    }

    public void SetRuntime(string key, string? value)
    {
        if (value is null)
            Execute("DELETE FROM runtime WHERE key = @k", ("@k", key));
        else
            Execute("INSERT INTO runtime (key, value) VALUES (@k, @v) ON CONFLICT (key) DO UPDATE SET value = @v", ("@k", key), ("@v", value));
    }
}
