using MkbVpn.Admin;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Gateways;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>
/// 'restore' into a registry in PostgreSQL (a real server: <see cref="PostgresServer"/>): into an
/// empty database, over an existing registry with --force, and what happens to the gateways' runtime
/// rows (gateway_runtime, gateway_peers): the backup's are stale and never restored, the running
/// gateways' are kept for the gateways and clients that are still there.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BackupOnPostgresTests(PostgresServer pg) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private ClientService Service(Paths paths) => new(paths, ServiceHost.Live(_time)) { Actor = new Actor("root", Actor.Cli) };

    private ClientService Populated(Paths paths)
    {
        var svc = Service(paths);
        svc.Init(ClientServiceTests.Options());
        svc.AddGroup("staff", "Office staff");
        svc.Add([new AddRequest("alice") { Groups = ["staff"] }, new AddRequest("bob") { Expires = "14d" }, new AddRequest("carol") { Dns = ["198.51.100.53"] }]);
        svc.Block(["bob"]);
        svc.Allow(new AllowRequest("group:staff", "198.51.100.20") { Port = "443", Protocol = "tcp" });
        new AdminService(paths, _time).AddAdmin("root", "a long enough password");
        return svc;
    }

    /// <summary>What the registry answers, as text: clients, rules, groups, audit log, admins, configs.</summary>
    private static string Look(ClientService svc) =>
        string.Join("\n", svc.List().Select(c => $"{c.Id} {c.Name} {c.AddressText} {c.Enabled} {c.ExpiresAt:O} {string.Join(",", c.Groups)} {c.PublicKey.ToBase64()} {c.CreatedAt:O}")) + "\n--\n" +
        string.Join("\n", svc.ListRules().Select(r => $"{r.Id} {r}")) + "\n--\n" +
        string.Join("\n", svc.ListGroups().Select(g => $"{g.Id} {g.Name} {g.Description} {g.Members}")) + "\n--\n" +
        string.Join("\n", new AdminService(svc.Paths).ListAdmins().Select(a => $"{a.Name} {a.CreatedAt:O}")) + "\n--\n" +
        string.Join("\n", svc.List().Select(c => svc.ConfigText(c.Name)));

    private static string Audit(ClientService svc) =>
        string.Join("\n", svc.AuditLog(null, null).Items.Select(e => $"{e.Id} {e.At:O} {e.Actor} {e.Action} {e.Target} {e.Detail} {e.Outcome}"));

    [Fact]
    public void A_backup_restores_into_an_empty_postgresql_database_and_the_registry_is_writable_after()
    {
        var source = Populated(new Paths(_dir.File("sqlite")));
        string file = source.Backup(_dir.File("b.mkbbak"), null).Path;
        string location = pg.NewDatabase();
        var target = Service(new Paths(_dir.File("pg-host"), location));

        var r = target.Restore(file, null, force: false);

        Assert.Equal(3, r.Clients);
        Assert.Equal(Look(source), Look(target));
        Assert.Equal(source.GetServer().PrivateKey, target.GetServer().PrivateKey);
        foreach (var name in new[] { "alice", "bob", "carol" })
            Assert.Equal(source.ConfigText(name), File.ReadAllText(target.Paths.ClientConfig(name)));
        var audit = target.AuditLog(null, null).Items;
        Assert.Equal("restore", audit[0].Action);                        // newest first: the restore's own entry
        Assert.Equal(Audit(source), string.Join("\n", Audit(target).Split('\n').Skip(1)));
        Assert.Equal(1, Convert.ToInt64(pg.Scalar(location, "SELECT count(*) FROM gateways WHERE name = 'main'"), System.Globalization.CultureInfo.InvariantCulture));

        // Identity counters continue after the restored ids: new rows of every kind get fresh ones.
        target.Add([new AddRequest("dave")]);
        target.AddGroup("ops", null);
        target.Allow(new AllowRequest("client:dave", "198.51.100.40"));
        var ids = target.List().Select(c => c.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(4, target.List().Count);
        // The audit log is append-only again after the restore emptied it.
        var refused = Assert.Throws<Npgsql.PostgresException>(() => pg.Sql(location, "DELETE FROM audit_log"));
        Assert.Contains("append-only", refused.MessageText);
    }

    [Fact]
    public void Restore_over_a_postgresql_registry_needs_force_then_replaces_it_in_one_transaction()
    {
        string location = pg.NewDatabase();
        var paths = new Paths(_dir.File("host"), location);
        var svc = Populated(paths);
        string file = svc.Backup(_dir.File("b.mkbbak"), null).Path;
        string before = Look(svc), auditBefore = Audit(svc);
        svc.Add([new AddRequest("dave")]);
        svc.AddGroup("later", null);

        var e = Assert.Throws<UserInputException>(() => svc.Restore(file, null, force: false));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Equal(4, svc.List().Count);

        // A restore that fails halfway (here: the database refuses a row it copies) leaves the registry as it was.
        pg.Sql(location, """
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''disk full (simulated)''; END';
            CREATE TRIGGER refuse BEFORE INSERT ON client_groups FOR EACH ROW EXECUTE FUNCTION refuse();
            """);
        var failed = Assert.Throws<UserInputException>(() => svc.Restore(file, null, force: true));
        Assert.Equal(ExitCodes.Database, failed.ExitCode);
        Assert.Contains("disk full (simulated)", failed.Message);
        Assert.Equal(["alice", "bob", "carol", "dave"], svc.List().Select(c => c.Name));
        Assert.Contains("later", svc.ListGroups().Select(g => g.Name));
        pg.Sql(location, "DROP TRIGGER refuse ON client_groups; DROP FUNCTION refuse();");

        svc.Restore(file, null, force: true);
        Assert.Equal(before, Look(svc));
        Assert.False(File.Exists(paths.ClientConfig("dave")));
        Assert.Equal(auditBefore, string.Join("\n", Audit(svc).Split('\n').Skip(1)));
        svc.Add([new AddRequest("erin")]);
        Assert.Equal(4, svc.List().Count);
    }

    [Fact]
    public void A_restore_keeps_the_running_gateways_runtime_rows_and_never_brings_back_the_backups()
    {
        string location = pg.NewDatabase();
        var paths = new Paths(_dir.File("host"), location);
        var svc = Service(paths);
        svc.Init(ClientServiceTests.Options());
        svc.AddGateway(new GatewayRequest("berlin") { Endpoint = "198.18.2.1:51821", ListenPort = 51821, Interface = "mkbgw0" });
        svc.Add([new AddRequest("alice"), new AddRequest("bob")]);
        var t0 = _time.GetUtcNow();

        // What the gateways observed when the backup was taken: stale by the time it is restored.
        using (var store = Store.Open(StoreLocation.Parse(location), create: false))
        {
            var berlin = store.FindGateway("berlin")!;
            long alice = store.FindClient("alice")!.Id, bob = store.FindClient("bob")!.Id;
            using var tx = store.BeginWrite();
            store.SetGatewayRuntime(berlin.Id, "forwarding_before", "stale");
            store.SetGatewayRuntime(berlin.Id, "state", "down");
            store.ReportGateway(berlin.Id, t0, "stale-engine",
                [new GatewayPeerReport(berlin.Id, alice, t0, "198.18.9.9:1", 1, 1, t0), new GatewayPeerReport(berlin.Id, bob, t0, "198.18.9.9:2", 1, 1, t0)], 2);
            tx.Commit();
        }
        string file = svc.Backup(_dir.File("b.mkbbak"), null).Path;

        // Since then: bob removed, carol added, gateway hamburg added; every gateway reported what it sees now.
        _time.Advance(TimeSpan.FromHours(3));
        var t1 = _time.GetUtcNow();
        svc.Remove(["bob"]);
        svc.Add([new AddRequest("carol")]);
        svc.AddGateway(new GatewayRequest("hamburg") { Endpoint = "198.18.3.1:51822", ListenPort = 51822, Interface = "mkbgw1" });
        using (var store = Store.Open(StoreLocation.Parse(location), create: false))
        {
            var berlin = store.FindGateway("berlin")!;
            var hamburg = store.FindGateway("hamburg")!;
            long alice = store.FindClient("alice")!.Id, carol = store.FindClient("carol")!.Id;
            using var tx = store.BeginWrite();
            store.SetGatewayRuntime(berlin.Id, "forwarding_before", "0");
            store.SetGatewayRuntime(berlin.Id, "state", "up");
            store.SetGatewayRuntime(hamburg.Id, "state", "up");
            store.ReportGateway(berlin.Id, t1, "builtin",
                [new GatewayPeerReport(berlin.Id, alice, t1, "198.18.1.2:51000", 100, 200, t1), new GatewayPeerReport(berlin.Id, carol, t1, "198.18.1.3:51000", 5, 6, t1)], 2);
            store.ReportGateway(hamburg.Id, t1, "builtin", [new GatewayPeerReport(hamburg.Id, alice, t1, "198.18.3.2:51000", 7, 8, t1)], 1);
            tx.Commit();
        }

        svc.Restore(file, null, force: true);

        Assert.Equal(["alice", "bob"], svc.List().Select(c => c.Name));
        Assert.Equal(["berlin", "main"], svc.ListGateways().Select(g => g.Gateway.Name));
        using (var store = Store.Open(StoreLocation.Parse(location), create: false))
        {
            var berlin = store.FindGateway("berlin")!;
            long alice = store.FindClient("alice")!.Id;
            // Berlin's host state and its last report are today's, not the backup's.
            Assert.Equal("0", store.GetGatewayRuntime(berlin.Id, "forwarding_before"));
            Assert.Equal("up", store.GetGatewayRuntime(berlin.Id, "state"));
            Assert.Equal(t1, berlin.LastSeen);
            Assert.Equal("builtin", berlin.Engine);
            // What berlin saw of alice now; carol is not in the backup, bob's row was the backup's (stale): both gone.
            var seen = Assert.Single(store.ListGatewayPeers(berlin.Id));
            Assert.Equal((alice, "198.18.1.2:51000", 100L), (seen.ClientId, seen.Endpoint, seen.RxBytes));
            // Hamburg is not in the backup: its rows went with it.
            Assert.DoesNotContain(store.ListGatewayPeers(), p => p.GatewayId != berlin.Id);
            Assert.Equal(0L, Convert.ToInt64(pg.Scalar(location, "SELECT count(*) FROM gateway_runtime WHERE gateway_id <> " + berlin.Id), System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public void A_restore_into_sqlite_drops_the_gateway_runtime_rows_a_postgresql_backup_carries()
    {
        string location = pg.NewDatabase();
        var svc = Service(new Paths(_dir.File("host"), location));
        svc.Init(ClientServiceTests.Options());
        svc.Add([new AddRequest("alice")]);
        var now = _time.GetUtcNow();
        using (var store = Store.Open(StoreLocation.Parse(location), create: false))
        {
            var main = store.FindGateway("main")!;
            using var tx = store.BeginWrite();
            store.SetGatewayRuntime(main.Id, "forwarding_before", "0");
            store.ReportGateway(main.Id, now, "builtin", [new GatewayPeerReport(main.Id, store.FindClient("alice")!.Id, now, "198.18.1.2:51000", 1, 2, now)], 1);
            tx.Commit();
        }
        string file = svc.Backup(_dir.File("pg.mkbbak"), null).Path;

        var fresh = Service(new Paths(_dir.File("sqlite")));
        fresh.Restore(file, null, force: false);

        Assert.Equal(["alice"], fresh.List().Select(c => c.Name));
        using var restored = Store.Open(fresh.Paths.Database, create: false);
        var gateway = restored.FindGateway("main")!;
        Assert.Null(restored.GetGatewayRuntime(gateway.Id, "forwarding_before"));
        Assert.Empty(restored.ListGatewayPeers());
    }

    [Fact]
    public void A_backup_written_by_schema_2_restores_into_postgresql_migrated_with_identical_configs()
    {
        string fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "schema2");
        File.WriteAllBytes(_dir.File("old.mkbbak"), BackupFile.Write(File.ReadAllBytes(Path.Combine(fixture, Store.FileName)), 2, _time.GetUtcNow(), null));
        string location = pg.NewDatabase();
        var svc = Service(new Paths(_dir.File("host"), location));

        Assert.Equal(4, svc.Restore(_dir.File("old.mkbbak"), null, force: false).Clients);

        Assert.Equal(Store.SchemaVersion, Convert.ToInt64(pg.Scalar(location, "SELECT version FROM schema_version"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(["alice", "bob", "dave", "erin"], svc.List().Select(c => c.Name));
        foreach (var f in Directory.GetFiles(Path.Combine(fixture, "clients")))
        {
            string name = Path.GetFileNameWithoutExtension(f);
            Assert.Equal(File.ReadAllText(f), svc.ConfigText(name));
            Assert.Equal(File.ReadAllText(f), svc.ConfigText(name, "main"));
            Assert.Equal(File.ReadAllText(f), File.ReadAllText(svc.Paths.ClientConfig(name)));
        }
        Assert.Equal(["root"], new AdminService(svc.Paths).ListAdmins().Select(a => a.Name));
        Assert.Equal("203.0.113.7", svc.Add([new AddRequest("frank")]).Clients[0].Address4!.ToString());   // the released address, still reused last
        Assert.Equal(["main"], svc.ListGateways().Select(g => g.Gateway.Name));
    }
}
