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
    /// Replaces this store's whole content with a checked snapshot, in one step of the online
    /// backup API (all pages or none), then migrates it to this program's schema. Runtime state
    /// of the old host (forwarding as it was, up or down) is dropped.
    /// </summary>
    public void ReplaceWith(string snapshotPath)
    {
        if (_d is PostgresDialect)
            throw new UserInputException($"restore into the PostgreSQL store {Path} is not supported yet: restore into a SQLite data directory, then 'mkb-vpn migrate-store' into an empty database", ExitCodes.UserError);
        using var src = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = snapshotPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            src.Open();
            src.BackupDatabase((SqliteConnection)_db);
            Exec(_db, "PRAGMA journal_mode = WAL;");
            Migrate(create: true);
            Exec(_db, "DELETE FROM runtime;");
        }
        catch (SqliteException e)
        {
            throw Translate(e, Path);
        }
    }
}
