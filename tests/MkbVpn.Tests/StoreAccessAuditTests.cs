using System.Net;
using MkbVpn.Access;
using MkbVpn.Audit;
using MkbVpn.Clients;

namespace MkbVpn.Tests;

/// <summary>
/// The store's groups, rules, audit log, admins, tokens, sessions and paged queries, on SQLite and on
/// PostgreSQL: the statements where the two dialects differ (case-insensitive names and order, LIKE,
/// identities, NULL parameters) give the same answers.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StoreAccessAuditTests(PostgresServer pg)
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static Client At(string name, int host) => Fixtures.Client(name, c => c with { Address4 = IPAddress.Parse($"203.0.113.{host}"), Address6 = null });

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Groups_are_unique_without_regard_to_case_and_listed_in_folded_order_with_counts(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        var staff = store.InsertGroup("staff", "Office", T0);
        var acc = store.InsertGroup("Accounting", "", T0);
        store.InsertGroup("_ops", "", T0);
        var e = Assert.Throws<FieldException>(() => store.InsertGroup("STAFF", "", T0));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        var bob = store.InsertClient(At("bob", 2));
        store.SetMemberships(bob.Id, [staff.Id, acc.Id, staff.Id]);
        store.InsertRule(new AccessRule { Id = 0, Subject = SubjectKind.Group, SubjectId = staff.Id, Target = "internal", Protocol = Protocol.Tcp, PortFrom = 443, PortTo = 443, CreatedAt = T0 });
        // SQLite's NOCASE order: '_' (0x5f) sorts after the folded letters' upper case but before lower case.
        Assert.Equal(["_ops", "Accounting", "staff"], store.ListGroups().Select(g => g.Name));
        var listed = store.ListGroups().Single(g => g.Name == "staff");
        Assert.Equal((1, 1), (listed.Members, listed.Rules));
        Assert.Equal(["Accounting", "staff"], store.GroupsOf(bob.Id));
        Assert.Equal([staff.Id, acc.Id], store.LoadMemberships()[bob.Id].Order());
        Assert.Equal("bob", Assert.Single(store.ClientsInGroup(acc.Id)).Name);
        store.DeleteGroup(staff.Id);   // cascades to the membership and the rule
        Assert.Equal(["Accounting"], store.GroupsOf(bob.Id));
        Assert.DoesNotContain(store.ListRules(), r => r.Subject == SubjectKind.Group);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Rules_get_ids_name_their_subject_and_go_with_their_client(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        var carol = store.InsertClient(At("carol", 3));
        var r1 = store.InsertRule(new AccessRule { Id = 0, Subject = SubjectKind.Everyone, Target = "server", Protocol = Protocol.Any, CreatedAt = T0 });
        var r2 = store.InsertRule(new AccessRule { Id = 0, Subject = SubjectKind.Client, SubjectId = carol.Id, Target = "198.51.100.30", Protocol = Protocol.Tcp, PortFrom = 8000, PortTo = 8080, CreatedAt = T0 });
        Assert.True(r2.Id > r1.Id);
        var rules = store.ListRules();
        Assert.Equal([r1.Id, r2.Id], rules.Select(r => r.Id));
        Assert.Equal("carol", rules[1].SubjectName);
        Assert.Equal((8000, 8080), (rules[1].PortFrom, rules[1].PortTo));
        Assert.Equal(T0, rules[1].CreatedAt);
        store.DeleteClient(carol, T0);
        Assert.Equal([r1.Id], store.ListRules().Select(r => r.Id));
        store.DeleteRule(r1.Id);
        Assert.Empty(store.ListRules());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void The_audit_log_filters_by_client_without_regard_to_case_and_by_time_newest_first(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        var actor = new Actor("root", Actor.Cli);
        store.AppendAudit(T0, actor, "add", "client:bob", "bob", null);
        store.AppendAudit(T0.AddHours(1), actor, "block", "client:Bob", "Bob", "why");
        store.AppendAudit(T0.AddHours(2), actor, "add", "client:eve", "eve", null, "failed: x");
        store.AppendAudit(T0.AddHours(3), actor, "init", "wg0", null, null);
        var (all, total) = store.QueryAudit(null, null, 0, 100);
        Assert.Equal(4, total);
        Assert.Equal(["init", "add", "block", "add"], all.Select(e => e.Action));
        var (bobs, bobTotal) = store.QueryAudit("BOB", null, 0, 100);
        Assert.Equal(2, bobTotal);
        Assert.Equal(["block", "add"], bobs.Select(e => e.Action));
        Assert.Equal("why", bobs[0].Detail);
        Assert.Equal(T0.AddHours(1), bobs[0].At);
        var (late, lateTotal) = store.QueryAudit(null, T0.AddHours(2), 0, 100);
        Assert.Equal(2, lateTotal);
        Assert.Equal("failed: x", late[1].Outcome);
        var (page, pageTotal) = store.QueryAudit("bob", T0.AddMinutes(30), 0, 1);
        Assert.Equal(1, pageTotal);
        Assert.Equal("block", Assert.Single(page).Action);
        Assert.Equal(["add"], store.QueryAudit(null, null, 3, 10).Items.Select(e => e.Action));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Client_pages_search_without_regard_to_case_escape_wildcards_and_count(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        store.InsertClient(At("Zed", 2));
        var amy = store.InsertClient(At("amy_1", 3));
        store.InsertClient(At("amyx1", 4));
        store.InsertClient(At("Bea", 14));
        store.SetEnabled(amy, false);
        var (items, total) = store.QueryClients(null, null, 0, 2);
        Assert.Equal(4, total);
        Assert.Equal(["amy_1", "amyx1"], items.Select(c => c.Name));
        Assert.Equal(["Bea", "Zed"], store.QueryClients(null, null, 2, 2).Items.Select(c => c.Name));
        Assert.Equal(["amy_1", "amyx1"], store.QueryClients("AMY", null, 0, 10).Items.Select(c => c.Name));
        Assert.Equal(["amy_1"], store.QueryClients("y_", null, 0, 10).Items.Select(c => c.Name));   // '_' is a character, not a wildcard
        Assert.Equal(["Bea"], store.QueryClients("113.14", null, 0, 10).Items.Select(c => c.Name));
        Assert.Equal(["amy_1"], store.QueryClients(null, false, 0, 10).Items.Select(c => c.Name));
        Assert.Equal(3, store.QueryClients(null, true, 0, 10).Total);
        Assert.Equal((4, 3), store.CountClients());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Rename_conflicts_and_expiry_are_the_stores(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        var a = store.InsertClient(At("ann", 2));
        store.InsertClient(At("ben", 3));
        var e = Assert.Throws<FieldException>(() => store.UpdateClient(a with { Name = "BEN" }));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        store.UpdateClient(a with { Name = "anna", Keepalive = 15, Dns = ["203.0.113.1"], ExpiresAt = T0 });
        var anna = store.RequireClient("ANNA");
        Assert.Equal((15, T0), (anna.Keepalive, anna.ExpiresAt));
        Assert.Equal(["anna"], store.ExpiredButEnabled(T0).Select(c => c.Name));
        Assert.Empty(store.ExpiredButEnabled(T0.AddSeconds(-1)));
        Assert.Equal(a.Id, store.FindClientById(a.Id)!.Id);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Admins_tokens_and_sessions(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        using var store = db.Open();
        store.InsertAdmin("root", "h1", T0);
        store.InsertAdmin("Alice", "h2", T0);
        Assert.Equal(ExitCodes.Conflict, Assert.Throws<UserInputException>(() => store.InsertAdmin("ROOT", "h3", T0)).ExitCode);
        Assert.Equal(["Alice", "root"], store.ListAdmins().Select(a => a.Name));
        var root = store.FindAdmin("Root")!;
        Assert.Equal("h1", root.PasswordHash);
        Assert.Equal("root", store.FindAdmin(root.Id)!.Name);
        store.SetAdminPassword(root.Id, "h4");
        store.SetAdminTotp(root.Id, "SECRET");
        Assert.Equal(("h4", "SECRET"), (store.FindAdmin("root")!.PasswordHash, store.FindAdmin("root")!.TotpSecret));
        Assert.True(store.ConsumeTotpStep(root.Id, 10));
        Assert.False(store.ConsumeTotpStep(root.Id, 9));
        store.SetAdminTotp(root.Id, null);
        Assert.True(store.ConsumeTotpStep(root.Id, 9));   // a new secret starts over

        store.InsertToken("t1", "ci", "th", T0);
        Assert.Equal(ExitCodes.Conflict, Assert.Throws<UserInputException>(() => store.InsertToken("t2", "CI", "th", T0)).ExitCode);
        store.TouchToken("t1", T0.AddHours(1));
        Assert.Equal(T0.AddHours(1), Assert.Single(store.ListTokens()).LastUsedAt);
        Assert.Equal(("ci", "th"), store.FindToken("t1"));
        Assert.True(store.DeleteToken("Ci"));
        Assert.Null(store.FindToken("t1"));

        store.InsertSession("s1", "sh", root.Id, T0, T0.AddHours(12));
        store.InsertSession("s2", "sh", root.Id, T0, T0.AddHours(12));
        store.InsertSession("s3", "sh", root.Id, T0, T0.AddHours(12));
        Assert.Equal(root.Id, store.FindSession("s1")!.Value.AdminId);
        Assert.Equal(2, store.DeleteSessionsOf(root.Id, except: "s2"));
        Assert.NotNull(store.FindSession("s2"));
        Assert.Equal(1, store.DeleteSessionsOf(root.Id));
        store.InsertSession("s4", "sh", root.Id, T0, T0.AddHours(12));
        // An expired session is swept by the next login.
        store.InsertSession("s5", "sh", root.Id, T0.AddDays(1), T0.AddDays(2));
        Assert.Null(store.FindSession("s4"));
        Assert.True(store.DeleteAdmin(root.Id));
        Assert.Null(store.FindSession("s5"));
        Assert.False(store.DeleteAdmin(root.Id));
    }
}
