using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Access;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Configs;

namespace MkbVpn.Tests;

/// <summary>Groups, rules, set, expiry and the audit log on a real SQLite store and real files (no live interface); on PostgreSQL: <see cref="AccessServiceTestsOnPostgres"/>.</summary>
public class AccessServiceTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly ClientService _svc;

    public AccessServiceTests()
        : this(null)
    {
    }

    /// <param name="store">A PostgreSQL store location; null: SQLite in the data directory.</param>
    protected AccessServiceTests(string? store)
    {
        _svc = new ClientService(new Paths(_dir.File("data"), store), _time) { Actor = new Actor("alice-admin", Actor.Cli) };
        _svc.Init(ClientServiceTests.Options());
    }

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Runs SQL behind the store's back; returns the database's error message (null: it succeeded).</summary>
    protected virtual string? SqlError(string sql)
    {
        using var db = new SqliteConnection($"Data Source={_svc.Paths.Database}");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        try
        {
            cmd.ExecuteNonQuery();
            return null;
        }
        catch (SqliteException e)
        {
            return e.Message;
        }
    }

    private string Conf(string name) => File.ReadAllText(_svc.Paths.ClientConfig(name));

    private static string AllowedIps(string conf) => conf.Split('\n').Single(l => l.StartsWith("AllowedIPs", StringComparison.Ordinal));

    [Fact]
    public void Init_creates_the_rules_that_keep_the_seeds_behaviour()
    {
        Assert.Equal(["everyone -> internal any", "everyone -> server any"], _svc.ListRules().Select(r => r.ToString()));
    }

    [Fact]
    public void Groups_add_list_and_remove()
    {
        _svc.AddGroup("staff", "Office staff");
        _svc.AddGroup("accounting", null);
        _svc.Add([new AddRequest("bob") { Groups = ["staff", "Accounting"] }]);
        var groups = _svc.ListGroups();
        Assert.Equal(["accounting", "staff"], groups.Select(g => g.Name));
        Assert.All(groups, g => Assert.Equal(1, g.Members));
        Assert.Equal(["accounting", "staff"], _svc.List().Single().Groups);
        Assert.Equal(["bob"], _svc.List("STAFF").Select(c => c.Name));

        var dup = Assert.Throws<FieldException>(() => _svc.AddGroup("Staff", null));
        Assert.Equal(ExitCodes.Conflict, dup.ExitCode);
        Assert.Throws<FieldException>(() => _svc.AddGroup("bad name", null));
        Assert.Throws<FieldException>(() => _svc.List("nope"));

        _svc.RemoveGroup("staff", force: false);
        Assert.Equal(["accounting"], _svc.List().Single().Groups);
    }

    [Fact]
    public void A_group_named_by_rules_is_kept_unless_forced()
    {
        _svc.AddGroup("contractors", null);
        var rule = _svc.Allow(new AllowRequest("group:contractors", "198.51.100.10") { Port = "443", Protocol = "tcp" }).Rule;
        var e = Assert.Throws<FieldException>(() => _svc.RemoveGroup("contractors", force: false));
        Assert.Contains($"{rule.Id}", e.Message);
        Assert.Single(_svc.ListGroups());
        var (_, removed) = _svc.RemoveGroup("contractors", force: true);
        Assert.Equal([rule.Id], removed.Select(r => r.Id));
        Assert.DoesNotContain(_svc.ListRules(), r => r.Id == rule.Id);
    }

    [Fact]
    public void Allow_is_idempotent_and_revoke_removes()
    {
        var a = _svc.Allow(new AllowRequest("everyone", "198.51.100.0/25") { Port = "8000-8100" });
        Assert.True(a.Created);
        Assert.Equal("everyone -> 198.51.100.0/25 tcp+udp/8000-8100", a.Rule.ToString());
        var again = _svc.Allow(new AllowRequest("EVERYONE", "198.51.100.0/25") { Port = "8000-8100", Protocol = "any" });
        Assert.False(again.Created);
        Assert.Equal(a.Rule.Id, again.Rule.Id);
        Assert.Equal(3, _svc.ListRules().Count);
        _svc.Revoke(a.Rule.Id);
        Assert.Equal(2, _svc.ListRules().Count);
        Assert.Equal(ExitCodes.NotFound, Assert.Throws<FieldException>(() => _svc.Revoke(a.Rule.Id)).ExitCode);
    }

    [Theory]
    [InlineData("group:nobody", "internal", null, null, "who")]
    [InlineData("client:nobody", "internal", null, null, "who")]
    [InlineData("someone", "internal", null, null, "who")]
    [InlineData("everyone", "192.0.2.0/24", null, null, "to")]
    [InlineData("everyone", "198.51.100.0/23", null, null, "to")]
    [InlineData("everyone", "198.51.100.1/24", null, null, "to")]
    [InlineData("everyone", "internal", "0", null, "port")]
    [InlineData("everyone", "internal", "70000", null, "port")]
    [InlineData("everyone", "internal", "100-90", null, "port")]
    [InlineData("everyone", "internal", "22", "icmp", "port")]
    [InlineData("everyone", "internal", null, "sctp", "proto")]
    public void Bad_rules_are_refused_and_change_nothing(string who, string to, string? port, string? proto, string field)
    {
        var before = _svc.ListRules();
        var e = Assert.Throws<FieldException>(() => _svc.Allow(new AllowRequest(who, to) { Port = port, Protocol = proto }));
        Assert.Equal(field, e.Field);
        Fixtures.AssertOneLine(e.Message);
        Assert.Equal(before, _svc.ListRules());
        Assert.Equal(before.Count, _svc.ListRules().Count);
    }

    [Fact]
    public void Least_privilege_configs_route_only_what_the_rules_allow()
    {
        _svc.AddGroup("accounting", null);
        _svc.Add([new AddRequest("alice"), new AddRequest("bob") { Groups = ["accounting"] }]);
        string before = Conf("alice");
        Assert.Equal("AllowedIPs = 203.0.113.0/24, fd00:1234:5678::/64, 198.51.100.0/24", AllowedIps(before));

        _svc.Allow(new AllowRequest("group:accounting", "198.51.100.20") { Port = "443", Protocol = "tcp" });
        Assert.Equal(before, Conf("alice"));   // nothing changed for her

        _svc.Revoke(_svc.ListRules().Single(r => r.Target == AccessRule.Internal).Id);
        Assert.Equal("AllowedIPs = 203.0.113.0/24, fd00:1234:5678::/64", AllowedIps(Conf("alice")));
        Assert.Equal("AllowedIPs = 203.0.113.0/24, fd00:1234:5678::/64, 198.51.100.20/32", AllowedIps(Conf("bob")));
        Assert.Equal(Conf("bob"), _svc.ConfigText("bob"));
        var check = _svc.Check("bob", "198.51.100.20:443/tcp");
        Assert.Equal(Verdict.Allow, check.Result.Verdict);
        Assert.Equal(Verdict.Deny, _svc.Check("alice", "198.51.100.20:443/tcp").Result.Verdict);
    }

    [Fact]
    public void Set_edits_in_place_keeping_keys_and_address()
    {
        _svc.AddGroup("staff", null);
        var bob = _svc.Add([new AddRequest("bob")]).Clients[0];
        var c = _svc.Set(new SetRequest("bob")
        {
            Rename = "robert",
            Groups = ["staff"],
            Expires = "14d",
            Dns = ["none"],
            AllowedIps = ["198.51.100.0/24"],
            Keepalive = "0",
        });
        Assert.Equal("robert", c.Name);
        Assert.Equal(["staff"], c.Groups);
        Assert.Equal(_time.GetUtcNow().AddDays(14), c.ExpiresAt);
        var (_, stored) = _svc.Get("robert");
        Assert.Equal(bob.PublicKey, stored.PublicKey);
        Assert.Equal(bob.PrivateKey, stored.PrivateKey);
        Assert.Equal(bob.Address4, stored.Address4);
        Assert.False(File.Exists(_svc.Paths.ClientConfig("bob")));
        string conf = Conf("robert");
        Assert.Contains($"PrivateKey = {bob.PrivateKey!.ToBase64()}", conf);
        Assert.Contains("AllowedIPs = 198.51.100.0/24\n", conf);
        Assert.DoesNotContain("DNS", conf);
        Assert.DoesNotContain("PersistentKeepalive", conf);
        Assert.Equal(ExitCodes.NotFound, Assert.Throws<UserInputException>(() => _svc.Get("bob")).ExitCode);

        // Back to the defaults.
        _svc.Set(new SetRequest("robert") { Groups = [], Expires = "never", Dns = ["default"], AllowedIps = ["default"], Keepalive = "default" });
        var (_, back) = _svc.Get("robert");
        Assert.Null(back.ExpiresAt);
        Assert.Empty(back.Groups);
        Assert.Contains("AllowedIPs = 203.0.113.0/24, fd00:1234:5678::/64, 198.51.100.0/24\n", Conf("robert"));
        Assert.Contains("PersistentKeepalive = 25", Conf("robert"));
    }

    [Fact]
    public void Bad_set_changes_nothing()
    {
        _svc.Add([new AddRequest("bob"), new AddRequest("carol")]);
        string conf = Conf("bob");
        Assert.Equal(ExitCodes.Conflict, Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("bob") { Rename = "Carol" })).ExitCode);
        Assert.Equal("expires", Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("bob") { Expires = "2020-01-01" })).Field);
        Assert.Equal("group", Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("bob") { Groups = ["nope"], Rename = "bobby" })).Field);
        Assert.Equal("keepalive", Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("bob") { Keepalive = "-1" })).Field);
        Assert.Equal("allowed-ips", Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("bob") { AllowedIps = [.. Enumerable.Range(0, 65).Select(i => $"198.51.100.{i}/32")] })).Field);
        Assert.Equal(conf, Conf("bob"));
        Assert.Equal(["bob", "carol"], _svc.List().Select(c => c.Name));
    }

    [Fact]
    public void Add_with_an_unknown_group_adds_nothing()
    {
        var e = Assert.Throws<FieldException>(() => _svc.Add([new AddRequest("bob"), new AddRequest("carol") { Groups = ["nope"] }]));
        Assert.Equal("group", e.Field);
        Assert.Empty(_svc.List());
        Assert.Empty(Directory.GetFiles(_svc.Paths.ClientsDir));
    }

    [Fact]
    public void An_expired_client_is_blocked_by_the_next_change_and_cannot_be_reenabled_until_a_new_expiry()
    {
        _svc.Add([new AddRequest("carol") { Expires = "1h" }, new AddRequest("dave")]);
        Assert.Equal("enabled", _svc.List()[0].StateAt(_time.GetUtcNow()));
        _time.Advance(TimeSpan.FromMinutes(61));
        Assert.Equal("expired", _svc.List()[0].StateAt(_time.GetUtcNow()));   // shown at once, even before it is applied
        Assert.Equal(["carol"], _svc.ExpireDue());
        Assert.False(_svc.Get("carol").Client.Enabled);
        Assert.Empty(_svc.ExpireDue());

        var e = Assert.Throws<UserInputException>(() => _svc.Reenable(["carol"]));
        Assert.Contains("expired", e.Message);
        Assert.False(_svc.Get("carol").Client.Enabled);

        _svc.Set(new SetRequest("carol") { Expires = "7d" });
        _svc.Reenable(["carol"]);
        Assert.True(_svc.Get("carol").Client.Enabled);
        var log = _svc.AuditLog("carol", null).Items;
        Assert.Contains(log, x => x is { Action: "expire", Actor: "system", Via: "service" });
        Assert.Equal(["add", "expire", "set", "reenable"], log.Reverse().Select(x => x.Action));
    }

    [Fact]
    public void Every_change_is_in_the_audit_log_without_secrets()
    {
        _svc.AddGroup("staff", null);
        var bob = _svc.Add([new AddRequest("bob") { Groups = ["staff"] }]).Clients[0];
        _svc.Block(["bob"]);
        _svc.Reenable(["bob"]);
        var rule = _svc.Allow(new AllowRequest("client:bob", "198.51.100.9") { Protocol = "icmp" }).Rule;
        _svc.Revoke(rule.Id);
        var web = _svc.As(new Actor("carol-admin", Actor.Page));
        web.Set(new SetRequest("bob") { Expires = "30d" });
        _svc.Remove(["bob"]);
        _svc.RemoveGroup("staff", false);
        _svc.Init(ClientServiceTests.Options() with { Change = true, Dns = ["198.51.100.1"] });

        var (items, total) = _svc.AuditLog(null, null);
        Assert.Equal(total, items.Count);
        Assert.Equal(["init", "group add", "add", "block", "reenable", "access allow", "access revoke", "set", "remove", "group remove", "init change"],
            items.Reverse().Select(e => e.Action));
        Assert.All(items.Where(e => e.Action != "set"), e => Assert.Equal(("alice-admin", "cli"), (e.Actor, e.Via)));
        Assert.Equal(("carol-admin", "page"), items.Single(e => e.Action == "set").Let(e => (e.Actor, e.Via)));
        Assert.All(items, e => Assert.Equal(AuditEntry.Ok, e.Outcome));
        Assert.Equal(7, _svc.AuditLog("BOB", null).Total);   // add, block, reenable, allow, revoke, set, remove
        Assert.Empty(_svc.AuditLog(null, "2030-01-01").Items);
        string everything = string.Join("\n", items.Select(e => $"{e.Target} {e.Detail}"));
        Assert.DoesNotContain(bob.PrivateKey!.ToBase64(), everything);
        Assert.DoesNotContain(bob.PresharedKey.ToBase64(), everything);
    }

    [Fact]
    public void The_audit_log_is_append_only_in_the_database()
    {
        _svc.Add([new AddRequest("bob")]);
        Assert.Contains("append-only", SqlError("UPDATE audit_log SET actor = 'someone else'"));
        Assert.Contains("append-only", SqlError("DELETE FROM audit_log"));
        Assert.Equal(2, _svc.AuditLog(null, null).Total);   // init, add: both still there
    }

    [Fact]
    public void Removing_a_client_removes_its_own_rules()
    {
        _svc.Add([new AddRequest("bob")]);
        _svc.Allow(new AllowRequest("client:bob", "198.51.100.9"));
        Assert.Equal(3, _svc.ListRules().Count);
        _svc.Remove(["bob"]);
        Assert.Equal(2, _svc.ListRules().Count);
        Assert.Contains("its rules removed", _svc.AuditLog("bob", null).Items[0].Detail);
    }
}

internal static class LetExtension
{
    public static TResult Let<T, TResult>(this T value, Func<T, TResult> f) => f(value);
}
