namespace MkbVpn;

/// <summary>Where mkb-vpn keeps its state.</summary>
public sealed class Paths
{
    public const string DefaultDataDir = "/var/lib/mkb-vpn";
    public const string DataDirVariable = "MKB_VPN_DATA_DIR";

    /// <param name="store">A PostgreSQL store (<c>--store</c>); null: <c>$MKB_VPN_STORE</c> when set, else the SQLite file in the data directory.</param>
    public Paths(string? dataDir, string? store = null)
    {
        DataDir = Path.GetFullPath(string.IsNullOrEmpty(dataDir)
            ? Environment.GetEnvironmentVariable(DataDirVariable) is { Length: > 0 } env ? env : DefaultDataDir
            : dataDir);
        Store = string.IsNullOrEmpty(store)
            ? Environment.GetEnvironmentVariable(Storage.StoreLocation.Variable) is { Length: > 0 } s ? s : null
            : store;
    }

    public string DataDir { get; }

    /// <summary>
    /// Where the registry lives when it is not the SQLite file <see cref="Database"/>: a PostgreSQL
    /// location (<see cref="Storage.StoreLocation"/>). The data directory still holds the config files and the lock.
    /// </summary>
    public string? Store { get; }
    public string Database => Path.Combine(DataDir, Storage.Store.FileName);
    public string ClientsDir => Path.Combine(DataDir, "clients");
    public string LockFile => Path.Combine(DataDir, ".lock");

    public string ClientConfig(string name) => Path.Combine(ClientsDir, name + ".conf");

    /// <summary>
    /// Refuses with "run as root" when the data directory exists but this user may not look inside
    /// (it is 0700, owned by root): a missing database would otherwise read as "not initialised".
    /// </summary>
    public void RequireReadable()
    {
        if (!Directory.Exists(DataDir))
            return;
        try
        {
            using var e = Directory.EnumerateFileSystemEntries(DataDir).GetEnumerator();
            e.MoveNext();
        }
        catch (UnauthorizedAccessException)
        {
            throw new UserInputException($"no permission to read {DataDir}: run as root (sudo)", ExitCodes.NeedsRoot);
        }
    }

    /// <summary>Deletes config files staged by a verb that was killed before it finished (they may hold private keys).</summary>
    public int RemoveLeftovers()
    {
        if (!Directory.Exists(ClientsDir))
            return 0;
        int n = 0;
        foreach (var f in Directory.EnumerateFiles(ClientsDir, "*.conf.tmp"))
        {
            File.Delete(f);
            n++;
        }
        return n;
    }

    /// <summary>Creates the data directory (0700) and its clients folder.</summary>
    public void EnsureCreated()
    {
        const UnixFileMode owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        try
        {
            Directory.CreateDirectory(DataDir, owner);
            Directory.CreateDirectory(ClientsDir, owner);
        }
        catch (UnauthorizedAccessException)
        {
            throw new UserInputException($"no permission to create {DataDir}: run as root or pass --data-dir", ExitCodes.NeedsRoot);
        }
    }
}
