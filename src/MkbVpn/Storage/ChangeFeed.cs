using Npgsql;

namespace MkbVpn.Storage;

/// <summary>
/// The registry's changes as PostgreSQL delivers them: LISTEN on <see cref="Store.ChangeChannel"/>
/// over a connection of its own. Each payload is "client:ID" or "all" (migration 7's triggers);
/// a notification arrives only after its transaction committed. A lost connection throws from
/// <see cref="Wait"/>: the caller reconciles fully when it has a new feed, since changes made
/// meanwhile were not delivered.
/// </summary>
public sealed class ChangeFeed : IDisposable
{
    private readonly NpgsqlConnection _db;
    private readonly List<string> _pending = [];

    private ChangeFeed(NpgsqlConnection db)
    {
        _db = db;
        _db.Notification += (_, e) =>
        {
            lock (_pending)
                _pending.Add(e.Payload);
        };
    }

    /// <summary>Listens from now on; a change committed after this returns is delivered.</summary>
    public static ChangeFeed Listen(StoreLocation location)
    {
        var db = new NpgsqlConnection(location.ConnectionString);
        try
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"LISTEN {Store.ChangeChannel}";
            cmd.ExecuteNonQuery();
            return new ChangeFeed(db);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            db.Dispose();
            throw PostgresDialect.Instance.Translate(e as NpgsqlException ?? new NpgsqlException(e.Message, e), location.Shown);
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for notifications, then collects those that follow
    /// within <paramref name="settle"/> (a bulk change arrives as a burst); empty when none came.
    /// Throws <see cref="UserInputException"/> (exit 8) when the connection is lost.
    /// </summary>
    public IReadOnlyList<string> Wait(TimeSpan timeout, TimeSpan settle, CancellationToken stop)
    {
        try
        {
            if (Take() is { Count: > 0 } ready)
                return ready;
            if (!_db.WaitAsync(timeout, stop).GetAwaiter().GetResult())
                return Take();
            // Drain what is already there without waiting long.
            while (_db.WaitAsync(settle, stop).GetAwaiter().GetResult())
            {
            }
            return Take();
        }
        catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or ObjectDisposedException or TimeoutException)
        {
            throw new UserInputException($"the store's change feed was lost: {e.Message}", ExitCodes.Database);
        }
    }

    private List<string> Take()
    {
        lock (_pending)
        {
            var list = new List<string>(_pending);
            _pending.Clear();
            return list;
        }
    }

    public void Dispose() => _db.Dispose();
}
