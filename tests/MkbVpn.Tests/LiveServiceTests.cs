using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Network;

namespace MkbVpn.Tests;

/// <summary>
/// The service's live paths (apply, undo, rollback, kick, reconcile, the firewall difference)
/// against an in-memory interface and firewall: no root, no kernel, no nft.
/// </summary>
public sealed class LiveServiceTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly InMemoryHost _host;
    private readonly ClientService _svc;

    public LiveServiceTests()
    {
        _host = new InMemoryHost(_time);
        _svc = new ClientService(new Paths(_dir.File("data")), _host.Host) { Actor = new Actor("alice-admin", Actor.Cli) };
        _svc.Init(ClientServiceTests.Options());
    }

    public void Dispose() => _dir.Dispose();

    private InMemoryDevice Device => _host.Device;

    private static AddRequest[] Names(params string[] names) => [.. names.Select(n => new AddRequest(n))];

    private Client Stored(string name) => _svc.Get(name).Client;

    private static PeerSpec Spec(Client c) => new(c.PublicKey, c.PresharedKey, [.. c.TunnelAddresses()]);

    /// <summary>The interface is up with these clients on it.</summary>
    private void UpWith(params string[] names)
    {
        if (names.Length > 0)
            _svc.Add(Names(names));
        _svc.Up();
    }

    private void AssertPeersAre(params string[] names)
    {
        var want = names.Select(Stored).ToDictionary(c => c.PublicKey);
        Assert.Equal(want.Keys.ToHashSet(), Device.Peers.Select(p => p.PublicKey).ToHashSet());
        foreach (var p in Device.Peers)
            Assert.True(Reconciler.Matches(Spec(want[p.PublicKey]), p), $"peer of {want[p.PublicKey].Name} differs from the store");
    }

    private AuditEntry LastAudit() => _svc.AuditLog(null, null).Items.OrderBy(e => e.Id).Last();

    // ---- the four verbs apply their per-peer difference -------------------

    [Fact]
    public void Add_applies_exactly_the_new_peers()
    {
        UpWith("alice");
        int before = Device.Applied.Count;

        var r = _svc.Add(Names("bob", "carol"));

        Assert.True(r.Live);
        var change = Assert.Single(Device.Applied.Skip(before));
        Assert.Equal([Stored("bob").PublicKey, Stored("carol").PublicKey],
            change.Peers.Select(p => Assert.IsType<PeerChange.Upsert>(p).PublicKey));
        Assert.Null(change.PrivateKey);
        Assert.Null(change.ListenPort);
        AssertPeersAre("alice", "bob", "carol");
    }

    [Fact]
    public void Remove_applies_one_removal_and_leaves_the_others_alone()
    {
        UpWith("alice", "bob");
        var bob = Stored("bob");
        int before = Device.Applied.Count;

        _svc.Remove(["bob"]);

        var change = Assert.Single(Device.Applied.Skip(before));
        Assert.Equal(bob.PublicKey, Assert.IsType<PeerChange.Remove>(Assert.Single(change.Peers)).PublicKey);
        AssertPeersAre("alice");
    }

    [Fact]
    public void Block_removes_the_peer_and_reenable_puts_it_back_without_a_kick_when_not_seen()
    {
        UpWith("alice", "bob");
        int before = Device.Applied.Count;

        _svc.Block(["bob"]);
        AssertPeersAre("alice");
        Assert.IsType<PeerChange.Remove>(Assert.Single(Assert.Single(Device.Applied.Skip(before)).Peers));

        _svc.Reenable(["bob"]);
        AssertPeersAre("alice", "bob");
        var reenable = Device.Applied.Last();
        Assert.IsType<PeerChange.Upsert>(Assert.Single(reenable.Peers));
        Assert.Empty(Device.Kicks);
    }

    [Fact]
    public void Block_then_reenable_kicks_a_recently_seen_client_at_its_last_endpoint()
    {
        UpWith("alice", "bob");
        var bob = Stored("bob");
        Device.Seen(bob.PublicKey, "198.51.100.7:40000", _time.GetUtcNow() - TimeSpan.FromMinutes(1));

        _svc.Block(["bob"]);
        _time.Advance(TimeSpan.FromMinutes(5));
        _svc.Reenable(["bob"]);

        Assert.Equal([(bob.PublicKey, "198.51.100.7:40000")], Device.Kicks);
        Assert.Contains(Device.Applied.Last().Peers, p => p is PeerChange.Kick k && k.PublicKey.Equals(bob.PublicKey));
        AssertPeersAre("alice", "bob");
    }

    [Fact]
    public void Reenable_does_not_kick_a_client_last_seen_outside_the_recovery_window()
    {
        UpWith("bob");
        var bob = Stored("bob");
        Device.Seen(bob.PublicKey, "198.51.100.7:40000", _time.GetUtcNow());
        _svc.Block(["bob"]);
        _time.Advance(ClientService.RecoveryWindow + TimeSpan.FromMinutes(1));

        _svc.Reenable(["bob"]);

        Assert.Empty(Device.Kicks);
        AssertPeersAre("bob");
    }

    [Fact]
    public void Without_root_a_verb_on_a_live_interface_is_refused_and_changes_nothing()
    {
        UpWith("alice");
        int applied = Device.Applied.Count;
        _host.Privileges.IsRoot = false;

        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob")));

        Assert.Equal(ExitCodes.NeedsRoot, e.ExitCode);
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.Equal(applied, Device.Applied.Count);
    }

    [Fact]
    public void A_verb_changes_the_interface_and_the_firewall_only_while_it_holds_the_lock()
    {
        _svc.AddGroup("staff", null);
        _svc.Allow(new AllowRequest("group:staff", "198.51.100.10") { Port = "22", Protocol = "tcp" });
        UpWith("alice");
        _host.Events.All.Clear();

        _svc.Add([new AddRequest("bob") { Groups = ["staff"] }]);
        _svc.Remove(["bob"]);

        Assert.Equal(["lock", "apply", "apply-access", "unlock", "lock", "apply", "apply-access", "unlock"], _host.Events.All);
    }

    [Fact]
    public void A_lock_held_by_another_command_fails_the_verb_busy_and_changes_nothing()
    {
        UpWith("alice");
        int applied = Device.Applied.Count;
        int audited = _svc.AuditLog(null, null).Total;
        _host.Lock.HeldElsewhere = true;

        var e = Assert.Throws<LockBusyException>(() => _svc.Add(Names("bob")));

        Assert.Equal(ExitCodes.Database, e.ExitCode);
        _host.Lock.HeldElsewhere = false;
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.Equal(applied, Device.Applied.Count);
        Assert.Equal(audited, _svc.AuditLog(null, null).Total);
    }

    // ---- a device that fails: rollback and undo ----------------------------

    [Fact]
    public void A_device_that_refuses_an_add_fails_the_verb_with_exit_1_and_leaves_the_store_unchanged()
    {
        UpWith("alice");
        Device.FailNextApply = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob")));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.Contains("the store is unchanged", e.Message);
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.False(File.Exists(_svc.Paths.ClientConfig("bob")));
        Assert.Empty(Directory.GetFiles(_svc.Paths.ClientsDir, "*.tmp"));
        AssertPeersAre("alice");
    }

    [Fact]
    public void A_device_that_fails_after_applying_an_add_gets_the_change_undone()
    {
        UpWith("alice");
        Device.FailNextApplyAfterApplying = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob")));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        // The add reached the interface, then the undo (a removal) was applied.
        var undo = Device.Applied.Last();
        Assert.IsType<PeerChange.Remove>(Assert.Single(undo.Peers));
        AssertPeersAre("alice");
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
    }

    [Fact]
    public void A_device_that_fails_after_applying_a_removal_gets_the_peer_back_and_the_client_stays()
    {
        UpWith("alice", "bob");
        Device.FailNextApplyAfterApplying = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Remove(["bob"]));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        AssertPeersAre("alice", "bob");
        Assert.Equal(["alice", "bob"], _svc.List().Select(c => c.Name).Order());
        Assert.True(File.Exists(_svc.Paths.ClientConfig("bob")));
    }

    [Fact]
    public void A_device_that_fails_a_block_leaves_the_client_enabled_and_on_the_interface()
    {
        UpWith("bob");
        Device.FailNextApplyAfterApplying = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Block(["bob"]));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.True(Stored("bob").Enabled);
        AssertPeersAre("bob");
    }

    [Fact]
    public void A_device_that_fails_a_reenable_after_applying_takes_the_peer_off_again_and_the_client_stays_blocked()
    {
        UpWith("alice", "bob");
        _svc.Block(["bob"]);
        Device.FailNextApplyAfterApplying = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Reenable(["bob"]));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.False(Stored("bob").Enabled);
        AssertPeersAre("alice");
    }

    [Fact]
    public void Up_whose_new_interface_fails_deletes_it_and_records_nothing()
    {
        _svc.Add(Names("alice"));
        _host.Devices.NextCreatedFails = true;

        Assert.Throws<IOException>(() => _svc.Up());

        Assert.Empty(_host.Devices.Running);
        Assert.Contains("delete-link", _host.Events.All);
        Assert.DoesNotContain("install-rules", _host.Events.All);
        Assert.False(_host.Network.Forwarding);
        Assert.Null(_svc.DataPlane());

        // The next 'up' starts from scratch and succeeds.
        Assert.True(_svc.Up().Created);
        AssertPeersAre("alice");
    }

    [Fact]
    public void A_failed_apply_is_in_the_audit_log_with_its_outcome()
    {
        UpWith("alice");
        Device.FailNextApply = true;

        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob")));

        var entry = LastAudit();
        Assert.Equal("add", entry.Action);
        Assert.Equal("bob", entry.Target);
        Assert.Equal("alice-admin", entry.Actor);
        Assert.StartsWith("failed: ", entry.Outcome);
        Assert.Equal("failed: " + e.Message, entry.Outcome);
    }

    /// <summary>nft missing (Sys.Run) or failing (Sys.Check, after ApplyAccess fell back to loading the whole table).</summary>
    public static TheoryData<string> FirewallFailures => ["missing", "failing"];

    private static Exception FirewallFailure(string kind) => kind == "missing"
        ? new UserInputException("'nft' is not installed (apt-get install nftables)", ExitCodes.MissingTool)
        : new IOException("nft (installing the mkb_vpn table): Error: Could not process rule: No such file or directory");

    [Theory]
    [MemberData(nameof(FirewallFailures))]
    public void A_firewall_that_refuses_an_add_undoes_the_peers_and_leaves_the_store_unchanged(string failure)
    {
        UpWith("alice");
        var table = _host.Network.Table;
        _host.Network.NextAccessFailure = FirewallFailure(failure);

        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob")));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.Contains("firewall", e.Message);
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.False(File.Exists(_svc.Paths.ClientConfig("bob")));
        AssertPeersAre("alice");
        Assert.Same(table, _host.Network.Table);
        Assert.StartsWith("failed: ", LastAudit().Outcome);
    }

    // ---- a commit that fails: the live change is undone -----------------------

    /// <summary>
    /// Makes the next commit that <paramref name="writes"/> (e.g. "INSERT ON clients") fail at COMMIT
    /// time, after the live change was applied: a trigger adds a row that breaks a deferred foreign
    /// key, which SQLite checks only when the transaction commits.
    /// </summary>
    private void FailCommitsThat(string writes)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _svc.Paths.Database, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"""
            CREATE TABLE test_commit_breaker (
                client_id INTEGER REFERENCES clients (id) DEFERRABLE INITIALLY DEFERRED);
            CREATE TRIGGER test_commit_breaker AFTER {writes} BEGIN
                INSERT INTO test_commit_breaker VALUES (-1);
            END;
            """;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public void A_commit_that_fails_after_an_add_undoes_the_peers_and_the_firewall()
    {
        _svc.AddGroup("staff", null);
        _svc.Allow(new AllowRequest("group:staff", "198.51.100.10") { Port = "22", Protocol = "tcp" });
        UpWith("alice");
        var table = _host.Network.Table;
        _host.Network.Diffs.Clear();
        FailCommitsThat("INSERT ON clients");

        var e = Assert.Throws<UserInputException>(() => _svc.Add([new AddRequest("bob") { Groups = ["staff"] }]));

        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("FOREIGN KEY", e.Message);
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.False(File.Exists(_svc.Paths.ClientConfig("bob")));
        Assert.Empty(Directory.GetFiles(_svc.Paths.ClientsDir, "*.tmp"));
        // Applied, then undone: bob's peer added and removed, his map elements added and deleted.
        AssertPeersAre("alice");
        Assert.IsType<PeerChange.Remove>(Assert.Single(Device.Applied.Last().Peers));
        Assert.Equal(2, _host.Network.Diffs.Count);
        Assert.StartsWith("add element", _host.Network.Diffs[0]);
        Assert.StartsWith("delete element", _host.Network.Diffs[1]);
        Assert.Equal(NetworkSetup.RenderRules(_svc.GetServer(), table!), NetworkSetup.RenderRules(_svc.GetServer(), _host.Network.Table!));
        var entry = LastAudit();
        Assert.Equal("add", entry.Action);
        Assert.Equal("failed: " + e.Message, entry.Outcome);
    }

    [Fact]
    public void A_commit_that_fails_after_a_block_puts_the_peer_back()
    {
        UpWith("alice", "bob");
        FailCommitsThat("UPDATE ON clients");

        var e = Assert.Throws<UserInputException>(() => _svc.Block(["bob"]));

        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.True(Stored("bob").Enabled);
        AssertPeersAre("alice", "bob");
        Assert.IsType<PeerChange.Upsert>(Assert.Single(Device.Applied.Last().Peers));
    }

    // ---- up: reconcile, recover, kick ----------------------------------------

    [Fact]
    public void A_table_that_refuses_a_difference_is_reloaded_with_everyone_not_only_the_changed_client()
    {
        UpWith("alice", "bob");
        _svc.Revoke(1);   // "everyone -> the internal networks": without it, each client's own rule is an element
        // Each client has a rule of its own, so each has elements in the table's maps.
        foreach (var name in new[] { "alice", "bob", "dave" })
        {
            if (name == "dave")
                _svc.Add(Names("dave"));
            _svc.Allow(new AllowRequest($"client:{name}", "198.51.100.10") { Port = "443", Protocol = "tcp" });
        }

        _svc.Add(Names("carol"));
        int installs = _host.Network.Installs.Count;
        _host.Network.NextDiffRefused = true;   // the table was edited by hand: nft refuses the next difference
        _svc.Allow(new AllowRequest("client:carol", "198.51.100.10") { Port = "443", Protocol = "tcp" });
        Assert.Equal(installs + 1, _host.Network.Installs.Count);
        string loaded = _host.Network.Installs[^1];
        foreach (var name in new[] { "alice", "bob", "dave", "carol" })
            Assert.Contains(Stored(name).Address4!.ToString() + " : jump", loaded);

        _host.Network.NextDiffRefused = true;
        string daveAddress = Stored("dave").Address4!.ToString();
        _svc.Remove(["dave"]);
        Assert.Equal(installs + 2, _host.Network.Installs.Count);
        string after = _host.Network.Installs[^1];
        Assert.NotEqual(loaded, after);
        Assert.Contains(Stored("alice").Address4!.ToString() + " : jump", after);
        Assert.Contains(Stored("bob").Address4!.ToString() + " : jump", after);
        Assert.DoesNotContain(daveAddress + " : jump", after);
    }

    [Fact]
    public void Up_creates_the_interface_with_every_enabled_client_and_the_table()
    {
        _svc.Add(Names("alice", "bob", "carol"));
        _svc.Block(["carol"]);
        _host.Events.All.Clear();

        var r = _svc.Up();

        Assert.True(r.Created);
        Assert.Equal(2, r.PeersAdded);
        AssertPeersAre("alice", "bob");
        Assert.Equal(_svc.GetServer().ListenPort, Device.ListenPort);
        Assert.Equal(_svc.GetServer().PrivateKey, Device.PrivateKey);
        Assert.NotNull(_host.Network.Table);
        Assert.True(_host.Network.Forwarding);
        Assert.Equal(["lock", "create", "apply", "configure-link", "install-rules", "unlock"], _host.Events.All);
    }

    [Fact]
    public void Up_on_a_running_interface_adds_the_missing_removes_strays_fixes_drift_and_leaves_matching_peers_alone()
    {
        UpWith("alice", "bob", "carol");
        var alice = Stored("alice");
        var bob = Stored("bob");
        var carol = Stored("carol");
        Device.Apply(new DeviceChanges
        {
            Peers = [
                new PeerChange.Remove(bob.PublicKey),
                new PeerChange.Upsert(Spec(carol) with { AllowedIps = [IPNetwork.Parse("203.0.113.200/32")] }),
            ],
        });
        var stray = Fixtures.Key(7);
        Device.AddStray(new PeerState { PublicKey = stray, AllowedIps = [IPNetwork.Parse("203.0.113.250/32")] });
        int before = Device.Applied.Count;

        var r = _svc.Up();

        Assert.False(r.Created);
        Assert.Equal((1, 1, 1), (r.PeersAdded, r.PeersRemoved, r.PeersUpdated));
        AssertPeersAre("alice", "bob", "carol");
        var change = Assert.Single(Device.Applied.Skip(before));
        Assert.DoesNotContain(change.Peers, p => p.PublicKey.Equals(alice.PublicKey));
        Assert.Equal(stray, Assert.Single(change.Peers.OfType<PeerChange.Remove>()).PublicKey);
    }

    [Fact]
    public void Up_after_the_interface_was_lost_restores_it_and_kicks_recent_clients_once_the_rules_are_in_place()
    {
        UpWith("alice", "bob");
        var alice = Stored("alice");
        var bob = Stored("bob");
        Device.Seen(alice.PublicKey, "198.51.100.20:51000", _time.GetUtcNow() - TimeSpan.FromMinutes(2));
        Device.Seen(bob.PublicKey, "198.51.100.21:51000", _time.GetUtcNow() - ClientService.RecoveryWindow - TimeSpan.FromMinutes(1));
        Assert.Equal(2, _svc.Snapshot());
        _host.Devices.Lose(Fixtures.Interface);
        Assert.Equal(-1, _svc.Snapshot());
        _host.Events.All.Clear();

        var r = _svc.Up();

        Assert.True(r.Created);
        Assert.Equal(1, r.Kicked);
        Assert.Equal([(alice.PublicKey, "198.51.100.20:51000")], Device.Kicks);
        AssertPeersAre("alice", "bob");
        Assert.Equal(["lock", "create", "apply", "configure-link", "install-rules", "kick", "unlock"], _host.Events.All);
    }

    /// <summary>Runs the supervisor (no period: round after round) until <paramref name="done"/> says so from its log; at most 20 look-ups of the interface.</summary>
    private (bool Stopped, List<string> Log) Supervise(Func<string, bool> done, TimeSpan? driftCheckEvery = null)
    {
        using var stop = new CancellationTokenSource();
        var log = new List<string>();
        int finds = 0;
        _host.Devices.Finding = () =>
        {
            if (++finds > 20)
                stop.Cancel();
        };
        bool stopped = _svc.Supervise(TimeSpan.Zero, stop.Token, msg =>
        {
            log.Add(msg);
            if (done(msg))
                stop.Cancel();
        }, driftCheckEvery: driftCheckEvery);
        _host.Devices.Finding = null;
        return (stopped, log);
    }

    [Fact]
    public void The_supervisor_restores_a_lost_interface_from_the_store_and_kicks_recent_clients()
    {
        UpWith("alice", "bob");
        var alice = Stored("alice");
        Device.Seen(alice.PublicKey, "198.51.100.40:51000", _time.GetUtcNow() - TimeSpan.FromMinutes(1));
        _svc.Snapshot();
        _host.Devices.Lose(Fixtures.Interface);

        var (stopped, log) = Supervise(m => m.StartsWith("restored", StringComparison.Ordinal));

        Assert.False(stopped);
        Assert.Equal(["interface lost: restoring it from the store", $"restored {Fixtures.Interface}: 2 peers, 1 recent clients contacted"], log);
        AssertPeersAre("alice", "bob");
        Assert.Equal([(alice.PublicKey, "198.51.100.40:51000")], Device.Kicks);
    }

    [Fact]
    public void The_supervisors_drift_check_puts_back_peers_changed_by_hand()
    {
        UpWith("alice", "bob");
        var alice = Stored("alice");
        // By hand ('wg set'): alice's peer removed, a stray one added; the store did not change.
        Device.Apply(new DeviceChanges
        {
            Peers = [new PeerChange.Remove(alice.PublicKey), new PeerChange.Upsert(new PeerSpec(Fixtures.Key(0x5e), Fixtures.Key(0x11), [System.Net.IPNetwork.Parse("fd00:5e::1/128")]))],
        });

        var (stopped, log) = Supervise(m => m.StartsWith("drift check", StringComparison.Ordinal), driftCheckEvery: TimeSpan.Zero);

        Assert.False(stopped);
        Assert.Equal([$"drift check: {Fixtures.Interface} differed from the store (changed on this host?): 1 peer(s) put back, 1 removed, 0 updated; firewall reloaded"], log);
        AssertPeersAre("alice", "bob");
    }

    [Fact]
    public void The_supervisor_stops_after_down_instead_of_restoring()
    {
        UpWith("alice");
        _svc.Down();

        var (stopped, log) = Supervise(_ => false);

        Assert.True(stopped);
        Assert.Equal(["stopping: the interface was taken down with 'mkb-vpn down'"], log);
        Assert.Empty(_host.Devices.Running);
    }

    [Fact]
    public void The_supervisor_blocks_a_client_whose_expiry_passed_and_takes_it_off_the_interface()
    {
        _svc.Add([new AddRequest("alice"), new AddRequest("bob") { Expires = "1d" }]);
        _svc.Up();
        _time.Advance(TimeSpan.FromDays(2));

        var (_, log) = Supervise(m => m.StartsWith("blocked", StringComparison.Ordinal));

        Assert.Equal(["blocked bob: its expiry has passed"], log);
        Assert.False(Stored("bob").Enabled);
        AssertPeersAre("alice");
        Assert.Equal("expire", LastAudit().Action);
    }

    [Fact]
    public void Init_change_of_the_port_reaches_the_live_interface_and_a_failing_one_keeps_the_old_port()
    {
        UpWith("alice");
        Device.FailNextApply = true;

        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(ClientServiceTests.Options() with { Change = true, Port = 51999 }));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.Equal(51820, _svc.GetServer().ListenPort);
        Assert.Equal(51820, Device.ListenPort);

        _svc.Init(ClientServiceTests.Options() with { Change = true, Port = 51999 });

        Assert.Equal(51999, _svc.GetServer().ListenPort);
        Assert.Equal(51999, Device.ListenPort);
    }

    [Fact]
    public void Up_refuses_a_link_of_that_name_that_is_not_wireguard()
    {
        _host.Network.OtherLinks.Add(Fixtures.Interface);

        var e = Assert.Throws<UserInputException>(() => _svc.Up());

        Assert.Contains("is not WireGuard", e.Message);
        Assert.Empty(_host.Devices.Running);
    }

    [Fact]
    public void Down_removes_the_interface_and_the_table_and_restores_forwarding()
    {
        UpWith("alice");

        Assert.True(_svc.Down());

        Assert.Empty(_host.Devices.Running);
        Assert.Null(_host.Network.Table);
        Assert.False(_host.Network.Forwarding);
        Assert.Null(_svc.DataPlane());
    }

    [Fact]
    public void Status_reads_the_live_interface_and_records_endpoints()
    {
        UpWith("alice", "bob");
        var alice = Stored("alice");
        Device.Seen(alice.PublicKey, "198.51.100.30:1234", _time.GetUtcNow() - TimeSpan.FromMinutes(1));

        var report = _svc.Status();

        Assert.True(report.InterfaceUp);
        Assert.True(report.Clients.Single(c => c.Client.Name == "alice").Online);
        Assert.False(report.Clients.Single(c => c.Client.Name == "bob").Online);
        Assert.Equal("198.51.100.30:1234", Stored("alice").LastEndpoint);
    }

    // ---- access rules: exactly the nft difference ----------------------------

    [Fact]
    public void Allow_and_revoke_send_exactly_their_difference_and_do_not_touch_the_peers()
    {
        UpWith("alice");
        int applied = Device.Applied.Count;

        var rule = _svc.Allow(new AllowRequest("everyone", "198.51.100.10") { Port = "443", Protocol = "tcp" }).Rule;
        _svc.Revoke(rule.Id);

        Assert.Equal(
            [
                // The rule joins the everyone chain (refilled in one transaction); nothing else changes.
                "flush chain inet mkb_vpn everyone\n" +
                "add rule inet mkb_vpn everyone ip daddr @internal4 accept comment \"rule 1\"\n" +
                "add rule inet mkb_vpn everyone ip6 daddr @internal6 accept comment \"rule 1\"\n" +
                "add rule inet mkb_vpn everyone ip daddr 203.0.113.1 accept comment \"rule 2\"\n" +
                "add rule inet mkb_vpn everyone ip6 daddr fd00:1234:5678::1 accept comment \"rule 2\"\n" +
                "add rule inet mkb_vpn everyone ip daddr 198.51.100.10 tcp dport 443 accept comment \"rule 3\"\n" +
                "add rule inet mkb_vpn everyone ip daddr 203.0.113.1 meta l4proto { 6, 17 } th dport 53 accept comment \"dns\"\n",
                // Revoked: the chain as it was.
                "flush chain inet mkb_vpn everyone\n" +
                "add rule inet mkb_vpn everyone ip daddr @internal4 accept comment \"rule 1\"\n" +
                "add rule inet mkb_vpn everyone ip6 daddr @internal6 accept comment \"rule 1\"\n" +
                "add rule inet mkb_vpn everyone ip daddr 203.0.113.1 accept comment \"rule 2\"\n" +
                "add rule inet mkb_vpn everyone ip6 daddr fd00:1234:5678::1 accept comment \"rule 2\"\n" +
                "add rule inet mkb_vpn everyone ip daddr 203.0.113.1 meta l4proto { 6, 17 } th dport 53 accept comment \"dns\"\n",
            ],
            _host.Network.Diffs);
        Assert.Equal(applied, Device.Applied.Count);
    }

    [Fact]
    public void Set_group_moves_only_that_clients_map_elements()
    {
        _svc.AddGroup("staff", null);
        _svc.Allow(new AllowRequest("group:staff", "198.51.100.10") { Port = "22", Protocol = "tcp" });
        UpWith("alice", "bob");
        int applied = Device.Applied.Count;
        _host.Network.Diffs.Clear();

        _svc.Set(new SetRequest("bob") { Groups = ["staff"] });

        // bob's addresses now jump to the group's chain; no chain and no other client is touched.
        Assert.Equal(
            [
                "add element inet mkb_vpn clients4 { 203.0.113.3 : jump g1 }\n" +
                "add element inet mkb_vpn clients6 { fd00:1234:5678::3 : jump g1 }\n",
            ],
            _host.Network.Diffs);
        Assert.Equal(applied, Device.Applied.Count);
    }

    [Theory]
    [MemberData(nameof(FirewallFailures))]
    public void A_firewall_that_refuses_a_rule_leaves_the_store_and_the_interface_unchanged(string failure)
    {
        UpWith("alice");
        var rules = _svc.ListRules().Select(r => r.ToString()).ToList();
        var table = _host.Network.Table;
        int applied = Device.Applied.Count;
        _host.Network.NextAccessFailure = FirewallFailure(failure);

        var e = Assert.Throws<UserInputException>(() => _svc.Allow(new AllowRequest("everyone", "198.51.100.10") { Port = "443", Protocol = "tcp" }));

        Assert.Equal(ExitCodes.Failure, e.ExitCode);
        Assert.Equal(rules, _svc.ListRules().Select(r => r.ToString()));
        Assert.Same(table, _host.Network.Table);
        Assert.Equal(applied, Device.Applied.Count);
        Assert.DoesNotContain(_host.Network.Diffs, d => d.Contains("198.51.100.10", StringComparison.Ordinal));
        var entry = LastAudit();
        Assert.Equal("access allow", entry.Action);
        Assert.StartsWith("failed: ", entry.Outcome);
    }
}
