using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MkbVpn.Storage;

/// <summary>
/// Where SQLite and PostgreSQL differ for the statements the store runs (its DDL differs too:
/// <see cref="Store"/>'s migrations). Everything else is written once.
/// </summary>
internal abstract class StoreDialect
{
    /// <summary>
    /// <paramref name="expr"/> compared and ordered without regard to ASCII case, the way SQLite's
    /// NOCASE does (the names this is used for are ASCII; order by folded bytes, never by a locale).
    /// </summary>
    public abstract string NoCase(string expr);

    /// <summary>LIKE that ignores ASCII case (SQLite's LIKE does; PostgreSQL's does not).</summary>
    public abstract string Like { get; }

    /// <summary>The schema version the database is at; 0 for an empty one.</summary>
    public abstract long ReadVersion(DbConnection db, DbTransaction? tx);

    public abstract void WriteVersion(DbConnection db, DbTransaction tx, long version);

    /// <summary>Starts a write transaction that excludes every other writer of the store until it ends.</summary>
    public abstract DbTransaction BeginWrite(DbConnection db);

    /// <summary>A read transaction over one consistent snapshot (a copy reads every table in it).</summary>
    public abstract DbTransaction BeginRead(DbConnection db);

    /// <summary>The tables in the database, less the version's own.</summary>
    public abstract IReadOnlyList<string> ListTables(DbConnection db);

    /// <summary>After rows with their ids were copied into <paramref name="table"/>: what the next insert needs (PostgreSQL: its identity counter).</summary>
    public virtual void AfterCopy(DbConnection db, DbTransaction tx, string table)
    {
    }

    /// <summary>For an integrity violation (unique, not null, check, foreign key): the constraint or column named, else null.</summary>
    public abstract string? Violation(DbException e);

    /// <summary>One line an admin can act on; never a password (the location is shown without it).</summary>
    public abstract UserInputException Translate(DbException e, string where);

    protected static object? Scalar(DbConnection db, DbTransaction? tx, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd.ExecuteScalar();
    }

    protected static void Exec(DbConnection db, DbTransaction? tx, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }
}

/// <summary>The embedded default: one file, WAL, the version in PRAGMA user_version.</summary>
internal sealed class SqliteDialect : StoreDialect
{
    public static readonly SqliteDialect Instance = new();

    public override string NoCase(string expr) => $"{expr} COLLATE NOCASE";

    public override string Like => "LIKE";

    public override long ReadVersion(DbConnection db, DbTransaction? tx) => (long)(Scalar(db, tx, "PRAGMA user_version;") ?? 0L);

    public override void WriteVersion(DbConnection db, DbTransaction tx, long version) =>
        Exec(db, tx, $"PRAGMA user_version = {version.ToString(CultureInfo.InvariantCulture)};");

    /// <summary>BEGIN IMMEDIATE: other writers wait (busy timeout), readers go on (WAL).</summary>
    public override DbTransaction BeginWrite(DbConnection db) => ((SqliteConnection)db).BeginTransaction(deferred: false);

    public override DbTransaction BeginRead(DbConnection db) => ((SqliteConnection)db).BeginTransaction(deferred: true);

    public override IReadOnlyList<string> ListTables(DbConnection db)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read())
            list.Add(r.GetString(0));
        return list;
    }

    public override string? Violation(DbException e) => e is SqliteException { SqliteErrorCode: 19 } s ? s.Message : null;

    public override UserInputException Translate(DbException e, string path) => (e as SqliteException)?.SqliteErrorCode switch
    {
        5 or 6 => new UserInputException($"database {path} is locked by another process; try again", ExitCodes.Database),
        11 or 26 => new UserInputException($"database {path} is corrupt or not an mkb-vpn database (restore it from a backup)", ExitCodes.Database),
        8 => new UserInputException($"database {path} is read-only (run as root?)", ExitCodes.NeedsRoot),
        14 => new UserInputException($"cannot open database {path} (missing or no permission)", ExitCodes.Database),
        _ => new UserInputException($"database {path}: {e.Message.Split('\n')[0]}", ExitCodes.Database),
    };
}

/// <summary>
/// A registry in PostgreSQL. Writers serialise on a transaction-scoped advisory lock taken first in
/// every write transaction (READ COMMITTED, so every statement after it sees all that was committed
/// before); unique constraints back it up. The version is kept in the table schema_version.
/// </summary>
internal sealed class PostgresDialect : StoreDialect
{
    public static readonly PostgresDialect Instance = new();

    /// <summary>The advisory lock key of the registry's writers: "mkbvpn" in ASCII.</summary>
    public const long WriteLockKey = 0x6d6b6276706e;

    /// <summary>How long a writer waits for another one before giving up with a one-line "busy" (SQLite: its busy timeout).</summary>
    public const int LockWaitSeconds = 15;

    /// <summary>Lower-cased, then compared by bytes ("C"): SQLite's NOCASE for ASCII, whatever the database's locale.</summary>
    public override string NoCase(string expr) => $"lower({expr}) COLLATE \"C\"";

    public override string Like => "ILIKE";

    public override long ReadVersion(DbConnection db, DbTransaction? tx)
    {
        // A scan of the catalog with this statement's snapshot, not to_regclass(): that answers from a cache
        // which, in a session that looked before another one created the table, can still say "no such table".
        if (Convert.ToInt64(Scalar(db, tx, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_version'"), CultureInfo.InvariantCulture) == 0)
            return 0;
        return Convert.ToInt64(Scalar(db, tx, "SELECT coalesce(max(version), 0) FROM schema_version") ?? 0L, CultureInfo.InvariantCulture);
    }

    public override void WriteVersion(DbConnection db, DbTransaction tx, long version) =>
        Exec(db, tx, $"""
            CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
            DELETE FROM schema_version;
            INSERT INTO schema_version (version) VALUES ({version.ToString(CultureInfo.InvariantCulture)});
            """);

    /// <summary>
    /// BEGIN, then the writers' lock. A wait that ends in a deadlock report or a serialization failure
    /// (another session's doing, nothing of ours is written yet) is retried twice; a lock held past
    /// <see cref="LockWaitSeconds"/> is "busy", as SQLite's busy timeout is.
    /// </summary>
    public override DbTransaction BeginWrite(DbConnection db)
    {
        for (int attempt = 1; ; attempt++)
        {
            var tx = db.BeginTransaction(IsolationLevel.ReadCommitted);
            try
            {
                Exec(db, tx, $"SET LOCAL lock_timeout = '{LockWaitSeconds}s'; SELECT pg_advisory_xact_lock({WriteLockKey});");
                return tx;
            }
            catch (PostgresException e) when (attempt < 3 && e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected)
            {
                tx.Rollback();
                tx.Dispose();
                Thread.Sleep(Random.Shared.Next(10, 50) * attempt);
            }
            catch
            {
                tx.Dispose();
                throw;
            }
        }
    }

    public override DbTransaction BeginRead(DbConnection db) => db.BeginTransaction(IsolationLevel.RepeatableRead);

    public override IReadOnlyList<string> ListTables(DbConnection db)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY 1";
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read())
            list.Add(r.GetString(0));
        return list;
    }

    /// <summary>Rows copied with their ids leave the identity counter behind: it continues after the largest.</summary>
    public override void AfterCopy(DbConnection db, DbTransaction tx, string table)
    {
        if (Scalar(db, tx, $"SELECT pg_get_serial_sequence(table_name, column_name) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' AND column_name = 'id'") is not string sequence)
            return;
        Exec(db, tx, $"SELECT setval('{sequence}', coalesce((SELECT max(id) FROM {table}), 0) + 1, false)");
    }

    public override string? Violation(DbException e) =>
        e is PostgresException p && p.SqlState.StartsWith("23", StringComparison.Ordinal) ? p.ConstraintName ?? p.ColumnName ?? p.MessageText : null;

    public override UserInputException Translate(DbException e, string where) => e switch
    {
        PostgresException { SqlState: PostgresErrorCodes.LockNotAvailable } =>
            new UserInputException($"the store {where} is locked by another mkb-vpn (on this or another host) for more than {LockWaitSeconds} s; try again", ExitCodes.Database),
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected } =>
            new UserInputException($"the store {where}: the change collided with a concurrent one and was rolled back; try again", ExitCodes.Database),
        PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } p =>
            new UserInputException($"PostgreSQL refused the login to {where}: {OneLine(p.MessageText)} (the password comes from the passfile, ~/.pgpass or $PGPASSWORD)", ExitCodes.Database),
        PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName } p =>
            new UserInputException($"the store {where}: {OneLine(p.MessageText)} (create it first: createdb)", ExitCodes.Database),
        PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } p =>
            new UserInputException($"the store {where}: {OneLine(p.MessageText)} (grant the mkb-vpn role its privileges: docs/postgresql.md)", ExitCodes.Database),
        PostgresException p =>
            new UserInputException($"the store {where}: {OneLine(p.MessageText)}", ExitCodes.Database),
        _ => new UserInputException($"cannot reach the store {where}: {OneLine(Innermost(e).Message)}", ExitCodes.Database),
    };

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner)
            e = inner;
        return e;
    }

    private static string OneLine(string s) => s.Split('\n')[0].Trim();
}
