using System.Data.Common;
using System.Net;
using MkbVpn.Gateways;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Storage;

/// <summary>Gateways, which clients each serves, their host state and what they report (migration 7).</summary>
public sealed partial class Store
{
    /// <summary>The PostgreSQL channel the triggers of migration 7 notify on every change a gateway applies.</summary>
    public const string ChangeChannel = "mkb_vpn";

    private const string GatewayColumns = "id, name, interface, private_key, public_key, listen_port, endpoint_host, endpoint_port, subnet4, subnet6, internal_networks, created_at, last_seen, engine, peer_count";

    private static Gateway ReadGateway(DbDataReader r) => new()
    {
        Id = Int64(r, 0),
        Name = r.GetString(1),
        Interface = r.GetString(2),
        PrivateKey = WireGuardKey.ParseBase64(r.GetString(3)),
        PublicKey = WireGuardKey.ParseBase64(r.GetString(4)),
        ListenPort = Int32(r, 5),
        EndpointHost = r.GetString(6),
        EndpointPort = Int32(r, 7),
        Subnet4 = Net(r.GetValue(8)),
        Subnet6 = Net(r.GetValue(9)),
        InternalNetworks = [.. SplitList(r.GetString(10)).Select(IPNetwork.Parse)],
        CreatedAt = ParseTime(r.GetString(11)),
        LastSeen = r.IsDBNull(12) ? null : ParseTime(r.GetString(12)),
        Engine = r.IsDBNull(13) ? null : r.GetString(13),
        PeerCount = r.IsDBNull(14) ? null : Int32(r, 14),
    };

    /// <summary>Every gateway, by name.</summary>
    public IReadOnlyList<Gateway> ListGateways()
    {
        using var cmd = Command($"SELECT {GatewayColumns} FROM gateways ORDER BY lower(name), id");
        return Rows(cmd, ReadGateway, "gateways");
    }

    public Gateway? FindGateway(string name)
    {
        using var cmd = Command($"SELECT {GatewayColumns} FROM gateways WHERE lower(name) = lower(@n)", ("@n", name));
        return Rows(cmd, ReadGateway, "gateways").FirstOrDefault();
    }

    public Gateway InsertGateway(Gateway g)
    {
        using var cmd = Command($"""
            INSERT INTO gateways (name, interface, private_key, public_key, listen_port, endpoint_host, endpoint_port, subnet4, subnet6, internal_networks, created_at)
            VALUES (@n, @if, @priv, @pub, @port, @eh, @ep, @s4, @s6, @nets, @created) RETURNING id
            """,
            ("@n", g.Name), ("@if", g.Interface), ("@priv", g.PrivateKey.ToBase64()), ("@pub", g.PublicKey.ToBase64()),
            ("@port", g.ListenPort), ("@eh", g.EndpointHost), ("@ep", g.EndpointPort),
            ("@s4", g.Subnet4?.ToString()), ("@s6", g.Subnet6?.ToString()), ("@nets", JoinList(g.InternalNetworks)), ("@created", Time(g.CreatedAt)));
        try
        {
            return g with { Id = Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) };
        }
        catch (DbException e) when (_d.Violation(e) is { } what)
        {
            throw new FieldException(what.Contains("public_key", StringComparison.Ordinal) ? "key" : "name",
                $"a gateway named '{g.Name}' already exists", ExitCodes.Conflict);
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    public void DeleteGateway(long id) => Execute("DELETE FROM gateways WHERE id = @id", ("@id", id));

    /// <summary>The server's own gateway follows its settings (init --change); a registry without any gateway gets 'main'.</summary>
    private void SyncServerGateway(Clients.ServerSettings s)
    {
        int n = Execute("""
            UPDATE gateways SET interface = @if, listen_port = @port, endpoint_host = @eh, endpoint_port = @ep, internal_networks = @nets
            WHERE public_key = @pub
            """,
            ("@if", s.Interface), ("@port", s.ListenPort), ("@eh", s.EndpointHost), ("@ep", s.EndpointPort), ("@nets", JoinList(s.InternalNetworks)), ("@pub", s.PublicKey.ToBase64()));
        if (n > 0)
            return;
        using var count = Command("SELECT count(*) FROM gateways");
        if (Convert.ToInt64(Scalar(count), System.Globalization.CultureInfo.InvariantCulture) > 0)
            return;
        InsertGateway(new Gateway
        {
            Id = 0,
            Name = Gateway.MainName,
            Interface = s.Interface,
            PrivateKey = s.PrivateKey,
            PublicKey = s.PublicKey,
            ListenPort = s.ListenPort,
            EndpointHost = s.EndpointHost,
            EndpointPort = s.EndpointPort,
            InternalNetworks = s.InternalNetworks,
            CreatedAt = s.CreatedAt,
        });
    }

    /// <summary>Client id to the ids of the gateways that serve it; a client without an entry is served by every gateway.</summary>
    public Dictionary<long, List<long>> LoadGatewayMemberships()
    {
        using var cmd = Command("SELECT client_id, gateway_id FROM client_gateways ORDER BY client_id, gateway_id");
        var map = new Dictionary<long, List<long>>();
        foreach (var (c, g) in Rows(cmd, r => (Int64(r, 0), Int64(r, 1)), "client_gateways"))
        {
            if (!map.TryGetValue(c, out var list))
                map[c] = list = [];
            list.Add(g);
        }
        return map;
    }

    /// <summary>The gateways that serve the client; empty: every gateway.</summary>
    public IReadOnlyList<long> GatewaysOf(long clientId)
    {
        using var cmd = Command("SELECT gateway_id FROM client_gateways WHERE client_id = @c ORDER BY gateway_id", ("@c", clientId));
        return Rows(cmd, r => Int64(r, 0), "client_gateways");
    }

    /// <summary>Replaces the client's gateways; empty: every gateway.</summary>
    public void SetGatewayMemberships(long clientId, IEnumerable<long> gatewayIds)
    {
        Execute("DELETE FROM client_gateways WHERE client_id = @c", ("@c", clientId));
        foreach (long g in gatewayIds.Distinct())
            Execute("INSERT INTO client_gateways (client_id, gateway_id) VALUES (@c, @g)", ("@c", clientId), ("@g", g));
    }

    public string? GetGatewayRuntime(long gatewayId, string key)
    {
        using var cmd = Command("SELECT value FROM gateway_runtime WHERE gateway_id = @g AND key = @k", ("@g", gatewayId), ("@k", key));
        return Scalar(cmd) as string;
    }

    /// <summary>Every gateway's host state (gateway id, key, value).</summary>
    internal List<(long GatewayId, string Key, string Value)> ListGatewayRuntime()
    {
        using var cmd = Command("SELECT gateway_id, key, value FROM gateway_runtime ORDER BY gateway_id, key");
        return Rows(cmd, r => (Int64(r, 0), r.GetString(1), r.GetString(2)), "gateway_runtime");
    }

    public void SetGatewayRuntime(long gatewayId, string key, string? value)
    {
        if (value is null)
            Execute("DELETE FROM gateway_runtime WHERE gateway_id = @g AND key = @k", ("@g", gatewayId), ("@k", key));
        else
            Execute("INSERT INTO gateway_runtime (gateway_id, key, value) VALUES (@g, @k, @v) ON CONFLICT (gateway_id, key) DO UPDATE SET value = @v",
                ("@g", gatewayId), ("@k", key), ("@v", value));
    }

    /// <summary>
    /// A gateway's report: when it was seen, its engine and how many peers its interface has, and
    /// the clients whose state changed since its last report. Inside a write transaction when the
    /// caller holds one; else in a transaction of its own that does not take the registry's write
    /// lock (a report allocates nothing, and must not hold up the admins' verbs).
    /// </summary>
    public void ReportGateway(long gatewayId, DateTimeOffset at, string engine, IReadOnlyList<GatewayPeerReport> peers, int? peerCount = null)
    {
        DbTransaction? own = null;
        if (_tx is null)
        {
            try
            {
                _tx = own = _db.BeginTransaction();
            }
            catch (DbException e)
            {
                throw Translate(e);
            }
        }
        try
        {
            Execute("UPDATE gateways SET last_seen = @at, engine = @e, peer_count = @n WHERE id = @g",
                ("@at", Time(at)), ("@e", engine), ("@n", peerCount ?? peers.Count), ("@g", gatewayId));
            ReportPeers(gatewayId, peers);
            own?.Commit();
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
        finally
        {
            if (own is not null)
            {
                own.Dispose();
                _tx = null;
            }
        }
    }

    /// <summary>
    /// What a gateway's interface says of these clients. A handshake or endpoint the interface no
    /// longer knows (a new interface) keeps the one reported before: a restarted gateway contacts
    /// its clients there.
    /// </summary>
    public void ReportPeers(long gatewayId, IReadOnlyList<GatewayPeerReport> peers)
    {
        // Many rows per statement (a gateway with thousands of active peers reports them in a few
        // round trips, not one each); the same SQL on both dialects.
        const int Chunk = 500;
        for (int from = 0; from < peers.Count; from += Chunk)
        {
            var part = peers.Skip(from).Take(Chunk).ToList();
            var args = new List<(string, object?)>(part.Count * 6 + 1) { ("@g", gatewayId) };
            var rows = new List<string>(part.Count);
            for (int i = 0; i < part.Count; i++)
            {
                var p = part[i];
                rows.Add($"(@g, @c{i}, @hs{i}, @ep{i}, @rx{i}, @tx{i}, @at{i})");
                args.Add(($"@c{i}", p.ClientId));
                args.Add(($"@hs{i}", p.LastHandshake is { } h ? Time(h) : null));
                args.Add(($"@ep{i}", p.Endpoint));
                args.Add(($"@rx{i}", p.RxBytes));
                args.Add(($"@tx{i}", p.TxBytes));
                args.Add(($"@at{i}", Time(p.ReportedAt)));
            }
            Execute($"""
                INSERT INTO gateway_peers (gateway_id, client_id, last_handshake, endpoint, rx, tx, reported_at) VALUES {string.Join(", ", rows)}
                ON CONFLICT (gateway_id, client_id) DO UPDATE SET last_handshake = coalesce(excluded.last_handshake, gateway_peers.last_handshake),
                  endpoint = coalesce(excluded.endpoint, gateway_peers.endpoint), rx = excluded.rx, tx = excluded.tx, reported_at = excluded.reported_at
                """, [.. args]);
        }
    }

    /// <summary>What a gateway last reported of one client, or null.</summary>
    public GatewayPeerReport? GatewayPeer(long gatewayId, long clientId)
    {
        using var cmd = Command("SELECT gateway_id, client_id, last_handshake, endpoint, rx, tx, reported_at FROM gateway_peers WHERE gateway_id = @g AND client_id = @c",
            ("@g", gatewayId), ("@c", clientId));
        return Rows(cmd, r => new GatewayPeerReport(Int64(r, 0), Int64(r, 1), r.IsDBNull(2) ? null : ParseTime(r.GetString(2)),
            r.IsDBNull(3) ? null : r.GetString(3), Int64(r, 4), Int64(r, 5), ParseTime(r.GetString(6))), "gateway_peers").FirstOrDefault();
    }

    /// <summary>What every gateway (or one) last reported of its clients.</summary>
    public IReadOnlyList<GatewayPeerReport> ListGatewayPeers(long? gatewayId = null)
    {
        using var cmd = gatewayId is { } g
            ? Command("SELECT gateway_id, client_id, last_handshake, endpoint, rx, tx, reported_at FROM gateway_peers WHERE gateway_id = @g ORDER BY client_id", ("@g", g))
            : Command("SELECT gateway_id, client_id, last_handshake, endpoint, rx, tx, reported_at FROM gateway_peers ORDER BY gateway_id, client_id");
        return Rows(cmd, r => new GatewayPeerReport(Int64(r, 0), Int64(r, 1), r.IsDBNull(2) ? null : ParseTime(r.GetString(2)),
            r.IsDBNull(3) ? null : r.GetString(3), Int64(r, 4), Int64(r, 5), ParseTime(r.GetString(6))), "gateway_peers");
    }
}
