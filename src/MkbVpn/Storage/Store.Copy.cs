using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace MkbVpn.Storage;

/// <summary>Copying a whole store into another one (SQLite into PostgreSQL for migrate-store; PostgreSQL into a SQLite snapshot for backups).</summary>
public sealed partial class Store
{
    /// <summary>The runtime key a SQLite store gets once it was moved into PostgreSQL: where it went.</summary>
    internal const string MovedToKey = "moved_to";

    /// <summary>How many rows of each table a copy moved.</summary>
    public sealed record CopyResult(IReadOnlyDictionary<string, long> Rows)
    {
        public long this[string table] => Rows.TryGetValue(table, out var n) ? n : 0;
    }

    /// <summary>True when no table of the schema holds a row.</summary>
    public bool IsEmpty() => Tables.All(t => Convert.ToInt64(Scalar(Command($"SELECT count(*) FROM {t}")), CultureInfo.InvariantCulture) == 0);

    /// <summary>
    /// Copies every row of every table, ids included, into <paramref name="target"/>, an empty store at
    /// the same schema version: read from one consistent snapshot of this store, written in one
    /// transaction of the target (all or nothing). Identity counters of the target continue after the
    /// copied ids. The audit log's triggers refuse updates and deletes, not these inserts.
    /// </summary>
    public CopyResult CopyTo(Store target)
    {
        if (UserVersion() != SchemaVersion || target.UserVersion() != SchemaVersion)
            throw new InvalidOperationException($"copy between schema versions {UserVersion()} and {target.UserVersion()}");
        var unknown = _d.ListTables(_db).Except(Tables, StringComparer.OrdinalIgnoreCase).ToList();
        if (unknown.Count > 0)
            throw new InvalidOperationException($"table(s) {string.Join(", ", unknown)} are not in Store.Tables: a migration added them without naming them there");
        if (!target.IsEmpty())
            throw new UserInputException($"the store {target.Path} is not empty: it already holds an mkb-vpn registry; copy only into an empty database", ExitCodes.Conflict);

        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        using var read = _d.BeginRead(_db);
        using var tx = target.BeginWrite();
        try
        {
            CopyRows(read, target, Tables, rows);
            tx.Commit();
        }
        catch (DbException e)
        {
            throw target.Translate(e);
        }
        return new CopyResult(rows);
    }

    /// <summary>
    /// Inserts every row of <paramref name="tables"/> (in that order: parents first), ids included,
    /// read in this store's transaction <paramref name="read"/>, into <paramref name="target"/> in its
    /// open write transaction; then moves the target's identity counters past the copied ids.
    /// </summary>
    private void CopyRows(DbTransaction read, Store target, IEnumerable<string> tables, Dictionary<string, long> rows)
    {
        foreach (string table in tables)
        {
            using var select = _db.CreateCommand();
            select.Transaction = read;
            select.CommandText = $"SELECT * FROM {table}";
            using var r = select.ExecuteReader();
            var columns = Enumerable.Range(0, r.FieldCount).Select(r.GetName).ToList();
            using var insert = target.Command($"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select((_, i) => $"@p{i}"))})");
            var ps = columns.Select((_, i) =>
            {
                var p = insert.CreateParameter();
                p.ParameterName = $"@p{i}";
                insert.Parameters.Add(p);
                return p;
            }).ToList();
            long n = 0;
            while (r.Read())
            {
                for (int i = 0; i < columns.Count; i++)
                {
                    // The two databases agree on integers and text, the only types of the schema; a NULL goes untyped.
                    object v = r.GetValue(i);
                    ps[i].Value = v;
                    if (v is DBNull)
                        ps[i].ResetDbType();
                    else
                        ps[i].DbType = v is string ? DbType.String : DbType.Int64;
                }
                insert.ExecuteNonQuery();
                n++;
            }
            rows[table] = n;
            target._d.AfterCopy(target._db, target._tx!, table);
        }
    }

    /// <summary>
    /// Moves this SQLite store into the empty PostgreSQL store at <paramref name="to"/> (creating its
    /// schema), then marks this file as moved, so that a command that still opens it is told where the
    /// registry went instead of working on a stale copy.
    /// </summary>
    public CopyResult MoveTo(StoreLocation to)
    {
        if (_d is not SqliteDialect)
            throw new UserInputException($"the store {Path} is already in PostgreSQL", ExitCodes.UserError);
        RequireServer();
        using var target = Open(to, create: true);
        var result = CopyTo(target);
        SetRuntime(MovedToKey, to.Given);
        return result;
    }

    /// <summary>Refuses a SQLite store that was moved into PostgreSQL (migrate-store): the registry is elsewhere now.</summary>
    private void RefuseIfMoved()
    {
        if (GetRuntime(MovedToKey) is { } where)
            throw new UserInputException($"the store in {Where} was moved to PostgreSQL ('mkb-vpn migrate-store'): set {StoreLocation.Variable}='{where}' (or pass --store) for every mkb-vpn command", ExitCodes.UserError);
    }

    /// <summary>A SQLite copy of a PostgreSQL store (for backups): every row, one snapshot, the file in rollback-journal mode.</summary>
    private void CopyToSqliteFile(string path)
    {
        using (var dest = Open(path, create: true))
            CopyTo(dest);
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
        db.Open();
        Exec(db, "PRAGMA journal_mode = DELETE;");
    }
}
