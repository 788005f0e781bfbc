using System.Net;
using System.Data.Common;
using System.Globalization;
using MkbVpn.Addressing;
using MkbVpn.Clients;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Storage;

public sealed partial class Store
{
    private const string ClientColumns =
        "id, name, private_key, public_key, preshared_key, address4, address6, enabled, created_at, dns, allowed_ips, keepalive, last_endpoint, last_handshake, expires_at";

    public IReadOnlyList<Client> ListClients()
    {
        using var cmd = Command($"SELECT {ClientColumns} FROM clients ORDER BY id");
        return Rows(cmd, ReadClient, "clients");
    }

    /// <summary>
    /// Every client whose row parses, for views (list, status): a row that does not parse (edited by hand, a
    /// damaged disk) is described in <paramref name="damaged"/> instead of hiding every other client. Paths that
    /// write or reconcile use <see cref="ListClients()"/>, which refuses the whole store (exit 8).
    /// </summary>
    public IReadOnlyList<Client> ListClients(List<string> damaged)
    {
        ArgumentNullException.ThrowIfNull(damaged);
        using var cmd = Command($"SELECT {ClientColumns} FROM clients ORDER BY id");
        return Rows(cmd, ReadClient, "clients", DamagedRow(damaged));
    }

    // Describes a client row that does not parse in one line (its name and row id, never its keys).
    private static Action<DbDataReader, Exception> DamagedRow(List<string> damaged) => (r, e) =>
    {
        string name = r.IsDBNull(1) ? "?" : Convert.ToString(r.GetValue(1), CultureInfo.InvariantCulture) ?? "?";
        damaged.Add($"client '{name}' (row {Convert.ToString(r.GetValue(0), CultureInfo.InvariantCulture)}) does not parse ({e.GetType().Name}): left out; restore it from a backup ('mkb-vpn restore')");
    };

    public Client? FindClient(string name)
    {
        using var cmd = Command($"SELECT {ClientColumns} FROM clients WHERE {_d.NoCase("name")} = {_d.NoCase("@n")}", ("@n", name));
        return Rows(cmd, ReadClient, "clients").FirstOrDefault();
    }

    /// <summary>The members of a group.</summary>
    public IReadOnlyList<Client> ClientsInGroup(long groupId)
    {
        using var cmd = Command($"SELECT {ClientColumns} FROM clients WHERE id IN (SELECT client_id FROM client_groups WHERE group_id = @g) ORDER BY id", ("@g", groupId));
        return Rows(cmd, ReadClient, "clients");
    }

    public Client? FindClientById(long id)
    {
        using var cmd = Command($"SELECT {ClientColumns} FROM clients WHERE id = @id", ("@id", id));
        return Rows(cmd, ReadClient, "clients").FirstOrDefault();
    }

    public Client RequireClient(string name) =>
        FindClient(name) ?? throw new UserInputException($"no client named '{name}'", ExitCodes.NotFound);

    public Client InsertClient(Client c)
    {
        try
        {
            using var cmd = Command($"""
                INSERT INTO clients (name, private_key, public_key, preshared_key, address4, address6, enabled, created_at, dns, allowed_ips, keepalive, expires_at)
                VALUES (@name, @priv, @pub, @psk, @a4, @a6, @en, @created, @dns, @aips, @ka, @exp)
                RETURNING id
                """,
                ("@name", c.Name), ("@priv", c.PrivateKey?.ToBase64()), ("@pub", c.PublicKey.ToBase64()), ("@psk", c.PresharedKey.ToBase64()),
                ("@a4", c.Address4?.ToString()), ("@a6", c.Address6?.ToString()), ("@en", c.Enabled ? 1 : 0), ("@created", Time(c.CreatedAt)),
                ("@dns", c.Dns is null ? null : JoinList(c.Dns)), ("@aips", c.AllowedIps is null ? null : JoinList(c.AllowedIps)), ("@ka", c.Keepalive),
                ("@exp", c.ExpiresAt is { } exp ? Time(exp) : null));
            long id = Convert.ToInt64(Scalar(cmd), System.Globalization.CultureInfo.InvariantCulture);
            foreach (var a in c.TunnelAddresses())
                Execute("DELETE FROM released_addresses WHERE address = @a", ("@a", a.BaseAddress.ToString()));
            return c with { Id = id };
        }
        catch (DbException e) when (_d.Violation(e) is { } what)
        {
            if (what.Contains("name", StringComparison.Ordinal))
                throw new UserInputException($"a client named '{c.Name}' already exists", ExitCodes.Conflict);
            if (what.Contains("address", StringComparison.Ordinal))
                throw new UserInputException($"address {c.AddressText} is already taken", ExitCodes.Conflict);
            throw new UserInputException($"client '{c.Name}' conflicts with an existing client", ExitCodes.Conflict);
        }
    }

    /// <summary>Deletes a client; its addresses are remembered as released (reused last).</summary>
    public void DeleteClient(Client c, DateTimeOffset now)
    {
        Execute("DELETE FROM clients WHERE id = @id", ("@id", c.Id));
        foreach (var a in c.TunnelAddresses())
            Execute("INSERT INTO released_addresses (address, released_at) VALUES (@a, @t) ON CONFLICT (address) DO UPDATE SET released_at = @t",
                ("@a", a.BaseAddress.ToString()), ("@t", Time(now)));
    }

    public void SetEnabled(Client c, bool enabled) =>
        Execute("UPDATE clients SET enabled = @e WHERE id = @id", ("@e", enabled ? 1 : 0), ("@id", c.Id));

    /// <summary>Records what the live interface says of each peer (endpoint, handshake), for recovery and status.</summary>
    public int RecordLive(IEnumerable<(WireGuardKey PublicKey, string? Endpoint, DateTimeOffset? Handshake)> peers)
    {
        int changed = 0;
        using var cmd = Command("""
            UPDATE clients SET last_endpoint = coalesce(@ep, last_endpoint), last_handshake = coalesce(@hs, last_handshake)
            WHERE public_key = @pub AND (coalesce(@ep, last_endpoint) IS DISTINCT FROM last_endpoint OR coalesce(@hs, last_handshake) IS DISTINCT FROM last_handshake)
            """);
        var pub = RowParameter(cmd, "@pub", System.Data.DbType.String);
        var ep = RowParameter(cmd, "@ep", System.Data.DbType.String);
        var hs = RowParameter(cmd, "@hs", System.Data.DbType.String);
        foreach (var p in peers)
        {
            if (p.Endpoint is null && p.Handshake is null)
                continue;   // nothing to record (the statement would change no row): a peer that never connected
            pub.Value = p.PublicKey.ToBase64();
            ep.Value = (object?)p.Endpoint ?? DBNull.Value;
            hs.Value = p.Handshake is { } t ? Time(t) : DBNull.Value;
            changed += Run(cmd);
        }
        return changed;
    }

    /// <summary>The addresses of one family that clients hold, and those released before (oldest first).</summary>
    public AddressUsage LoadAddressUsage(bool v4)
    {
        var usage = new AddressUsage();
        string column = v4 ? "address4" : "address6";
        using (var cmd = Command($"SELECT {column} FROM clients WHERE {column} IS NOT NULL"))
        using (var r = Reader(cmd))
        {
            while (r.Read())
                usage.InUse.Add(AddressPool.ToNumber(IPAddress.Parse(r.GetString(0))));
        }
        using (var cmd = Command("SELECT address FROM released_addresses ORDER BY released_at, address"))
        using (var r = Reader(cmd))
        {
            while (r.Read())
            {
                var a = IPAddress.Parse(r.GetString(0));
                if ((a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) != v4)
                    continue;
                var n = AddressPool.ToNumber(a);
                if (usage.ReleasedSet.Add(n))
                    usage.Released.Add(n);
            }
        }
        return usage;
    }

    public sealed class AddressUsage
    {
        public HashSet<UInt128> InUse { get; } = [];
        public List<UInt128> Released { get; } = [];
        public HashSet<UInt128> ReleasedSet { get; } = [];
    }

    private static Client ReadClient(DbDataReader r) => new()
    {
        Id = Int64(r, 0),
        Name = r.GetString(1),
        PrivateKey = r.IsDBNull(2) ? null : WireGuardKey.ParseBase64(r.GetString(2)),
        PublicKey = WireGuardKey.ParseBase64(r.GetString(3)),
        PresharedKey = WireGuardKey.ParseBase64(r.GetString(4)),
        Address4 = r.IsDBNull(5) ? null : IPAddress.Parse(r.GetString(5)),
        Address6 = r.IsDBNull(6) ? null : IPAddress.Parse(r.GetString(6)),
        Enabled = Int64(r, 7) != 0,
        CreatedAt = ParseTime(r.GetString(8)),
        Dns = r.IsDBNull(9) ? null : SplitList(r.GetString(9)),
        AllowedIps = r.IsDBNull(10) ? null : [.. SplitList(r.GetString(10)).Select(IPNetwork.Parse)],
        Keepalive = r.IsDBNull(11) ? null : Int32(r, 11),
        LastEndpoint = r.IsDBNull(12) ? null : r.GetString(12),
        LastHandshake = r.IsDBNull(13) ? null : ParseTime(r.GetString(13)),
        ExpiresAt = r.IsDBNull(14) ? null : ParseTime(r.GetString(14)),
    };

    /// <summary>Writes what 'set' may change: name, DNS, AllowedIPs, keepalive, expiry.</summary>
    public void UpdateClient(Client c)
    {
        try
        {
            Execute("""
                UPDATE clients SET name = @name, dns = @dns, allowed_ips = @aips, keepalive = @ka, expires_at = @exp WHERE id = @id
                """,
                ("@name", c.Name), ("@dns", c.Dns is null ? null : JoinList(c.Dns)), ("@aips", c.AllowedIps is null ? null : JoinList(c.AllowedIps)),
                ("@ka", c.Keepalive), ("@exp", c.ExpiresAt is { } exp ? Time(exp) : null), ("@id", c.Id));
        }
        catch (DbException e) when (_d.Violation(e) is not null)
        {
            throw new FieldException("name", $"name: a client named '{c.Name}' already exists", ExitCodes.Conflict);
        }
    }

    /// <summary>Enabled clients whose expiry has passed.</summary>
    public IReadOnlyList<Client> ExpiredButEnabled(DateTimeOffset now)
    {
        using var cmd = Command($"SELECT {ClientColumns} FROM clients WHERE enabled = 1 AND expires_at IS NOT NULL AND expires_at <= @now ORDER BY id", ("@now", Time(now)));
        using var r = Reader(cmd);
        var list = new List<Client>();
        while (r.Read())
            list.Add(ReadClient(r));
        return list;
    }
}
