using MkbVpn.Access;
using MkbVpn.Admin;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>migrate-store: a SQLite server moved into PostgreSQL, all or nothing, and nothing changes for its users.</summary>
[Collection(PostgresCollection.Name)]
public sealed class StoreMoveTests(PostgresServer pg) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private Paths Sqlite => new(_dir.File("data"));

    private ClientService Service(Paths paths) => new(paths, ServiceHost.Live(_time)) { Actor = new Actor("root", Actor.Cli) };

    /// <summary>A server with clients (one blocked, one expiring, one with its own DNS), groups, rules, an admin, a token, and what all that wrote to the audit log.</summary>
    private ClientService Populated()
    {
        var svc = Service(Sqlite);
        svc.Init(ClientServiceTests.Options());
        svc.AddGroup("staff", "Office staff");
        svc.AddGroup("Accounting", null);
        svc.Add([new AddRequest("alice") { Groups = ["staff"] }, new AddRequest("bob") { Groups = ["staff", "accounting"], Expires = "14d" }]);
        svc.Add([new AddRequest("carol") { Dns = ["198.51.100.53"], Keepalive = 15 }]);
        svc.Add([new AddRequest("dave")]);
        svc.Remove(["dave"]);   // its address is released: reused last
        svc.Add([new AddRequest("erin")]);
        svc.Block(["erin"]);
        svc.Allow(new AllowRequest("group:accounting", "198.51.100.20") { Port = "443", Protocol = "tcp" });
        svc.Allow(new AllowRequest("client:carol", "198.51.100.30"));
        new AdminService(Sqlite, _time).AddAdmin("root", "a long enough password");
        new AdminService(Sqlite, _time).AddToken("ci");
        return svc;
    }

    private sealed record View(string List, string Rules, string Groups, string Audit, string Admins, string Tokens, IReadOnlyDictionary<string, string> Configs);

    /// <summary>What list, show, access list, group list, log, admin list and token list answer, as text.</summary>
    private static View Look(ClientService svc, Paths paths)
    {
        var list = svc.List();
        return new View(
            string.Join("\n", list.Select(c => $"{c.Id} {c.Name} {c.AddressText} {c.Enabled} {c.ExpiresAt:O} {string.Join(",", c.Groups)} {c.PublicKey.ToBase64()} {c.CreatedAt:O} {string.Join(",", c.Dns ?? [])} {c.Keepalive}")),
            string.Join("\n", svc.ListRules().Select(r => $"{r.Id} {r}")),
            string.Join("\n", svc.ListGroups().Select(g => $"{g.Id} {g.Name} {g.Description} {g.Members} {g.Rules}")),
            string.Join("\n", svc.AuditLog(null, null).Items.Select(e => $"{e.Id} {e.At:O} {e.Actor} {e.Via} {e.Action} {e.Target} {e.Client} {e.Detail} {e.Outcome}")),
            string.Join("\n", new AdminService(paths).ListAdmins().Select(a => $"{a.Name} {a.CreatedAt:O}")),
            string.Join("\n", new AdminService(paths).ListTokens().Select(t => $"{t.Id} {t.Name}")),
            list.ToDictionary(c => c.Name, c => svc.ConfigText(c.Name)));
    }

    [Fact]
    public void A_moved_store_answers_the_same_through_postgresql_and_renders_identical_configs()
    {
        var svc = Populated();
        var before = Look(svc, Sqlite);
        string location = pg.NewDatabase();

        var r = StoreMove.Run(Sqlite, location, FileLock.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal(4, r.Rows["clients"]);
        Assert.Equal(2, r.Rows["groups"]);
        Assert.Equal(4, r.Rows["access_rules"]);
        Assert.Equal(1, r.Rows["server"]);
        Assert.True(r.Rows["audit_log"] >= 10);
        Assert.DoesNotContain("passfile", r.To);

        var onPg = new Paths(Sqlite.DataDir, location);
        var pgSvc = Service(onPg);
        var after = Look(pgSvc, onPg);
        Assert.Equal(before.List, after.List);
        Assert.Equal(before.Rules, after.Rules);
        Assert.Equal(before.Groups, after.Groups);
        Assert.Equal(before.Audit, after.Audit);
        Assert.Equal(before.Admins, after.Admins);
        Assert.Equal(before.Tokens, after.Tokens);
        Assert.Equal(before.Configs, after.Configs);
        // The config files 'add' wrote are what PostgreSQL's store renders, byte for byte.
        foreach (var (name, text) in after.Configs.Where(c => c.Key != "erin"))
            Assert.Equal(File.ReadAllText(onPg.ClientConfig(name)), text);

        // Identity counters continue after the copied ids; the released address is still reused last.
        long maxId = pgSvc.List().Max(c => c.Id);
        var frank = pgSvc.Add([new AddRequest("frank")]).Clients[0];
        Assert.True(frank.Id > maxId, $"frank got id {frank.Id}, not after {maxId}");
        Assert.Equal("203.0.113.7", frank.Address4!.ToString());   // dave's .5 was released: a fresh address first
        var rule = pgSvc.Allow(new AllowRequest("client:frank", "198.51.100.40")).Rule;
        Assert.True(rule.Id > 4);
        Assert.Equal(Verdict.Allow, pgSvc.Check("bob", "198.51.100.20:443/tcp").Result.Verdict);

        // The SQLite file is kept but refuses further use, naming where the registry went.
        var e = Assert.Throws<UserInputException>(() => svc.List());
        Assert.Contains(location, e.Message);   // as given, passfile and all: what to set
        Assert.Contains(StoreLocation.Variable, e.Message);
        Fixtures.AssertOneLine(e.Message);
        // And moving it again is refused.
        Assert.Equal(ExitCodes.Conflict, Assert.Throws<UserInputException>(() => StoreMove.Run(Sqlite, pg.NewDatabase(), FileLock.Instance, TimeSpan.FromSeconds(10))).ExitCode);
    }

    [Fact]
    public void A_target_that_is_not_empty_is_refused_in_one_line_and_left_alone()
    {
        Populated();
        string location = pg.NewDatabase();
        var other = new Paths(_dir.File("other"), location);
        Service(other).Init(ClientServiceTests.Options());
        Service(other).Add([new AddRequest("zoe")]);

        var e = Assert.Throws<UserInputException>(() => StoreMove.Run(Sqlite, location, FileLock.Instance, TimeSpan.FromSeconds(10)));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("not empty", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.Equal(["zoe"], Service(other).List().Select(c => c.Name));
        Assert.Equal(4, Service(Sqlite).List().Count);   // the source goes on as before
    }

    [Fact]
    public void A_copy_that_fails_halfway_leaves_the_target_empty_and_the_source_in_use()
    {
        Populated();
        string location = pg.NewDatabase();
        using (Store.Open(StoreLocation.Parse(location), create: true)) { }
        // The last table refuses its rows: everything copied before it must go too.
        pg.Sql(location, """
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''disk full (simulated)''; END';
            CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse();
            """);
        var e = Assert.Throws<UserInputException>(() => StoreMove.Run(Sqlite, location, FileLock.Instance, TimeSpan.FromSeconds(10)));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("disk full (simulated)", e.Message);
        foreach (var table in Store.Tables)
            Assert.Equal(0L, pg.Scalar(location, $"SELECT count(*) FROM {table}"));
        Assert.Equal(4, Service(Sqlite).List().Count);   // not marked as moved
    }

    [Fact]
    public void A_password_in_the_target_is_refused_before_anything_is_read()
    {
        Populated();
        var e = Assert.Throws<UserInputException>(() => StoreMove.Run(Sqlite, $"postgresql://mkbtest:{pg.Password}@127.0.0.1:{pg.Port}/x", FileLock.Instance, TimeSpan.FromSeconds(10)));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.DoesNotContain(pg.Password, e.Message);
        Assert.Equal(4, Service(Sqlite).List().Count);
    }

    [Fact]
    public void Backups_of_a_postgresql_store_are_the_same_sqlite_file_and_restore_into_sqlite()
    {
        Populated();
        string location = pg.NewDatabase();
        StoreMove.Run(Sqlite, location, FileLock.Instance, TimeSpan.FromSeconds(10));
        var onPg = new Paths(Sqlite.DataDir, location);
        var before = Look(Service(onPg), onPg);
        string file = Service(onPg).Backup(_dir.File("pg.mkbbak"), null).Path;

        var fresh = new Paths(_dir.File("restored"));
        Service(fresh).Restore(file, null, force: false);
        var after = Look(Service(fresh), fresh);
        Assert.Equal(before.List, after.List);
        Assert.Equal(before.Rules, after.Rules);
        Assert.Equal(before.Configs, after.Configs);
        Assert.Equal(before.Audit, string.Join("\n", after.Audit.Split('\n').Skip(1)));   // plus the restore's own entry
        // Restoring into PostgreSQL itself: BackupOnPostgresTests.
    }
}
