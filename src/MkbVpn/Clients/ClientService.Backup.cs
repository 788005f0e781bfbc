using System.Globalization;
using MkbVpn.Configs;
using MkbVpn.Storage;

namespace MkbVpn.Clients;

public sealed record BackupResult(string Path, long Bytes, bool Encrypted, IReadOnlyList<string> Removed);

/// <param name="Live">The restored server's interface runs on this host ('up' applies the restore to it).</param>
/// <param name="Registry">The store is a PostgreSQL registry: every gateway following it applies the restore by itself.</param>
public sealed record RestoreResult(ServerSettings Server, int Clients, DateTimeOffset Created, bool Live, bool Registry = false);

public sealed partial class ClientService
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// Writes a backup file (0600): a snapshot by SQLite's online backup API, so it is consistent
    /// while the server runs and other verbs keep changing the store (no lock is taken).
    /// </summary>
    public BackupResult Backup(string path, string? passphrase)
    {
        using var store = OpenStore();
        store.RequireServer();
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new UserInputException($"backup: {path} is a folder; give a file name, or '--keep N {path}' for dated backups there");
        string dir = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
            throw new UserInputException($"backup: folder {dir} does not exist");
        string snapshot = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.snapshot");
        string tmp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            CreateOwnerOnly(snapshot);
            store.SnapshotTo(snapshot);
            int schema = Store.CheckSnapshot(snapshot, "the snapshot");
            byte[] db = File.ReadAllBytes(snapshot);
            byte[] file = BackupFile.Write(db, schema, Now, passphrase);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(db);
            CreateOwnerOnly(tmp);
            using (var fs = new FileStream(tmp, FileMode.Truncate, FileAccess.Write))
            {
                fs.Write(file);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            return new BackupResult(full, file.Length, passphrase is not null, []);
        }
        catch (UnauthorizedAccessException)
        {
            throw new UserInputException($"backup: no permission to write in {dir}", ExitCodes.NeedsRoot);
        }
        finally
        {
            foreach (var f in new[] { snapshot, snapshot + "-journal", tmp })
                if (File.Exists(f))
                    File.Delete(f);
        }
    }

    /// <summary>Timer-friendly: a new dated backup in <paramref name="dir"/>, then all but the newest <paramref name="keep"/> removed.</summary>
    public BackupResult BackupRotate(string dir, int keep, string? passphrase)
    {
        if (keep < 1)
            throw new UserInputException($"--keep: {keep}; keep at least 1 backup");
        if (!Directory.Exists(dir))
            throw new UserInputException($"backup: folder {dir} does not exist");
        string name = $"mkb-vpn-{Now.UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}{BackupFile.Extension}";
        var result = Backup(System.IO.Path.Combine(dir, name), passphrase);
        // Only our own dated files are rotated; names sort by time.
        var ours = Directory.GetFiles(dir, "mkb-vpn-????????-??????" + BackupFile.Extension).Order(StringComparer.Ordinal).ToList();
        var removed = new List<string>();
        foreach (var old in ours.Take(Math.Max(0, ours.Count - keep)))
        {
            File.Delete(old);
            removed.Add(old);
        }
        return result with { Removed = removed };
    }

    /// <summary>
    /// Restores a backup: the file is checked in full first (checksum, version, passphrase, SQLite
    /// integrity), then the store is replaced in one step (SQLite or PostgreSQL: all or nothing).
    /// An initialised server is only replaced with <paramref name="force"/>. Client config files of
    /// this data directory are rewritten from the restored store.
    /// </summary>
    public RestoreResult Restore(string path, string? passphrase, bool force)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"restore: cannot read {path}{(e is FileNotFoundException ? ": no such file" : "")}");
        }
        var contents = BackupFile.Read(bytes, path, () => passphrase);
        if (contents.SchemaVersion > Store.SchemaVersion)
            throw new UserInputException($"{path}: made by a newer mkb-vpn (schema {contents.SchemaVersion}; this one knows {Store.SchemaVersion})");

        Paths.EnsureCreated();
        using var held = Lock();
        string snapshot = System.IO.Path.Combine(Paths.DataDir, $".restore.{Environment.ProcessId}.db");
        try
        {
            CreateOwnerOnly(snapshot);
            File.WriteAllBytes(snapshot, contents.Database);
            Store.CheckSnapshot(snapshot, path);
            using var store = Store.Open(Paths, create: true);
            if (store.GetServer() is { } existing && !force)
                throw new UserInputException($"{Paths.DataDir} already holds a server ({existing.Interface}, {store.ListClients().Count} clients); 'restore --force' replaces it", ExitCodes.Conflict);
            var oldNames = store.ListClients().Select(c => c.Name).ToList();
            store.ReplaceWith(snapshot);
            var server = store.RequireServer();
            var clients = store.ListClients();
            foreach (var name in oldNames.Except(clients.Select(c => c.Name), StringComparer.OrdinalIgnoreCase))
                DeleteConfig(name);
            using (var tx = store.BeginWrite())
            {
                store.AppendAudit(Now, Actor, "restore", server.Interface, null, $"from {System.IO.Path.GetFileName(path)} (made {Access.When.Format(contents.Created)}): {clients.Count} clients");
                tx.Commit();
            }
            WriteAllConfigs(store, server);
            return new RestoreResult(server, clients.Count, contents.Created, Devices.Find(server.Interface) is not null, store.IsPostgres);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(contents.Database);
            foreach (var f in new[] { snapshot, snapshot + "-journal", snapshot + "-wal", snapshot + "-shm" })
                if (File.Exists(f))
                    File.Delete(f);
        }
    }

    /// <summary>The server as a plain wg-quick config, with every client as a peer (blocked ones commented out).</summary>
    public string ExportWgQuick()
    {
        using var store = OpenStore();
        return ServerConfig.Render(store.RequireServer(), store.ListClients(), Now);
    }

    /// <summary>Writes every client's config (0600) into <paramref name="dir"/>; returns the names written and those without a private key.</summary>
    public (IReadOnlyList<string> Written, IReadOnlyList<string> KeylessSkipped) ExportClients(string dir)
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var written = new List<string>();
        var skipped = new List<string>();
        foreach (var c in store.ListClients())
        {
            if (c.PrivateKey is null)
            {
                skipped.Add(c.Name);
                continue;
            }
            string file = System.IO.Path.Combine(dir, c.Name + ".conf");
            CreateOwnerOnly(file + ".tmp");
            File.WriteAllText(file + ".tmp", ClientConfig.Render(server, c));
            File.Move(file + ".tmp", file, overwrite: true);
            written.Add(file);
        }
        return (written, skipped);
    }

    private static void CreateOwnerOnly(string path)
    {
        using var _ = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = OwnerOnly,
        });
        File.SetUnixFileMode(path, OwnerOnly);
    }
}
