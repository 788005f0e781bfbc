using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace MkbVpn.Storage;

public sealed partial class Store
{
    /// <summary>
    /// Copies the whole store into a new SQLite file with SQLite's online backup API: one
    /// consistent snapshot (a read transaction), taken while other processes keep writing (WAL).
    /// The copy is left in rollback-journal mode, so the one file holds every page. A PostgreSQL
    /// store is copied row by row from one snapshot (REPEATABLE READ) into a new SQLite file of the same
    /// schema: a backup is the same file whichever database the registry lives in.
    /// </summary>
    public void SnapshotTo(string path)
    {
        if (_d is PostgresDialect)
        {
            CopyToSqliteFile(path);
            return;
        }
        using var dest = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        try
        {
            dest.Open();
            ((SqliteConnection)_db).BackupDatabase(dest);
            Exec(dest, "PRAGMA journal_mode = DELETE;");
        }
        catch (SqliteException e)
        {
            throw Translate(e, Path);
        }
    }

    /// <summary>
    /// Checks a snapshot before it replaces anything: SQLite's integrity check, a schema this
    /// program knows, and a server row. Returns its schema version. Throws a one-line error.
    /// </summary>
    public static int CheckSnapshot(string path, string shownAs)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            db.Open();
            if (Scalar(db, "PRAGMA integrity_check;") as string != "ok")
                throw new UserInputException($"{shownAs}: the database inside fails SQLite's integrity check", ExitCodes.Database);
            long version = (long)(Scalar(db, "PRAGMA user_version;") ?? 0L);
            if (version < 1)
                throw new UserInputException($"{shownAs}: the database inside is not an mkb-vpn store", ExitCodes.UserError);
            if (version > Migrations.Length)
                throw new UserInputException($"{shownAs}: made by a newer mkb-vpn (schema {version}; this one knows {Migrations.Length})", ExitCodes.UserError);
            if ((long)(Scalar(db, "SELECT count(*) FROM server;") ?? 0L) != 1)
                throw new UserInputException($"{shownAs}: the store inside holds no server", ExitCodes.UserError);
            return (int)version;
        }
        catch (SqliteException e)
        {
            throw new UserInputException($"{shownAs}: the database inside cannot be read ({e.Message.Split('\n')[0]})", ExitCodes.Database);
        }
    }

    /// <summary>
    /// Tables that record how hosts and peers are right now (the single host's state and the traffic
    /// sampler's bookkeeping, each gateway host's state, what each gateway last saw of each client),
    /// not what the registry says should be. A restore never takes them from the backup: they were
    /// true of another moment, maybe of other hosts (a backup of one registry restored into another).
    /// </summary>
    private static readonly string[] Observations = ["runtime", "gateway_runtime", "gateway_peers"];

    /// <summary>
    /// Replaces this store's whole content with a checked snapshot, then migrates it to this
    /// program's schema; all of it or none of it. What the backup observed of hosts
    /// (<see cref="Observations"/>) is dropped. SQLite: one step of the online backup API (all pages
    /// or none); nothing follows a SQLite store, so its own observations go too (the host state of
    /// 'up': forwarding as it was, up or down). PostgreSQL: <see cref="ReplaceOnPostgres"/>.
    /// </summary>
    public void ReplaceWith(string snapshotPath)
    {
        if (_d is PostgresDialect)
        {
            ReplaceOnPostgres(snapshotPath);
            return;
        }
        using var src = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = snapshotPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            src.Open();
            src.BackupDatabase((SqliteConnection)_db);
            Exec(_db, "PRAGMA journal_mode = WAL;");
            Migrate(create: true);
            Exec(_db, string.Concat(Observations.Select(t => $"DELETE FROM {t};")));
        }
        catch (SqliteException e)
        {
            throw Translate(e, Path);
        }
    }

    /// <summary>
    /// A restore into a PostgreSQL registry, in one transaction under the writers' lock (every host's
    /// verbs wait; readers see the old registry until the commit): every table emptied (the audit
    /// log's append-only trigger set aside for that, inside the transaction), the snapshot's rows
    /// copied in with their ids. The running gateways' observations stay true across the restore, so
    /// they are kept: each gateway's host state (forwarding as it was, up, engine) and what it saw of
    /// each client (the endpoint a restarted gateway contacts it at), and its last report, moved to
    /// the restored gateway of the same name and the restored client with the same public key;
    /// those of gateways or clients the backup does not have go with them. The triggers notify every
    /// gateway at the commit ('all' for the server's row): each reconciles to the restored registry.
    /// </summary>
    private void ReplaceOnPostgres(string snapshotPath)
    {
        // The snapshot is a private copy of the backup's database: brought to this program's schema in place.
        using var source = Open(snapshotPath, create: false);
        using var read = source._d.BeginRead(source._db);
        using var tx = BeginWrite();
        try
        {
            var gateways = ListGateways();
            var clientKeys = ClientKeys().ToDictionary(c => c.Id, c => c.PublicKey);
            var runtime = ListGatewayRuntime();
            var peers = ListGatewayPeers();

            Exec(_db, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;" +
                string.Concat(Tables.Reverse().Select(t => $"DELETE FROM {t};")) +
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;", _tx);
            source.CopyRows(read, this, Tables.Except(Observations), new Dictionary<string, long>(StringComparer.Ordinal));

            var restored = ListGateways().ToDictionary(g => g.Name, g => g.Id, StringComparer.OrdinalIgnoreCase);
            var restoredClients = ClientKeys().ToDictionary(c => c.PublicKey, c => c.Id, StringComparer.Ordinal);
            var gatewayMap = gateways.Where(g => restored.ContainsKey(g.Name)).ToDictionary(g => g.Id, g => restored[g.Name]);
            foreach (var g in gateways.Where(g => gatewayMap.ContainsKey(g.Id)))
                Execute("UPDATE gateways SET last_seen = @at, engine = @e, peer_count = @n WHERE id = @g",
                    ("@at", g.LastSeen is { } seen ? Time(seen) : null), ("@e", g.Engine), ("@n", g.PeerCount), ("@g", gatewayMap[g.Id]));
            foreach (var (gatewayId, key, value) in runtime)
                if (gatewayMap.TryGetValue(gatewayId, out long id))
                    SetGatewayRuntime(id, key, value);
            foreach (var seen in peers.GroupBy(p => p.GatewayId))
            {
                if (!gatewayMap.TryGetValue(seen.Key, out long id))
                    continue;
                ReportPeers(id, [.. seen
                    .Where(p => clientKeys.TryGetValue(p.ClientId, out var key) && restoredClients.ContainsKey(key))
                    .Select(p => p with { GatewayId = id, ClientId = restoredClients[clientKeys[p.ClientId]] })]);
            }
            tx.Commit();
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }
}
