using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>The two databases the store runs on; store tests run once on each.</summary>
public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>
/// One test's store on one backend: a SQLite file in a temporary directory, or a new database on
/// the shared PostgreSQL server. Opens the store and pokes it behind its back the same way on both.
/// </summary>
public sealed class TestStore : IDisposable
{
    private readonly PostgresServer _pg;
    private readonly TempDir _dir = new();

    public TestStore(Backend backend, PostgresServer pg)
    {
        Backend = backend;
        _pg = pg;
        Location = backend == Backend.Postgres ? pg.NewDatabase() : null;
    }

    public static TheoryData<Backend> Both => [Backend.Sqlite, Backend.Postgres];

    public Backend Backend { get; }

    /// <summary>The PostgreSQL store location; null on SQLite.</summary>
    public string? Location { get; }

    public string DbPath => _dir.File(Store.FileName);

    public string Dir => _dir.Path;

    /// <summary>Paths for a data directory here, with the store selected as the CLI would (<c>--store</c>).</summary>
    public Paths Paths(string name = "data") => new(_dir.File(name), Location);

    public Store Open(bool create = true) =>
        Location is null ? Store.Open(DbPath, create) : Store.Open(StoreLocation.Parse(Location), create);

    /// <summary>SQL run outside the store (a marker table, a version from the future).</summary>
    public void Sql(string sql)
    {
        if (Location is not null)
        {
            _pg.Sql(Location, sql);
            return;
        }
        using var db = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>The schema version as the database records it (SQLite's user_version, PostgreSQL's schema_version).</summary>
    public long Version()
    {
        if (Location is not null)
            return Convert.ToInt64(_pg.Scalar(Location, "SELECT version FROM schema_version"), System.Globalization.CultureInfo.InvariantCulture);
        using var db = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = DbPath, Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "PRAGMA user_version;";
        return (long)cmd.ExecuteScalar()!;
    }

    public void SetVersion(long version) =>
        Sql(Location is null ? $"PRAGMA user_version = {version};" : $"UPDATE schema_version SET version = {version}");

    public void Dispose() => _dir.Dispose();
}
