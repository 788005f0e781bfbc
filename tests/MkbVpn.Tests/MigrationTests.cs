using MkbVpn.Access;
using MkbVpn.Admin;
using MkbVpn.Clients;
using MkbVpn.Storage;
using MkbVpn.Traffic;

namespace MkbVpn.Tests;

/// <summary>
/// Upgrades keep users' data: a store written by an earlier schema (a fixture) opens, migrates, and
/// renders the same configs; moved into PostgreSQL, it still does. (The migrations themselves run
/// step by step on PostgreSQL in <see cref="PostgresStoreTests"/>.)
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class MigrationTests(PostgresServer pg) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Paths CopyFixture(string name)
    {
        string from = Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
        string data = _dir.File("data");
        Directory.CreateDirectory(data);
        File.Copy(Path.Combine(from, Store.FileName), Path.Combine(data, Store.FileName));
        Directory.CreateDirectory(Path.Combine(data, "clients"));
        foreach (var f in Directory.GetFiles(Path.Combine(from, "clients")))
            File.Copy(f, Path.Combine(data, "clients", Path.GetFileName(f)));
        return new Paths(data);
    }

    private static IEnumerable<(string Name, string Text)> FixtureConfigs(string name) =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures", name, "clients"))
            .Select(f => (Path.GetFileNameWithoutExtension(f), File.ReadAllText(f)));

    [Fact]
    public void Schema_2_store_keeps_every_client_and_renders_identical_configs()
    {
        var paths = CopyFixture("schema2");
        var svc = new ClientService(paths);
        var clients = svc.List();
        Assert.Equal(["alice", "bob", "dave", "erin"], clients.Select(c => c.Name));
        Assert.False(clients.Single(c => c.Name == "bob").Enabled);
        Assert.All(clients, c => Assert.Null(c.ExpiresAt));
        Assert.All(clients, c => Assert.Empty(c.Groups));
        foreach (var (name, text) in FixtureConfigs("schema2"))
            Assert.Equal(text, svc.ConfigText(name));

        // Nothing changes for its users: everyone keeps reaching the internal networks and the server.
        Assert.Equal(["everyone -> internal any", "everyone -> server any"], svc.ListRules().Select(r => r.ToString()));
        Assert.Equal(Verdict.Allow, svc.Check("alice", "198.51.100.7:22/tcp").Result.Verdict);
        Assert.Equal(Verdict.Allow, svc.Check("erin", "203.0.113.1/icmp").Result.Verdict);

        // Admins and tokens survive too; the released address is still reused last.
        Assert.Equal(["root"], new AdminService(paths).ListAdmins().Select(a => a.Name));
        var added = svc.Add([new AddRequest("frank")]).Clients[0];
        Assert.Equal("203.0.113.7", added.Address4!.ToString());
        using var store = Store.Open(paths.Database, create: false);
        Assert.Equal(Store.SchemaVersion, store.UserVersion());

        // The server became exactly one gateway, 'main', with its key, interface and endpoint; its configs are the same.
        var server = store.RequireServer();
        var main = Assert.Single(store.ListGateways());
        Assert.Equal((Gateways.Gateway.MainName, server.Interface, server.Endpoint, server.ListenPort), (main.Name, main.Interface, main.Endpoint, main.ListenPort));
        Assert.True(main.PublicKey.Equals(server.PublicKey) && main.PrivateKey.Equals(server.PrivateKey));
        foreach (var (name, text) in FixtureConfigs("schema2"))
            Assert.Equal(text, svc.ConfigText(name, "main"));
    }

    [Fact]
    public void Schema_2_store_migrates_once_and_opens_again()
    {
        var paths = CopyFixture("schema2");
        for (int i = 0; i < 2; i++)
        {
            using var store = Store.Open(paths.Database, create: false);
            Assert.Equal(2, store.ListRules().Count);
        }
    }

    [Fact]
    public void Schema_2_admins_get_totp_codes_accepted_once_after_migration()
    {
        var paths = CopyFixture("schema2");
        var admins = new AdminService(paths);
        admins.SetPassword("root", "a new long password");
        string secret = Totp.NewSecret();
        var now = DateTimeOffset.UtcNow;
        admins.EnableTotp("root", secret, Totp.Code(secret, Totp.StepAt(now)));
        string code = Totp.Code(secret, Totp.StepAt(now) + 1);
        Assert.Equal(LoginOutcome.Ok, admins.Login("root", "a new long password", code).Outcome);
        Assert.Equal(LoginOutcome.CodeRequired, admins.Login("root", "a new long password", code).Outcome);
        using var store = Store.Open(paths.Database, create: false);
        Assert.Equal(Store.SchemaVersion, store.UserVersion());
    }

    [Fact]
    public void Schema_2_store_gets_an_empty_traffic_history_that_records_and_goes_with_a_removed_client()
    {
        var paths = CopyFixture("schema2");
        var svc = new ClientService(paths);
        Assert.Equal(TrafficRetention.Default, svc.GetTrafficRetention());
        var range = svc.ParseTrafficRange("24h", null, "hour");
        Assert.All(svc.TrafficOf("alice", range).Points, p => Assert.Equal(0, p.RxBytes + p.TxBytes + p.OnlineMinutes));
        var dave = svc.Get("dave").Client;
        using (var store = Store.Open(paths.Database, create: false))
        {
            Assert.Equal(Store.SchemaVersion, store.UserVersion());
            Assert.Equal(0, store.TrafficRowCount());
            using var tx = store.BeginWrite();
            store.RecordTraffic(range.ToMinute - 1, [new TrafficDelta(dave.Id, 1_234, 56, true)], [(dave.Id, new TrafficCounters(1_234, 56, range.ToMinute - 1))]);
            tx.Commit();
        }
        var h = svc.TrafficOf("dave", range);
        Assert.Equal((1_234L, 56L, 1L), (h.RxBytes, h.TxBytes, h.Points[^1].OnlineMinutes));

        svc.Remove(["dave"]);
        using (var store = Store.Open(paths.Database, create: false))
            Assert.Equal(1, store.TrafficRowCount());   // the total's row only
        Assert.Equal(1_234, svc.TrafficOf(null, range).RxBytes);
    }

    [Fact]
    public void Schema_2_store_moved_into_postgresql_keeps_every_client_and_renders_identical_configs()
    {
        var paths = CopyFixture("schema2");
        string location = pg.NewDatabase();
        var moved = StoreMove.Run(paths, location, FileLock.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal(4, moved.Rows["clients"]);
        var onPg = new Paths(paths.DataDir, location);
        var svc = new ClientService(onPg);
        var clients = svc.List();
        Assert.Equal(["alice", "bob", "dave", "erin"], clients.Select(c => c.Name));
        Assert.False(clients.Single(c => c.Name == "bob").Enabled);
        foreach (var (name, text) in FixtureConfigs("schema2"))
            Assert.Equal(text, svc.ConfigText(name));
        Assert.Equal(["everyone -> internal any", "everyone -> server any"], svc.ListRules().Select(r => r.ToString()));
        Assert.Equal(["root"], new AdminService(onPg).ListAdmins().Select(a => a.Name));
        // The released address is still reused last, through PostgreSQL.
        Assert.Equal("203.0.113.7", svc.Add([new AddRequest("frank")]).Clients[0].Address4!.ToString());
        using var store = Store.Open(onPg, create: false);
        Assert.True(store.IsPostgres);
        Assert.Equal(Store.SchemaVersion, store.UserVersion());
        var main = Assert.Single(store.ListGateways());
        Assert.True(main.PublicKey.Equals(store.RequireServer().PublicKey));
    }
}
