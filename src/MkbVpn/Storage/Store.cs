using System.Data.Common;
using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Clients;
using Npgsql;

namespace MkbVpn.Storage;

/// <summary>
/// The single source of truth: server settings, clients, groups, rules, admins and the audit log,
/// in one SQLite file (the embedded default) or in a PostgreSQL database (a registry several hosts
/// share). The only place in mkb-vpn with SQL; the statements are written once over ADO.NET's
/// <see cref="DbConnection"/>, and <see cref="StoreDialect"/> holds the few places the two differ.
/// Writers serialise: on SQLite through BEGIN IMMEDIATE plus the busy timeout (readers never block
/// writers: WAL); on PostgreSQL through a transaction-scoped advisory lock taken first in every
/// write transaction, with unique constraints as the backstop.
/// </summary>
public sealed partial class Store : IDisposable
{
    public const string FileName = "mkb-vpn.db";
    private readonly DbConnection _db;
    private readonly StoreDialect _d;
    private DbTransaction? _tx;

    private Store(DbConnection db, StoreDialect dialect, string path, string where)
    {
        _db = db;
        _d = dialect;
        Path = path;
        Where = where;
    }

    /// <summary>The SQLite file, or the PostgreSQL location without its password (safe for messages).</summary>
    public string Path { get; }

    /// <summary>What messages name as the store's place: the data directory (SQLite) or the PostgreSQL location.</summary>
    private string Where { get; }

    /// <summary>True when the store is a PostgreSQL database.</summary>
    public bool IsPostgres => _d is PostgresDialect;

    /// <summary>The store <paramref name="paths"/> select: <see cref="Paths.Store"/> (PostgreSQL) when set, else the SQLite file in the data directory.</summary>
    public static Store Open(Paths paths, bool create)
    {
        if (paths.Store is { } location)
            return Open(StoreLocation.Parse(location), create);
        var store = Open(paths.Database, create);
        try
        {
            store.RefuseIfMoved();
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return store;
    }

    /// <summary>Opens (and migrates) the SQLite store. <paramref name="create"/>: create the file if missing.</summary>
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
            var store = new Store(db, SqliteDialect.Instance, path, System.IO.Path.GetDirectoryName(path) ?? path);
            store.Migrate(create: true);
            return store;
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw Translate(e, path);
        }
    }

    /// <summary>
    /// Opens (and with <paramref name="create"/>, creates or migrates) the store in a PostgreSQL
    /// database. Without <paramref name="create"/> a database that holds no mkb-vpn schema is "not initialised".
    /// </summary>
    public static Store Open(StoreLocation location, bool create)
    {
        var db = new NpgsqlConnection(location.ConnectionString);
        try
        {
            db.Open();
            var store = new Store(db, PostgresDialect.Instance, location.Shown, location.Shown);
            store.Migrate(create);
            return store;
        }
        catch (DbException e)
        {
            db.Dispose();
            throw PostgresDialect.Instance.Translate(e, location.Shown);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Turns SQLite's errors into one-line messages an admin can act on.</summary>
    public static UserInputException Translate(SqliteException e, string path) => SqliteDialect.Instance.Translate(e, path);

    private UserInputException Translate(DbException e) => _d.Translate(e, Path);

    // ---- transactions -----------------------------------------------------

    /// <summary>
    /// Starts a write transaction: other writers wait, readers go on. SQLite: BEGIN IMMEDIATE.
    /// PostgreSQL: READ COMMITTED plus the registry's advisory lock, so each statement after it sees
    /// every change committed before; the lock ends with the transaction (or the connection).
    /// </summary>
    public WriteTransaction BeginWrite()
    {
        if (_tx is not null)
            throw new InvalidOperationException("a write transaction is already open");
        try
        {
            _tx = _d.BeginWrite(_db);
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
        return new WriteTransaction(this);
    }

    public sealed class WriteTransaction(Store store) : IDisposable
    {
        private bool _done;

        /// <summary>The store this transaction writes (its reads see the transaction's own changes).</summary>
        public Store Store => store;

        public void Commit()
        {
            try
            {
                store._tx!.Commit();
            }
            catch (DbException e)
            {
                throw store.Translate(e);
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
            try
            {
                store._tx?.Rollback();
            }
            catch (DbException)
            {
                // The connection is gone: the server rolled the transaction back itself.
            }
            store._tx?.Dispose();
            store._tx = null;
        }
    }

    public void Dispose() => _db.Dispose();

    // ---- helpers ----------------------------------------------------------

    private DbCommand Command(string sql, params (string Name, object? Value)[] args)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = _tx;
        foreach (var (name, value) in args)
            cmd.Parameters.Add(Parameter(cmd, name, value ?? DBNull.Value));
        return cmd;
    }

    private static DbParameter Parameter(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        return p;
    }

    private int Execute(string sql, params (string, object?)[] args)
    {
        using var cmd = Command(sql, args);
        try
        {
            return cmd.ExecuteNonQuery();
        }
        catch (DbException e) when (_d.Violation(e) is null)
        {
            throw Translate(e);
        }
    }

    /// <summary>A parameter of a statement run once per row (its value set before each <see cref="Run"/>).</summary>
    private static DbParameter RowParameter(DbCommand cmd, string name, System.Data.DbType type)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.DbType = type;
        cmd.Parameters.Add(p);
        return p;
    }

    /// <summary>Runs a prepared statement once more; the rows it changed.</summary>
    private int Run(DbCommand cmd)
    {
        try
        {
            return cmd.ExecuteNonQuery();
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    private static void Exec(DbConnection db, string sql, DbTransaction? tx = null)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(DbConnection db, string sql, DbTransaction? tx = null)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd.ExecuteScalar();
    }

    private object? Scalar(DbCommand cmd)
    {
        try
        {
            return cmd.ExecuteScalar();
        }
        catch (DbException e) when (_d.Violation(e) is null)
        {
            throw Translate(e);
        }
    }

    private DbDataReader Reader(DbCommand cmd)
    {
        try
        {
            return cmd.ExecuteReader();
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    /// <summary>
    /// Reads every row; a damaged page or a row that does not parse is the database's fault, not an
    /// internal error: one line naming the table, exit code 8.
    /// </summary>
    /// <param name="unreadable">When given, a row that does not parse is handed to it and left out; when null, such a
    /// row fails the whole read (exit 8).</param>
    private List<T> Rows<T>(DbCommand cmd, Func<DbDataReader, T> read, string table, Action<DbDataReader, Exception>? unreadable = null)
    {
        using var r = Reader(cmd);
        var list = new List<T>();
        try
        {
            while (r.Read())
            {
                try
                {
                    list.Add(read(r));
                }
                catch (Exception e) when (unreadable is not null && DoesNotParse(e))
                {
                    unreadable(r, e);
                }
            }
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
        catch (Exception e) when (DoesNotParse(e))
        {
            throw new UserInputException($"database {Path}: a row of {table} does not parse ({e.GetType().Name}); restore it from a backup ('mkb-vpn restore')", ExitCodes.Database);
        }
        return list;
    }

    private static bool DoesNotParse(Exception e) => e is FormatException or InvalidCastException or ArgumentException or OverflowException;

    /// <summary>An integer column: SQLite hands back 64-bit integers, PostgreSQL the column's own width.</summary>
    private static long Int64(DbDataReader r, int i) => Convert.ToInt64(r.GetValue(i), CultureInfo.InvariantCulture);

    private static int Int32(DbDataReader r, int i) => Convert.ToInt32(r.GetValue(i), CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    // Times are written as round-trip text ("O"): parsed exactly first (10,000 rows a listing), loosely for anything older.
    private static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.TryParseExact(s, "O", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t
            : DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static string JoinList<T>(IEnumerable<T> items) => string.Join(",", items);

    private static List<string> SplitList(string s) => [.. s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static IPNetwork? Net(object value) => value is string s ? IPNetwork.Parse(s) : null;
}
