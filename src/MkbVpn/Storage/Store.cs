using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Clients;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Storage;

/// <summary>
/// The single source of truth: server settings and clients in one SQLite file.
/// The only place in mkb-vpn with SQL. Writers serialise through BEGIN IMMEDIATE plus
/// SQLite's busy timeout; readers never block writers (WAL).
/// </summary>
public sealed partial class Store : IDisposable
{
    public const string FileName = "mkb-vpn.db";
    private readonly SqliteConnection _db;
    private SqliteTransaction? _tx;

    private Store(SqliteConnection db, string path)
    {
        _db = db;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Opens (and migrates) the store. <paramref name="create"/>: create the file if missing.</summary>
    public static Store Open(string path, bool create)
    {
        if (!create && (!File.Exists(path) || new FileInfo(path).Length == 0))
        {
            // An empty file is what a failed first init or a full disk leaves: never write a schema into it from a read.
            throw new UserInputException($"mkb-vpn is not initialised here ({System.IO.Path.GetDirectoryName(path)}): run 'mkb-vpn init' first", ExitCodes.NotInitialised);
        }
        if (create && !File.Exists(path))
        {
            // Private keys live in this file: owner-only from the first byte.
            using var _ = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
        var db = new SqliteConnection(cs);
        try
        {
            db.Open();
            Exec(db, "PRAGMA busy_timeout = 15000;");
            // WAL needs a write lock once; under contention the busy timeout covers it.
            string mode = Scalar(db, "PRAGMA journal_mode;") as string ?? "";
            if (!mode.Equals("wal", StringComparison.OrdinalIgnoreCase))
                Exec(db, "PRAGMA journal_mode = WAL;");
            Exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
            var store = new Store(db, path);
            store.Migrate();
            return store;
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw Translate(e, path);
        }
    }

    /// <summary>Turns SQLite's errors into one-line messages an admin can act on.</summary>
    public static UserInputException Translate(SqliteException e, string path) => e.SqliteErrorCode switch
    {
        5 or 6 => new UserInputException($"database {path} is locked by another process; try again", ExitCodes.Database),
        11 or 26 => new UserInputException($"database {path} is corrupt or not an mkb-vpn database (restore it from a backup)", ExitCodes.Database),
        8 => new UserInputException($"database {path} is read-only (run as root?)", ExitCodes.NeedsRoot),
        14 => new UserInputException($"cannot open database {path} (missing or no permission)", ExitCodes.Database),
        _ => new UserInputException($"database {path}: {e.Message.Split('\n')[0]}", ExitCodes.Database),
    };

    // ---- migrations -------------------------------------------------------

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE server (
            id                INTEGER PRIMARY KEY CHECK (id = 1),
            interface         TEXT NOT NULL,
            private_key       TEXT NOT NULL,
            public_key        TEXT NOT NULL,
            listen_port       INTEGER NOT NULL,
            endpoint_host     TEXT NOT NULL,
            endpoint_port     INTEGER NOT NULL,
            subnet4           TEXT,
            subnet6           TEXT,
            dns               TEXT NOT NULL,
            mtu               INTEGER NOT NULL,
            internal_networks TEXT NOT NULL,
            full_tunnel       INTEGER NOT NULL,
            masquerade        INTEGER NOT NULL,
            client_to_client  INTEGER NOT NULL,
            keepalive         INTEGER NOT NULL,
            created_at        TEXT NOT NULL
        );
        CREATE TABLE clients (
            id             INTEGER PRIMARY KEY,
            name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
            private_key    TEXT NOT NULL,
            public_key     TEXT NOT NULL UNIQUE,
            preshared_key  TEXT NOT NULL,
            address4       TEXT UNIQUE,
            address6       TEXT UNIQUE,
            enabled        INTEGER NOT NULL DEFAULT 1,
            created_at     TEXT NOT NULL,
            dns            TEXT,
            allowed_ips    TEXT,
            keepalive      INTEGER,
            last_endpoint  TEXT,
            last_handshake TEXT
        );
        CREATE TABLE released_addresses (
            address     TEXT PRIMARY KEY,
            released_at TEXT NOT NULL
        );
        CREATE TABLE runtime (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
        // 2: the web admin page and the REST API. Only hashes of passwords, tokens and sessions.
        """
        CREATE TABLE admins (
            id            INTEGER PRIMARY KEY,
            name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL,
            totp_secret   TEXT,
            created_at    TEXT NOT NULL
        );
        CREATE TABLE api_tokens (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
            secret_hash  TEXT NOT NULL,
            created_at   TEXT NOT NULL,
            last_used_at TEXT
        );
        CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL,
            admin_id    INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
            created_at  TEXT NOT NULL,
            expires_at  TEXT NOT NULL
        );
        CREATE INDEX clients_name ON clients (name COLLATE NOCASE);
        """,
        // 3: access control (groups, allow rules), expiry, and the audit log. An existing server gets
        // the rules that keep its behaviour: every client reaches the internal networks and the server.
        """
        ALTER TABLE clients ADD COLUMN expires_at TEXT;
        CREATE TABLE groups (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description TEXT NOT NULL DEFAULT '',
            created_at  TEXT NOT NULL
        );
        CREATE TABLE client_groups (
            client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            group_id  INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            PRIMARY KEY (client_id, group_id)
        );
        CREATE INDEX client_groups_group ON client_groups (group_id);
        CREATE TABLE access_rules (
            id         INTEGER PRIMARY KEY,
            subject    TEXT NOT NULL CHECK (subject IN ('everyone', 'group', 'client')),
            group_id   INTEGER REFERENCES groups (id) ON DELETE CASCADE,
            client_id  INTEGER REFERENCES clients (id) ON DELETE CASCADE,
            target     TEXT NOT NULL,
            proto      TEXT NOT NULL,
            port_from  INTEGER,
            port_to    INTEGER,
            created_at TEXT NOT NULL,
            CHECK ((subject = 'everyone') = (group_id IS NULL AND client_id IS NULL)),
            CHECK ((subject = 'group') = (group_id IS NOT NULL)),
            CHECK ((subject = 'client') = (client_id IS NOT NULL))
        );
        CREATE TABLE audit_log (
            id      INTEGER PRIMARY KEY,
            at      TEXT NOT NULL,
            actor   TEXT NOT NULL,
            via     TEXT NOT NULL,
            action  TEXT NOT NULL,
            target  TEXT,
            client  TEXT,
            detail  TEXT,
            outcome TEXT NOT NULL
        );
        CREATE INDEX audit_log_client ON audit_log (client COLLATE NOCASE);
        CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        INSERT INTO access_rules (subject, target, proto, created_at) SELECT 'everyone', 'internal', 'any', created_at FROM server;
        INSERT INTO access_rules (subject, target, proto, created_at) SELECT 'everyone', 'server', 'any', created_at FROM server;
        """,
        // 4: a client imported without its private key (public key only): private_key may be NULL.
        // Dropping NOT NULL changes no stored row, so the table's recorded definition is edited in
        // place (sqlite.org/lang_altertable.html, "changes that do not affect the on-disk content")
        // rather than copying the table, which would cascade into tables that reference clients.
        // Migrate bumps schema_version afterwards, so every connection reloads the definition.
        """
        PRAGMA writable_schema = ON;
        UPDATE sqlite_schema SET sql = replace(sql, 'private_key    TEXT NOT NULL', 'private_key    TEXT')
        WHERE type = 'table' AND name = 'clients';
        PRAGMA writable_schema = OFF;
        """,
        // 5: the time step of the last TOTP code accepted per admin, so a code is accepted once (RFC 6238 section 5.2).
        """
        ALTER TABLE admins ADD COLUMN totp_last_step INTEGER;
        """,
        // 6: traffic history (Store.Traffic.cs). Per client and in total, bytes received and sent and
        // minutes online per minute (kept traffic_minute_hours) and per hour (kept traffic_hour_days);
        // minute is the bucket's start in minutes since 1970-01-01 UTC. A client's history goes with
        // it; the totals keep its share. traffic_counters: each peer's byte counters at the last
        // sample, to take differences across samples (and notice resets). WITHOUT ROWID (SQLite):
        // the primary key is the table, about half the size of a rowid table plus its key index;
        // elsewhere (PostgreSQL) the clause is simply left out.
        """
        ALTER TABLE server ADD COLUMN traffic_minute_hours INTEGER NOT NULL DEFAULT 48;
        ALTER TABLE server ADD COLUMN traffic_hour_days INTEGER NOT NULL DEFAULT 90;
        CREATE TABLE traffic_minute (
            client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            minute    INTEGER NOT NULL,
            rx        INTEGER NOT NULL,
            tx        INTEGER NOT NULL,
            online    INTEGER NOT NULL,
            PRIMARY KEY (client_id, minute)
        ) WITHOUT ROWID;
        CREATE TABLE traffic_hour (
            client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            minute    INTEGER NOT NULL,
            rx        INTEGER NOT NULL,
            tx        INTEGER NOT NULL,
            online    INTEGER NOT NULL,
            PRIMARY KEY (client_id, minute)
        ) WITHOUT ROWID;
        CREATE TABLE traffic_total_minute (
            minute INTEGER NOT NULL PRIMARY KEY,
            rx     INTEGER NOT NULL,
            tx     INTEGER NOT NULL,
            online INTEGER NOT NULL
        );
        CREATE TABLE traffic_total_hour (
            minute INTEGER NOT NULL PRIMARY KEY,
            rx     INTEGER NOT NULL,
            tx     INTEGER NOT NULL,
            online INTEGER NOT NULL
        );
        CREATE TABLE traffic_counters (
            client_id INTEGER NOT NULL PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
            rx        INTEGER NOT NULL,
            tx        INTEGER NOT NULL,
            minute    INTEGER NOT NULL
        );
        """,
    ];

    public static int SchemaVersion => Migrations.Length;

    /// <summary>The schema version the file is at (after Open: the current one).</summary>
    public long UserVersion() => (long)(Scalar(_db, "PRAGMA user_version;", _tx) ?? 0L);

    private void Migrate()
    {
        long version = (long)(Scalar(_db, "PRAGMA user_version;") ?? 0L);
        if (version == Migrations.Length)
            return;
        if (version > Migrations.Length)
            throw new UserInputException($"database {Path} is from a newer mkb-vpn (schema {version}, this one knows {Migrations.Length})", ExitCodes.Database);
        using var tx = BeginWrite();
        version = (long)(Scalar(_db, "PRAGMA user_version;", _tx) ?? 0L);   // re-read under the lock
        for (long v = version; v < Migrations.Length; v++)
        {
            Exec(_db, Migrations[v], _tx);
            Exec(_db, $"PRAGMA user_version = {v + 1};", _tx);
            // Migration 4 edits the definition's text: make sure it took (a clients table written differently would not match)
            // before later migrations run; a new schema cookie makes this connection re-read the definition first.
            if (v + 1 == 4)
                Exec(_db, $"PRAGMA schema_version = {(long)(Scalar(_db, "PRAGMA schema_version;", _tx) ?? 0L) + 1};", _tx);
            if (v + 1 == 4 && Scalar(_db, "SELECT \"notnull\" FROM pragma_table_info('clients') WHERE name = 'private_key';", _tx) is long notNull && notNull != 0)
                throw new InvalidOperationException("schema migration 4 did not apply: clients.private_key is still NOT NULL");
        }
        // A migration may edit sqlite_schema directly (4); a new schema cookie makes every connection re-read it.
        long cookie = (long)(Scalar(_db, "PRAGMA schema_version;", _tx) ?? 0L);
        Exec(_db, $"PRAGMA schema_version = {cookie + 1};", _tx);
        tx.Commit();
    }

    // ---- transactions -----------------------------------------------------

    /// <summary>Starts a write transaction (BEGIN IMMEDIATE): other writers wait, readers go on.</summary>
    public WriteTransaction BeginWrite()
    {
        if (_tx is not null)
            throw new InvalidOperationException("a write transaction is already open");
        try
        {
            _tx = _db.BeginTransaction(deferred: false);
        }
        catch (SqliteException e)
        {
            throw Translate(e, Path);
        }
        return new WriteTransaction(this);
    }

    public sealed class WriteTransaction(Store store) : IDisposable
    {
        private bool _done;

        public void Commit()
        {
            try
            {
                store._tx!.Commit();
            }
            catch (SqliteException e)
            {
                throw Translate(e, store.Path);
            }
            finally
            {
                _done = true;
                store._tx!.Dispose();
                store._tx = null;
            }
        }

        public void Dispose()
        {
            if (_done)
                return;
            _done = true;
            store._tx?.Rollback();
            store._tx?.Dispose();
            store._tx = null;
        }
    }

    public void Dispose() => _db.Dispose();

    // ---- helpers ----------------------------------------------------------

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] args)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = _tx;
        foreach (var (name, value) in args)
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    private int Execute(string sql, params (string, object?)[] args)
    {
        using var cmd = Command(sql, args);
        try
        {
            return cmd.ExecuteNonQuery();
        }
        catch (SqliteException e) when (e.SqliteErrorCode != 19)
        {
            throw Translate(e, Path);
        }
    }

    private static void Exec(SqliteConnection db, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection db, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd.ExecuteScalar();
    }

    /// <summary>
    /// Reads every row; a damaged page or a row that does not parse is the database's fault, not an
    /// internal error: one line naming the table, exit code 8.
    /// </summary>
    private List<T> Rows<T>(SqliteCommand cmd, Func<SqliteDataReader, T> read, string table)
    {
        using var r = Reader(cmd);
        var list = new List<T>();
        try
        {
            while (r.Read())
                list.Add(read(r));
        }
        catch (SqliteException e)
        {
            throw Translate(e, Path);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or ArgumentException or OverflowException)
        {
            throw new UserInputException($"database {Path}: a row of {table} does not parse ({e.GetType().Name}); restore it from a backup ('mkb-vpn restore')", ExitCodes.Database);
        }
        return list;
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static string JoinList<T>(IEnumerable<T> items) => string.Join(",", items);

    private static List<string> SplitList(string s) => [.. s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static IPNetwork? Net(object value) => value is string s ? IPNetwork.Parse(s) : null;
}
