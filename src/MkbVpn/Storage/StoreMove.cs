using MkbVpn.Clients;

namespace MkbVpn.Storage;

/// <summary>
/// migrate-store: an existing server's SQLite store moved into an empty PostgreSQL database, all or
/// nothing. Under the data directory's lock (no verb on this host writes the file meanwhile) every
/// table is copied in one PostgreSQL transaction; then the SQLite file is marked as moved, so that a
/// command that still opens it says where the registry went instead of changing a stale copy. The
/// file itself is kept, as it was: the way back, and a backup.
/// </summary>
public static class StoreMove
{
    public sealed record Result(string From, string To, Store.CopyResult Rows);

    public static Result Run(Paths paths, string to, IDataLock dataLock, TimeSpan wait)
    {
        var location = StoreLocation.Parse(to);
        if (!File.Exists(paths.Database))
        {
            paths.RequireReadable();
            throw new UserInputException($"migrate-store: there is no SQLite store in {paths.DataDir} to move (is --data-dir right?)", ExitCodes.NotInitialised);
        }
        using var held = dataLock.Acquire(paths.LockFile, wait);
        using var source = Store.Open(paths.Database, create: false);
        if (source.GetRuntime(Store.MovedToKey) is { } where)
            throw new UserInputException($"migrate-store: the store in {paths.DataDir} was already moved to PostgreSQL ({where})", ExitCodes.Conflict);
        var rows = source.MoveTo(location);
        return new Result(paths.DataDir, location.Shown, rows);
    }
}
