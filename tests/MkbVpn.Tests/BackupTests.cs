using System.Buffers.Binary;
using Microsoft.Data.Sqlite;
using MkbVpn.Admin;
using MkbVpn.Clients;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>Backup files: round trip (plain and encrypted), every kind of damage refused before anything changes, rotation.</summary>
public sealed class BackupTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(Now);

    public void Dispose() => _dir.Dispose();

    private ClientService Service(string sub) => new(new Paths(_dir.File(sub)), _time);

    private ClientService Initialised()
    {
        var service = Service("source");
        service.Init(new InitOptions
        {
            Endpoint = "198.18.1.1:51820", Subnet4 = "203.0.113.0/24", Subnet6 = "fd00:5e:1::/64",
            InternalNetworks = ["198.51.100.0/24"], Dns = ["none"], Interface = Fixtures.Interface,
        });
        service.Add([new AddRequest("alice"), new AddRequest("bob"), new AddRequest("carol")]);
        service.Block(["bob"]);
        return service;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Round_trip_restores_server_keys_clients_and_admins(bool encrypted)
    {
        var source = Initialised();
        new AdminService(source.Paths).AddAdmin("root1", "correct horse battery staple");
        string pass = encrypted ? "a long passphrase" : null!;
        var result = source.Backup(_dir.File("b.mkbbak"), encrypted ? pass : null);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(result.Path));
        Assert.Equal(encrypted, result.Encrypted);
        if (encrypted)   // nothing of the store readable in the file
            Assert.DoesNotContain(source.GetServer().PrivateKey.ToBase64(), System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(result.Path)));

        var target = Service("target");
        var r = target.Restore(result.Path, encrypted ? pass : null, force: false);
        Assert.Equal(3, r.Clients);
        Assert.Equal(source.GetServer().PrivateKey, target.GetServer().PrivateKey);
        Assert.True(source.GetServer().SameSettings(target.GetServer()));
        Assert.Equal(source.List().Select(c => (c.Name, c.Enabled, c.PrivateKey, c.PresharedKey, c.AddressText)),
                     target.List().Select(c => (c.Name, c.Enabled, c.PrivateKey, c.PresharedKey, c.AddressText)));
        Assert.Equal(source.ConfigText("alice"), File.ReadAllText(target.Paths.ClientConfig("alice")));
        Assert.NotNull(new AdminService(target.Paths).ListAdmins().SingleOrDefault(a => a.Name == "root1"));
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> Damage => new()
    {
        { "truncated", b => b[..(b.Length / 2)], "truncated" },
        { "one byte", b => { var c = (byte[])b.Clone(); c[c.Length / 2] ^= 1; return c; }, "checksum mismatch" },
        { "appended", b => [.. b, 0], "more than its header says" },
        { "not a backup", b => "SQLite format 3\0"u8.ToArray().Concat(b).ToArray(), "not an mkb-vpn backup" },
        { "future version", b => WithHeader(b, s => BinaryPrimitives.WriteUInt16LittleEndian(s[8..], 9)), "format version 9 is unknown" },
        { "empty", b => [], "not an mkb-vpn backup" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void Damaged_backup_is_refused_with_one_line_and_nothing_changes(string what, Func<byte[], byte[]> damage, string expected)
    {
        _ = what;
        var source = Initialised();
        string good = source.Backup(_dir.File("good.mkbbak"), null).Path;
        File.WriteAllBytes(_dir.File("bad.mkbbak"), damage(File.ReadAllBytes(good)));
        var target = Service("target");
        var e = Assert.Throws<UserInputException>(() => target.Restore(_dir.File("bad.mkbbak"), null, force: false));
        Assert.Contains(expected, e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.False(Directory.Exists(target.Paths.DataDir));
        // Also onto an initialised server with --force: it stays as it was.
        var before = source.List();
        Assert.Throws<UserInputException>(() => source.Restore(_dir.File("bad.mkbbak"), null, force: true));
        Assert.Equal(before.Select(c => c.Name), source.List().Select(c => c.Name));
    }

    [Fact]
    public void Wrong_or_missing_passphrase_and_an_altered_encrypted_file_are_refused()
    {
        var source = Initialised();
        string file = source.Backup(_dir.File("enc.mkbbak"), "right one").Path;
        var target = Service("target");
        Assert.Contains("wrong passphrase", Assert.Throws<UserInputException>(() => target.Restore(file, "wrong one", false)).Message);
        Assert.Contains("is encrypted", Assert.Throws<UserInputException>(() => target.Restore(file, null, false)).Message);
        // Altered and re-checksummed: the checksum passes, the authentication tag does not.
        var bytes = File.ReadAllBytes(file);
        bytes[200] ^= 0x40;
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32), bytes.AsSpan(bytes.Length - 32));
        File.WriteAllBytes(_dir.File("forged.mkbbak"), bytes);
        Assert.Contains("wrong passphrase, or the file was altered", Assert.Throws<UserInputException>(() => target.Restore(_dir.File("forged.mkbbak"), "right one", false)).Message);
        Assert.False(Directory.Exists(target.Paths.DataDir));
        string plain = source.Backup(_dir.File("plain.mkbbak"), null).Path;
        Assert.Contains("not encrypted", Assert.Throws<UserInputException>(() => target.Restore(plain, "x", false)).Message);
    }

    [Fact]
    public void A_backup_whose_database_is_not_ours_is_refused()
    {
        string db = _dir.File("other.db");
        using (var c = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE t (x); PRAGMA user_version = 0;";
            cmd.ExecuteNonQuery();
        }
        File.WriteAllBytes(_dir.File("other.mkbbak"), BackupFile.Write(File.ReadAllBytes(db), 2, Now, null));
        var target = Service("target");
        Assert.Contains("not an mkb-vpn store", Assert.Throws<UserInputException>(() => target.Restore(_dir.File("other.mkbbak"), null, false)).Message);
        var e = Assert.Throws<UserInputException>(() => target.GetServer());
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
    }

    [Fact]
    public void Restore_onto_an_initialised_server_needs_force_and_then_replaces_it()
    {
        var source = Initialised();
        string file = source.Backup(_dir.File("b.mkbbak"), null).Path;
        source.Add([new AddRequest("dave")]);
        var e = Assert.Throws<UserInputException>(() => source.Restore(file, null, force: false));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Equal(4, source.List().Count);
        source.Restore(file, null, force: true);
        Assert.Equal(["alice", "bob", "carol"], source.List().Select(c => c.Name));
        Assert.False(File.Exists(source.Paths.ClientConfig("dave")));
        source.Add([new AddRequest("erin")]);   // the restored store is writable and migrated
        Assert.Equal(4, source.List().Count);
    }

    [Fact]
    public void Keep_rotates_dated_backups_and_leaves_other_files_alone()
    {
        var source = Initialised();
        var dir = Directory.CreateDirectory(_dir.File("rot")).FullName;
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
        for (int i = 0; i < 4; i++)
        {
            source.BackupRotate(dir, 2, null);
            _time.Advance(TimeSpan.FromDays(1));
        }
        var left = Directory.GetFiles(dir).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["mkb-vpn-20260104-030405.mkbbak", "mkb-vpn-20260105-030405.mkbbak", "notes.txt"], left);
        Assert.Throws<UserInputException>(() => source.BackupRotate(dir, 0, null));
    }

    [Fact]
    public async Task Backups_taken_while_clients_are_added_are_each_consistent()
    {
        var source = Initialised();
        using var stop = new CancellationTokenSource();
        int added = 0;
        var writer = Task.Run(() =>
        {
            var w = Service("source");
            for (int i = 0; i < 40 && !stop.IsCancellationRequested; i++)
            {
                w.Add([new AddRequest($"w{i}")]);
                Interlocked.Increment(ref added);
            }
        });
        var counts = new List<int>();
        for (int i = 0; i < 5 && !writer.IsCompleted; i++)
        {
            string f = source.Backup(_dir.File($"c{i}.mkbbak"), null).Path;
            var t = Service($"t{i}");
            counts.Add(t.Restore(f, null, false).Clients);
        }
        stop.Cancel();
        await writer.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(counts, c => Assert.InRange(c, 3, 43));
        Assert.Equal(counts.Order(), counts);   // later snapshots never hold fewer clients
    }

    private static byte[] WithHeader(byte[] b, SpanAction change)
    {
        var c = (byte[])b.Clone();
        change(c);
        System.Security.Cryptography.SHA256.HashData(c.AsSpan(0, c.Length - 32), c.AsSpan(c.Length - 32));
        return c;
    }

    public delegate void SpanAction(Span<byte> s);
}
