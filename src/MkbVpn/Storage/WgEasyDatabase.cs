using Microsoft.Data.Sqlite;

namespace MkbVpn.Storage;

/// <summary>
/// Reads wg-easy v15's SQLite database (read-only) for import: the columns its migrations
/// (src/server/database/migrations) define for interfaces_table, user_configs_table and
/// clients_table. The mapping to mkb-vpn's model is in Configs/Importers/WgEasyReader.
/// </summary>
public static class WgEasyDatabase
{
    public sealed record Interface(string Name, int Port, string PrivateKey, string PublicKey, string Ipv4Cidr, string? Ipv6Cidr, int Mtu);

    public sealed record UserConfig(string Host, int Port, string DefaultDns, string DefaultAllowedIps, int DefaultKeepalive, int DefaultMtu);

    public sealed record ClientRow(long Id, string Name, string Ipv4Address, string? Ipv6Address, string PrivateKey, string PublicKey,
        string PreSharedKey, string? ExpiresAt, string? AllowedIps, int PersistentKeepalive, string? Dns, bool Enabled, string CreatedAt,
        string? ServerAllowedIps, int Mtu);

    public sealed record Contents(Interface Interface, UserConfig? UserConfig, IReadOnlyList<ClientRow> Clients);

    public static bool LooksLikeSqlite(string path)
    {
        Span<byte> head = stackalloc byte[16];
        using var f = File.OpenRead(path);
        return f.Read(head) == 16 && head.SequenceEqual("SQLite format 3\0"u8);
    }

    /// <summary>Reads the first interface (wg0) and its clients. A missing table or column is a one-line FormatException.</summary>
    public static Contents Read(string path)
    {
        var cs = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString();
        using var db = new SqliteConnection(cs);
        try
        {
            db.Open();
            Interface? iface = null;
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = "SELECT name, port, private_key, public_key, ipv4_cidr, ipv6_cidr, mtu FROM interfaces_table ORDER BY name = 'wg0' DESC, name LIMIT 1";
                using var r = cmd.ExecuteReader();
                if (r.Read())
                    iface = new(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3), r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.GetInt32(6));
            }
            if (iface is null)
                throw new FormatException("interfaces_table is empty: wg-easy was never set up");
            UserConfig? user = null;
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = "SELECT host, port, default_dns, default_allowed_ips, default_persistent_keepalive, default_mtu FROM user_configs_table WHERE id = $id";
                cmd.Parameters.AddWithValue("$id", iface.Name);
                using var r = cmd.ExecuteReader();
                if (r.Read())
                    user = new(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3), r.GetInt32(4), r.GetInt32(5));
            }
            var clients = new List<ClientRow>();
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = """
                    SELECT id, name, ipv4_address, ipv6_address, private_key, public_key, pre_shared_key, expires_at, allowed_ips,
                           persistent_keepalive, dns, enabled, created_at, server_allowed_ips, mtu
                    FROM clients_table WHERE interface_id = $id ORDER BY id
                    """;
                cmd.Parameters.AddWithValue("$id", iface.Name);
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    clients.Add(new(r.GetInt64(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4), r.GetString(5),
                        r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), r.GetInt32(9),
                        r.IsDBNull(10) ? null : r.GetString(10), r.GetInt64(11) != 0, r.GetString(12),
                        r.IsDBNull(13) ? null : r.GetString(13), r.GetInt32(14)));
            }
            return new Contents(iface, user, clients);
        }
        catch (SqliteException e)
        {
            throw new FormatException($"not a wg-easy v15 database ({e.Message.Split('\n')[0]})");
        }
        catch (InvalidCastException)
        {
            throw new FormatException("not a wg-easy v15 database (a column holds an unexpected type)");
        }
    }
}
