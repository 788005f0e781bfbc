namespace MkbVpn;

/// <summary>Where mkb-vpn keeps its state.</summary>
public sealed class Paths
{
    public const string DefaultDataDir = "/var/lib/mkb-vpn";
    public const string DataDirVariable = "MKB_VPN_DATA_DIR";

    public Paths(string? dataDir)
    {
        DataDir = Path.GetFullPath(string.IsNullOrEmpty(dataDir)
            ? Environment.GetEnvironmentVariable(DataDirVariable) is { Length: > 0 } env ? env : DefaultDataDir
            : dataDir);
    }

    public string DataDir { get; }
    public string Database => Path.Combine(DataDir, Storage.Store.FileName);
    public string ClientsDir => Path.Combine(DataDir, "clients");
    public string LockFile => Path.Combine(DataDir, ".lock");

    public string ClientConfig(string name) => Path.Combine(ClientsDir, name + ".conf");

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
