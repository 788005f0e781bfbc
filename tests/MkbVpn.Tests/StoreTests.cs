using System.Net;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>The store's promises, each on SQLite and on PostgreSQL (a real server: <see cref="PostgresServer"/>).</summary>
[Collection(PostgresCollection.Name)]
public sealed class StoreTests(PostgresServer pg)
{
    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Fresh_database_is_migrated_to_the_schema_version(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        Assert.True(Store.SchemaVersion >= 1);
        using (var store = db.Open(create: true))
        {
            Assert.Null(store.GetServer());
            Assert.Empty(store.ListClients());
        }
        Assert.Equal(Store.SchemaVersion, db.Version());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Reopening_keeps_data_and_does_not_migrate_again(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var server = Fixtures.Server();
        var client = Fixtures.Client();
        using (var store = db.Open(create: true))
        {
            using var tx = store.BeginWrite();
            store.SaveServer(server);
            store.InsertClient(client);
            tx.Commit();
        }
        // A marker table: a second migration run (CREATE TABLE server ...) would fail or wipe.
        db.Sql("CREATE TABLE marker (x INTEGER); INSERT INTO marker VALUES (42);");
        using (var store = db.Open(create: false))
        {
            AssertSameServer(server, store.GetServer());
            var c = Assert.Single(store.ListClients());
            Assert.Equal(client with { Id = c.Id }, c);
        }
        using (var store = db.Open(create: true))   // create on an existing file is not a re-create
            Assert.Single(store.ListClients());
        Assert.Equal(Store.SchemaVersion, db.Version());
        db.Sql("DELETE FROM marker WHERE x = 42;");   // throws if the marker table was lost
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Server_and_client_fields_round_trip_including_overrides(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var server = Fixtures.Server(s => s with { Subnet6 = null, Dns = [], InternalNetworks = [], FullTunnel = true, Masquerade = true, ClientToClient = true });
        var client = Fixtures.Client("bob", c => c with
        {
            Address6 = null,
            Dns = [],
            AllowedIps = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("fd00:1234::/32")],
            Keepalive = 0,
            Enabled = false,
        });
        using var store = db.Open(create: true);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Rolled_back_write_transaction_leaves_nothing(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Rollback_is_visible_to_another_connection_too(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
        using (store.BeginWrite())
            store.InsertClient(Fixtures.Client("alice"));
        using var other = db.Open(create: false);
        Assert.Empty(other.ListClients());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Nested_write_transaction_is_refused(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
        using var tx = store.BeginWrite();
        Assert.Throws<InvalidOperationException>(() => store.BeginWrite());
    }

    [Theory]
    [InlineData(Backend.Sqlite, "alice", "alice")]
    [InlineData(Backend.Sqlite, "alice", "ALICE")]
    [InlineData(Backend.Sqlite, "Bob", "bOB")]
    [InlineData(Backend.Postgres, "alice", "alice")]
    [InlineData(Backend.Postgres, "alice", "ALICE")]
    [InlineData(Backend.Postgres, "Bob", "bOB")]
    public void Duplicate_name_is_a_conflict_without_regard_to_case(Backend backend, string first, string second)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
        store.InsertClient(Fixtures.Client(first));
        var e = Assert.Throws<UserInputException>(() =>
            store.InsertClient(Fixtures.Client(second, c => c with { Address4 = IPAddress.Parse("203.0.113.3"), Address6 = IPAddress.Parse("fd00:1234:5678::3") })));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("already exists", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.Single(store.ListClients());
        Assert.NotNull(store.FindClient(second));   // lookups ignore case as well
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Duplicate_address_is_a_conflict(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
        store.InsertClient(Fixtures.Client("alice"));
        var e = Assert.Throws<UserInputException>(() => store.InsertClient(Fixtures.Client("bob", c => c with { Address6 = null })));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("203.0.113.2", e.Message);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Missing_client_is_not_found(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
        Assert.Null(store.FindClient("ghost"));
        var e = Assert.Throws<UserInputException>(() => store.RequireClient("ghost"));
        Assert.Equal(ExitCodes.NotFound, e.ExitCode);
    }

    [Fact]
    public void Corrupt_file_is_a_one_line_database_error()
    {
        using var db = new TestStore(Backend.Sqlite, pg);
        var bytes = new byte[8192];
        new Random(12345).NextBytes(bytes);
        File.WriteAllBytes(db.DbPath, bytes);
        foreach (bool create in new[] { false, true })
        {
            var e = Assert.Throws<UserInputException>(() => Store.Open(db.DbPath, create));
            Assert.Equal(ExitCodes.Database, e.ExitCode);
            Assert.Contains(db.DbPath, e.Message);
            Assert.Contains("corrupt", e.Message);
            Fixtures.AssertOneLine(e.Message);
        }
        Assert.Equal(bytes, File.ReadAllBytes(db.DbPath));   // not overwritten
    }

    [Fact]
    public void Text_file_is_not_a_database()
    {
        using var db = new TestStore(Backend.Sqlite, pg);
        File.WriteAllText(db.DbPath, "this is not SQLite, just a text file that is long enough to have a header...........................................................\n");
        var e = Assert.Throws<UserInputException>(() => Store.Open(db.DbPath, create: false));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Database_from_a_newer_version_is_refused(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using (db.Open(create: true)) { }
        db.SetVersion(Store.SchemaVersion + 1);
        var e = Assert.Throws<UserInputException>(() => db.Open(create: false));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("newer", e.Message);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Missing_file_without_create_is_not_initialised(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var e = Assert.Throws<UserInputException>(() => db.Open(create: false));
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
        Fixtures.AssertOneLine(e.Message);
        // A read never writes a schema: no file on SQLite, no table on PostgreSQL.
        if (db.Location is null)
            Assert.False(File.Exists(db.DbPath));
        else
            Assert.Equal(0L, pg.Scalar(db.Location, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"));
    }

    [Fact]
    public void Database_file_is_owner_only()
    {
        using var db = new TestStore(Backend.Sqlite, pg);
        using (var store = db.Open(create: true))
        {
            using var tx = store.BeginWrite();
            store.SaveServer(Fixtures.Server());
            tx.Commit();
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(db.DbPath));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Deleted_client_addresses_are_released_oldest_first_and_reclaimed_on_insert(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Releasing_the_same_address_again_moves_it_to_the_back(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Enabled_flag_and_runtime_values_persist(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void RecordLive_updates_only_what_changed(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open(create: true);
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
