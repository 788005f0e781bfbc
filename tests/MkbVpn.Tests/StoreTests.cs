using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

public sealed class StoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    private string DbPath => _dir.File(Store.FileName);

    public void Dispose() => _dir.Dispose();

    private static long UserVersion(string path)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "PRAGMA user_version;";
        return (long)cmd.ExecuteScalar()!;
    }

    private static void Sql(string path, string sql)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public void Fresh_database_is_migrated_to_the_schema_version()
    {
        Assert.True(Store.SchemaVersion >= 1);
        using (var store = Store.Open(DbPath, create: true))
        {
            Assert.Null(store.GetServer());
            Assert.Empty(store.ListClients());
        }
        Assert.Equal(Store.SchemaVersion, UserVersion(DbPath));
    }

    [Fact]
    public void Reopening_keeps_data_and_does_not_migrate_again()
    {
        var server = Fixtures.Server();
        var client = Fixtures.Client();
        using (var store = Store.Open(DbPath, create: true))
        {
            using var tx = store.BeginWrite();
            store.SaveServer(server);
            store.InsertClient(client);
            tx.Commit();
        }
        // A marker table: a second migration run (CREATE TABLE server ...) would fail or wipe.
        Sql(DbPath, "CREATE TABLE marker (x INTEGER); INSERT INTO marker VALUES (42);");
        using (var store = Store.Open(DbPath, create: false))
        {
            AssertSameServer(server, store.GetServer());
            var c = Assert.Single(store.ListClients());
            Assert.Equal(client with { Id = c.Id }, c);
        }
        using (var store = Store.Open(DbPath, create: true))   // create on an existing file is not a re-create
            Assert.Single(store.ListClients());
        Assert.Equal(Store.SchemaVersion, UserVersion(DbPath));
        Sql(DbPath, "DELETE FROM marker WHERE x = 42;");   // throws if the marker table was lost
    }

    [Fact]
    public void Server_and_client_fields_round_trip_including_overrides()
    {
        var server = Fixtures.Server(s => s with { Subnet6 = null, Dns = [], InternalNetworks = [], FullTunnel = true, Masquerade = true, ClientToClient = true });
        var client = Fixtures.Client("bob", c => c with
        {
            Address6 = null,
            Dns = [],
            AllowedIps = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("fd00:1234::/32")],
            Keepalive = 0,
            Enabled = false,
        });
        using var store = Store.Open(DbPath, create: true);
        using (var tx = store.BeginWrite())
        {
            store.SaveServer(server);
            client = store.InsertClient(client);
            tx.Commit();
        }
        var s2 = store.GetServer()!;
        AssertSameServer(server, s2);
        Assert.Empty(s2.Dns);
        Assert.Empty(s2.InternalNetworks);
        var c2 = store.RequireClient("BOB");
        Assert.Equal(client.Id, c2.Id);
        Assert.Equal(client.PrivateKey, c2.PrivateKey);
        Assert.Null(c2.Address6);
        Assert.NotNull(c2.Dns);
        Assert.Empty(c2.Dns);
        Assert.Equal(client.AllowedIps, c2.AllowedIps);
        Assert.Equal(0, c2.Keepalive);
        Assert.False(c2.Enabled);
        Assert.Equal(client.CreatedAt, c2.CreatedAt);
    }

    [Fact]
    public void Rolled_back_write_transaction_leaves_nothing()
    {
        using var store = Store.Open(DbPath, create: true);
        using (var tx = store.BeginWrite())
        {
            store.SaveServer(Fixtures.Server());
            store.InsertClient(Fixtures.Client("alice"));
            store.SetRuntime("k", "v");
            // no Commit: disposed = rolled back
        }
        Assert.Null(store.GetServer());
        Assert.Empty(store.ListClients());
        Assert.Null(store.GetRuntime("k"));
        // And the store is usable again afterwards.
        using (var tx = store.BeginWrite())
        {
            store.InsertClient(Fixtures.Client("bob"));
            tx.Commit();
        }
        Assert.Equal("bob", Assert.Single(store.ListClients()).Name);
    }

    [Fact]
    public void Rollback_is_visible_to_another_connection_too()
    {
        using var store = Store.Open(DbPath, create: true);
        using (store.BeginWrite())
            store.InsertClient(Fixtures.Client("alice"));
        using var other = Store.Open(DbPath, create: false);
        Assert.Empty(other.ListClients());
    }

    [Fact]
    public void Nested_write_transaction_is_refused()
    {
        using var store = Store.Open(DbPath, create: true);
        using var tx = store.BeginWrite();
        Assert.Throws<InvalidOperationException>(() => store.BeginWrite());
    }

    [Theory]
    [InlineData("alice", "alice")]
    [InlineData("alice", "ALICE")]
    [InlineData("Bob", "bOB")]
    public void Duplicate_name_is_a_conflict_without_regard_to_case(string first, string second)
    {
        using var store = Store.Open(DbPath, create: true);
        store.InsertClient(Fixtures.Client(first));
        var e = Assert.Throws<UserInputException>(() =>
            store.InsertClient(Fixtures.Client(second, c => c with { Address4 = IPAddress.Parse("203.0.113.3"), Address6 = IPAddress.Parse("fd00:1234:5678::3") })));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("already exists", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.Single(store.ListClients());
        Assert.NotNull(store.FindClient(second));   // lookups ignore case as well
    }

    [Fact]
    public void Duplicate_address_is_a_conflict()
    {
        using var store = Store.Open(DbPath, create: true);
        store.InsertClient(Fixtures.Client("alice"));
        var e = Assert.Throws<UserInputException>(() => store.InsertClient(Fixtures.Client("bob", c => c with { Address6 = null })));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("203.0.113.2", e.Message);
    }

    [Fact]
    public void Missing_client_is_not_found()
    {
        using var store = Store.Open(DbPath, create: true);
        Assert.Null(store.FindClient("ghost"));
        var e = Assert.Throws<UserInputException>(() => store.RequireClient("ghost"));
        Assert.Equal(ExitCodes.NotFound, e.ExitCode);
    }

    [Fact]
    public void Corrupt_file_is_a_one_line_database_error()
    {
        var bytes = new byte[8192];
        new Random(12345).NextBytes(bytes);
        File.WriteAllBytes(DbPath, bytes);
        foreach (bool create in new[] { false, true })
        {
            var e = Assert.Throws<UserInputException>(() => Store.Open(DbPath, create));
            Assert.Equal(ExitCodes.Database, e.ExitCode);
            Assert.Contains(DbPath, e.Message);
            Assert.Contains("corrupt", e.Message);
            Fixtures.AssertOneLine(e.Message);
        }
        Assert.Equal(bytes, File.ReadAllBytes(DbPath));   // not overwritten
    }

    [Fact]
    public void Text_file_is_not_a_database()
    {
        File.WriteAllText(DbPath, "this is not SQLite, just a text file that is long enough to have a header...........................................................\n");
        var e = Assert.Throws<UserInputException>(() => Store.Open(DbPath, create: false));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Database_from_a_newer_version_is_refused()
    {
        using (Store.Open(DbPath, create: true)) { }
        Sql(DbPath, $"PRAGMA user_version = {Store.SchemaVersion + 1};");
        var e = Assert.Throws<UserInputException>(() => Store.Open(DbPath, create: false));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("newer", e.Message);
    }

    [Fact]
    public void Missing_file_without_create_is_not_initialised()
    {
        var e = Assert.Throws<UserInputException>(() => Store.Open(DbPath, create: false));
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
        Assert.False(File.Exists(DbPath));
    }

    [Fact]
    public void Database_file_is_owner_only()
    {
        using (var store = Store.Open(DbPath, create: true))
        {
            using var tx = store.BeginWrite();
            store.SaveServer(Fixtures.Server());
            tx.Commit();
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(DbPath));
    }

    [Fact]
    public void Deleted_client_addresses_are_released_oldest_first_and_reclaimed_on_insert()
    {
        using var store = Store.Open(DbPath, create: true);
        var t0 = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var a = store.InsertClient(Fixtures.Client("a", c => c with { Address4 = IPAddress.Parse("203.0.113.5"), Address6 = IPAddress.Parse("fd00:1234:5678::5") }));
        var b = store.InsertClient(Fixtures.Client("b", c => c with { Address4 = IPAddress.Parse("203.0.113.3"), Address6 = IPAddress.Parse("fd00:1234:5678::3") }));
        var c = store.InsertClient(Fixtures.Client("c", c => c with { Address4 = IPAddress.Parse("203.0.113.4"), Address6 = null }));
        store.DeleteClient(a, t0.AddMinutes(1));
        store.DeleteClient(b, t0.AddMinutes(2));

        var u4 = store.LoadAddressUsage(v4: true);
        Assert.Equal([N("203.0.113.4")], u4.InUse);
        Assert.Equal([N("203.0.113.5"), N("203.0.113.3")], u4.Released);   // a released before b
        Assert.True(u4.ReleasedSet.SetEquals(u4.Released));
        var u6 = store.LoadAddressUsage(v4: false);
        Assert.Empty(u6.InUse);
        Assert.Equal([N("fd00:1234:5678::5"), N("fd00:1234:5678::3")], u6.Released);

        // Taking a released address again removes it from the released list.
        store.InsertClient(Fixtures.Client("d", c => c with { Address4 = IPAddress.Parse("203.0.113.5"), Address6 = null }));
        Assert.Equal([N("203.0.113.3")], store.LoadAddressUsage(v4: true).Released);
        Assert.Equal(2, store.LoadAddressUsage(v4: false).Released.Count);
    }

    [Fact]
    public void Releasing_the_same_address_again_moves_it_to_the_back()
    {
        using var store = Store.Open(DbPath, create: true);
        var t0 = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var x = store.InsertClient(Fixtures.Client("x", c => c with { Address4 = IPAddress.Parse("203.0.113.2"), Address6 = null }));
        var y = store.InsertClient(Fixtures.Client("y", c => c with { Address4 = IPAddress.Parse("203.0.113.3"), Address6 = null }));
        store.DeleteClient(x, t0);
        store.DeleteClient(y, t0.AddMinutes(1));
        // .2 is given out again and released again, later than .3
        var x2 = store.InsertClient(Fixtures.Client("x2", c => c with { Address4 = IPAddress.Parse("203.0.113.2"), Address6 = null }));
        store.DeleteClient(x2, t0.AddMinutes(2));
        Assert.Equal([N("203.0.113.3"), N("203.0.113.2")], store.LoadAddressUsage(v4: true).Released);
    }

    [Fact]
    public void Enabled_flag_and_runtime_values_persist()
    {
        using var store = Store.Open(DbPath, create: true);
        var c = store.InsertClient(Fixtures.Client("alice"));
        store.SetEnabled(c, false);
        Assert.False(store.RequireClient("alice").Enabled);
        store.SetEnabled(c, true);
        Assert.True(store.RequireClient("alice").Enabled);

        store.SetRuntime("forwarding_before", "0,1");
        store.SetRuntime("forwarding_before", "1,1");
        Assert.Equal("1,1", store.GetRuntime("forwarding_before"));
        store.SetRuntime("forwarding_before", null);
        Assert.Null(store.GetRuntime("forwarding_before"));
    }

    [Fact]
    public void RecordLive_updates_only_what_changed()
    {
        using var store = Store.Open(DbPath, create: true);
        var c = store.InsertClient(Fixtures.Client("alice"));
        var other = store.InsertClient(Fixtures.Client("bob", x => x with { Address4 = IPAddress.Parse("203.0.113.3"), Address6 = null }));
        var hs = new DateTimeOffset(2025, 5, 1, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(1, store.RecordLive([(c.PublicKey, "198.51.100.9:4000", hs)]));
        Assert.Equal(0, store.RecordLive([(c.PublicKey, "198.51.100.9:4000", hs)]));   // same again: no change
        Assert.Equal(0, store.RecordLive([(c.PublicKey, null, null)]));                // unknown now: keep the old values
        var got = store.RequireClient("alice");
        Assert.Equal("198.51.100.9:4000", got.LastEndpoint);
        Assert.Equal(hs, got.LastHandshake);
        Assert.Null(store.RequireClient("bob").LastEndpoint);
        Assert.Equal(0, store.RecordLive([(Fixtures.Key(9), "198.51.100.1:1", hs)]));   // unknown peer
    }

    /// <summary>Records compare lists by reference; compare them by content.</summary>
    internal static void AssertSameServer(Clients.ServerSettings expected, Clients.ServerSettings? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Dns, actual.Dns);
        Assert.Equal(expected.InternalNetworks, actual.InternalNetworks);
        Assert.Equal(expected, actual with { Dns = expected.Dns, InternalNetworks = expected.InternalNetworks });
    }

    private static UInt128 N(string ip) => Addressing.AddressPool.ToNumber(IPAddress.Parse(ip));
}
