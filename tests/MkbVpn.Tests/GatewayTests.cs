using System.Diagnostics;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Gateways;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>Gateways (migration 7, the gateway verbs, add/set/show --gateway) on both backends; following the registry on PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class GatewayTests(PostgresServer pg)
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static ClientService Service(TestStore db, string data = "data")
    {
        var host = new InMemoryHost(new ManualTime(Start));
        return new ClientService(db.Paths(data), host.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
    }

    private static GatewayRequest Berlin => new("berlin") { Endpoint = "vpn-berlin.example.com:51821", InternalNetworks = ["198.51.100.128/25"], Interface = "mkbunitb" };

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Init_makes_the_server_the_gateway_main_with_its_key(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        var server = svc.Init(ClientServiceTests.Options()).Server;
        var g = Assert.Single(svc.ListGateways()).Gateway;
        Assert.Equal((Gateway.MainName, server.Interface, server.Endpoint), (g.Name, g.Interface, g.Endpoint));
        Assert.True(g.PublicKey.Equals(server.PublicKey));
        svc.Add([new AddRequest("alice")]);
        Assert.Equal(svc.ConfigText("alice"), svc.ConfigText("alice", "main"));

        // init --change moves the main gateway along with the server.
        svc.Init(ClientServiceTests.Options() with { Endpoint = "vpn2.example.com:443", Change = true });
        Assert.Equal("vpn2.example.com:443", Assert.Single(svc.ListGateways()).Gateway.Endpoint);
        Assert.Equal(svc.ConfigText("alice"), svc.ConfigText("alice", "MAIN"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Gateway_add_list_remove_with_typed_errors(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        var b = svc.AddGateway(Berlin);
        Assert.Equal(("vpn-berlin.example.com:51821", 51820, "mkbunitb"), (b.Endpoint, b.ListenPort, b.Interface));
        Assert.Equal(["berlin", "main"], svc.ListGateways().Select(v => v.Gateway.Name));
        Assert.False(b.PublicKey.Equals(svc.GetServer().PublicKey));

        var dup = Assert.Throws<FieldException>(() => svc.AddGateway(Berlin with { Name = "BERLIN" }));
        Assert.Equal(("name", ExitCodes.Conflict), (dup.Field, dup.ExitCode));
        Assert.Equal("endpoint", Assert.Throws<FieldException>(() => svc.AddGateway(new GatewayRequest("x"))).Field);
        Assert.Equal("endpoint", Assert.Throws<FieldException>(() => svc.AddGateway(new GatewayRequest("x") { Endpoint = "bad host:99999" })).Field);
        Assert.Equal("internal-network", Assert.Throws<FieldException>(() => svc.AddGateway(Berlin with { Name = "x", InternalNetworks = ["300.1.2.0/24"] })).Field);
        Assert.Equal("listen-port", Assert.Throws<FieldException>(() => svc.AddGateway(Berlin with { Name = "x", ListenPort = 0 })).Field);
        Assert.Equal("name", Assert.Throws<FieldException>(() => svc.AddGateway(Berlin with { Name = "all" })).Field);
        Assert.Equal("name", Assert.Throws<FieldException>(() => svc.AddGateway(Berlin with { Name = "no spaces" })).Field);
        Assert.Equal(ExitCodes.NotFound, Assert.Throws<FieldException>(() => svc.RemoveGateway("nowhere", force: false)).ExitCode);

        svc.RemoveGateway("berlin", force: false);
        var last = Assert.Throws<UserInputException>(() => svc.RemoveGateway("main", force: false));
        Assert.Equal(ExitCodes.Conflict, last.ExitCode);
        Assert.Contains("last gateway", last.Message, StringComparison.Ordinal);
        Assert.Equal(["gateway add", "gateway remove"], svc.AuditLog(null, null).Items.Where(e => e.Action.StartsWith("gateway", StringComparison.Ordinal)).OrderBy(e => e.Id).Select(e => e.Action));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void A_client_gets_one_config_per_gateway_that_serves_it(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        var b = svc.AddGateway(Berlin);
        svc.Add([new AddRequest("alice") { Gateways = ["berlin"] }, new AddRequest("bob")]);

        string alice = svc.ConfigText("alice", "berlin");
        Assert.Contains($"PublicKey = {b.PublicKey.ToBase64()}", alice, StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51821", alice, StringComparison.Ordinal);
        Assert.Contains("198.51.100.128/25", alice, StringComparison.Ordinal);
        Assert.DoesNotContain("198.51.100.0/24", alice, StringComparison.Ordinal);
        var notServed = Assert.Throws<FieldException>(() => svc.ConfigText("alice", "main"));
        Assert.Equal(("gateway", ExitCodes.NotFound), (notServed.Field, notServed.ExitCode));
        Assert.Equal(["berlin"], svc.GatewaysOf("alice"));
        // bob: served by every gateway, one config each.
        Assert.Empty(svc.GatewaysOf("bob"));
        Assert.Contains("Endpoint = vpn.example.com:51820", svc.ConfigText("bob", "main"), StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51821", svc.ConfigText("bob", "berlin"), StringComparison.Ordinal);

        svc.Set(new SetRequest("alice") { Gateways = ["all"] });
        Assert.Empty(svc.GatewaysOf("alice"));
        Assert.Contains("Endpoint = vpn.example.com:51820", svc.ConfigText("alice", "main"), StringComparison.Ordinal);
        svc.Set(new SetRequest("alice") { Gateways = ["main,BERLIN"] });
        Assert.Equal(["berlin", "main"], svc.GatewaysOf("alice"));

        var unknown = Assert.Throws<FieldException>(() => svc.Add([new AddRequest("carol") { Gateways = ["paris"] }]));
        Assert.Equal(("gateway", ExitCodes.NotFound), (unknown.Field, unknown.ExitCode));
        Assert.Throws<UserInputException>(() => svc.Get("carol"));   // nothing added
        Assert.Equal("gateway", Assert.Throws<FieldException>(() => svc.Set(new SetRequest("alice") { Gateways = ["all", "main"] })).Field);

        // Removing a gateway leaves its clients; those served only by it are served by all again.
        svc.Set(new SetRequest("alice") { Gateways = ["berlin"] });
        svc.RemoveGateway("berlin", force: false);
        Assert.Empty(svc.GatewaysOf("alice"));
        Assert.Equal(["alice", "bob"], svc.List().Select(c => c.Name));
    }

    /// <summary>The public keys of the peers on the registry host's own interface.</summary>
    private static HashSet<WireGuardKey> PeersOf(InMemoryHost host) => [.. host.Device.Peers.Select(p => p.PublicKey)];

    /// <summary>
    /// The registry host (main's interface in memory) with alice (every gateway) and dave (named for main while it was the
    /// only gateway), berlin, and carol served by berlin only with a rule of her own (an element in a table that holds her);
    /// <paramref name="upFirst"/>: the interface was up before berlin and carol were added, else it comes up after.
    /// </summary>
    private static (ClientService Svc, InMemoryHost Host, Dictionary<string, WireGuardKey> Key, string Carol4) RegistryWithCarolOnBerlin(
        TestStore db, bool upFirst, bool blockCarol = false)
    {
        var host = new InMemoryHost(new ManualTime(Start));
        var svc = new ClientService(db.Paths("data"), host.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
        svc.Init(ClientServiceTests.Options());
        svc.Add([new AddRequest("alice"), new AddRequest("dave") { Gateways = ["main"] }]);
        if (upFirst)
            svc.Up();
        svc.AddGateway(Berlin);
        svc.Add([new AddRequest("carol") { Gateways = ["berlin"] }]);
        svc.Allow(new AllowRequest("client:carol", "server"));
        if (blockCarol)
            svc.Block(["carol"]);
        if (!upFirst)
            svc.Up();
        var clients = svc.List();
        return (svc, host, clients.ToDictionary(c => c.Name, c => c.PublicKey), clients.Single(c => c.Name == "carol").Address4!.ToString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void The_registry_hosts_interface_gets_and_loses_a_client_as_set_gateway_moves_it_on_and_off_main(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (svc, host, key, carol4) = RegistryWithCarolOnBerlin(db, upFirst: true);
        bool carolInTable() => host.Network.Table!.Map4.ContainsKey(carol4);

        // add --gateway berlin: not a peer of main's interface, nor in its firewall.
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
        Assert.False(carolInTable());

        // set --gateway all: on main at once, one peer added, nobody else touched.
        int applied = host.Device.Applied.Count;
        svc.Set(new SetRequest("carol") { Gateways = ["all"] });
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"], key["carol"]]));
        Assert.True(carolInTable());
        var on = Assert.Single(host.Device.Applied.Skip(applied));
        Assert.Equal(key["carol"], Assert.IsType<PeerChange.Upsert>(Assert.Single(on.Peers)).PublicKey);

        // set --gateway berlin: off main at once, only her peer removed.
        applied = host.Device.Applied.Count;
        svc.Set(new SetRequest("carol") { Gateways = ["berlin"] });
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
        Assert.False(carolInTable());
        var off = Assert.Single(host.Device.Applied.Skip(applied));
        Assert.Equal(key["carol"], Assert.IsType<PeerChange.Remove>(Assert.Single(off.Peers)).PublicKey);

        // set --gateway main,berlin: on main again; a change that leaves her gateways alone does not touch the peers.
        svc.Set(new SetRequest("carol") { Gateways = ["main,berlin"] });
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"], key["carol"]]));
        svc.Set(new SetRequest("carol") { Gateways = ["berlin"] });
        applied = host.Device.Applied.Count;
        svc.Set(new SetRequest("carol") { Keepalive = "25" });
        Assert.Equal(applied, host.Device.Applied.Count);

        // Removing a client main does not serve leaves main's interface alone.
        svc.Add([new AddRequest("erin") { Gateways = ["berlin"] }]);
        Assert.Equal(applied, host.Device.Applied.Count);
        svc.Remove(["erin"]);
        Assert.Equal(applied, host.Device.Applied.Count);

        // Her only gateway removed: served by every gateway, main's included, at once.
        svc.RemoveGateway("berlin", force: false);
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"], key["carol"]]));
        Assert.True(carolInTable());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Up_on_the_registry_host_brings_up_and_reconciles_only_the_clients_of_its_own_gateway(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (svc, host, key, carol4) = RegistryWithCarolOnBerlin(db, upFirst: false);
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
        Assert.False(host.Network.Table!.Map4.ContainsKey(carol4));

        // A reconcile adds nothing, and takes off a stray peer of hers (left by an older version).
        Assert.Equal(0, svc.Up().PeersAdded);
        host.Device.AddStray(new PeerState { PublicKey = key["carol"] });
        var r = svc.Up();
        Assert.Equal((0, 1, 0), (r.PeersAdded, r.PeersRemoved, r.PeersUpdated));
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
        Assert.False(host.Network.Table!.Map4.ContainsKey(carol4));

        // The local status shows her as berlin's, not as offline here; main's clients as before.
        var status = svc.Status().Clients.ToDictionary(x => x.Client.Name, x => x.Elsewhere);
        Assert.Equal(["berlin"], status["carol"]);
        Assert.Null(status["alice"]);
        Assert.Null(status["dave"]);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Block_and_reenable_on_the_registry_host_do_not_put_a_client_of_other_gateways_on_its_interface(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (svc, host, key, _) = RegistryWithCarolOnBerlin(db, upFirst: false, blockCarol: true);
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));

        svc.Reenable(["carol", "alice"]);
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
        svc.Block(["carol", "alice"]);
        Assert.True(PeersOf(host).SetEquals([key["dave"]]));
        svc.Reenable(["carol", "alice"]);
        Assert.True(PeersOf(host).SetEquals([key["alice"], key["dave"]]));
    }

    /// <summary>
    /// Berlin's host: the same registry, and an interface of the registry server's name (both are wg0 by default) that
    /// 'up --gateway berlin' made: berlin's key, berlin's peers. The registry's main host runs main's interface.
    /// </summary>
    private static (ClientService Here, InMemoryHost BerlinHost, InMemoryDevice Wg, List<string> Notes, ClientService Admin, InMemoryHost MainHost, Gateway Berlin)
        BerlinsHost(TestStore db)
    {
        var mainHost = new InMemoryHost(new ManualTime(Start));
        var admin = new ClientService(db.Paths("data"), mainHost.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
        admin.Init(ClientServiceTests.Options());
        admin.Up();
        var berlin = admin.AddGateway(Berlin with { Interface = Fixtures.Interface });
        admin.Add([new AddRequest("alice"), new AddRequest("carol") { Gateways = ["berlin"] }, new AddRequest("dave") { Gateways = ["main"] }]);
        var berlinHost = new InMemoryHost(new ManualTime(Start));
        var wg = (InMemoryDevice)berlinHost.Devices.Create(Fixtures.Interface, null).Device;
        wg.Apply(new DeviceChanges { PrivateKey = berlin.PrivateKey, ListenPort = berlin.ListenPort });
        foreach (var c in admin.List().Where(c => c.Name is "alice" or "carol"))
            wg.AddStray(new PeerState { PublicKey = c.PublicKey });
        var notes = new List<string>();
        // The same data directory (a SQLite store is a file in it): only the host differs.
        var here = new ClientService(db.Paths("data"), berlinHost.Host) { Actor = new Actor("gw-admin", Actor.Cli), Note = notes.Add };
        return (here, berlinHost, wg, notes, admin, mainHost, berlin);
    }

    private const string BerlinNote = $"the interface {Fixtures.Interface} here is gateway 'berlin', not this registry's server: not changed here; " +
        "the change reaches it through 'up --gateway berlin'";

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void On_a_gateways_host_the_verbs_change_the_registry_and_leave_its_interface_of_the_servers_name_alone(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (here, berlinHost, wg, notes, admin, mainHost, berlin) = BerlinsHost(db);
        var key = admin.List().ToDictionary(c => c.Name, c => c.PublicKey);
        int applied = wg.Applied.Count;
        void Untouched(string verb)
        {
            Assert.True(wg.Peers.Select(p => p.PublicKey).ToHashSet().SetEquals([key["alice"], key["carol"]]), $"{verb}: berlin's peers changed");
            Assert.Equal(applied, wg.Applied.Count);
            Assert.True(berlin.PrivateKey.Equals(wg.PrivateKey), $"{verb}: berlin's key changed");
            Assert.Null(berlinHost.Network.Table);
            Assert.Empty(berlinHost.Network.Diffs);
            Assert.Equal(BerlinNote, Assert.Single(notes));
            notes.Clear();
        }

        // add --gateway main: in the registry, not on berlin's interface.
        var added = here.Add([new AddRequest("erin") { Gateways = ["main"] }]);
        Untouched("add");
        Assert.False(added.Live);
        Assert.True(added.OtherInterfaceHere);
        Assert.Equal(["main"], admin.GatewaysOf("erin"));
        key["erin"] = admin.Get("erin").Client.PublicKey;

        // block, reenable: the registry's flag changes; berlin's peers are its follower's to change.
        here.Block(["carol", "dave"]);
        Untouched("block");
        Assert.False(admin.Get("carol").Client.Enabled);
        Assert.False(admin.Get("dave").Client.Enabled);
        here.Reenable(["carol", "dave"]);
        Untouched("reenable");
        Assert.True(admin.Get("carol").Client.Enabled);

        // set (its gateways, a field of its own) and an access change.
        here.Set(new SetRequest("dave") { Gateways = ["all"] });
        Untouched("set --gateway");
        Assert.Empty(admin.GatewaysOf("dave"));
        here.Set(new SetRequest("carol") { Keepalive = "25" });
        Untouched("set --keepalive");
        Assert.Equal((int?)25, admin.Get("carol").Client.Keepalive);
        here.Allow(new AllowRequest("client:alice", "server"));
        Untouched("access allow");

        // remove: gone from the registry, berlin's peer is its follower's to take off.
        here.Remove(["alice"]);
        Untouched("remove");
        Assert.DoesNotContain("alice", admin.List().Select(c => c.Name));

        // 'up' and 'down' without --gateway would make it the server's interface or take it down: refused, nothing changed.
        var up = Assert.Throws<UserInputException>(() => here.Up());
        Assert.Equal(ExitCodes.Conflict, up.ExitCode);
        Assert.Contains("gateway 'berlin'", up.Message, StringComparison.Ordinal);
        Assert.Contains("up --foreground --gateway berlin", up.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Conflict, Assert.Throws<UserInputException>(() => here.Down()).ExitCode);
        Assert.Same(wg, berlinHost.Devices.Running[Fixtures.Interface]);
        Assert.Empty(notes);
        notes.Add(BerlinNote);   // (Untouched checks the note of a verb; 'up' and 'down' fail instead)
        Untouched("up, down");

        // The registry host (its interface holds the server's key): the same verbs change its interface, as always, without a note.
        var mainNotes = new List<string>();
        var onMain = new ClientService(db.Paths("data"), mainHost.Host) { Actor = new Actor("gw-admin", Actor.Cli), Note = mainNotes.Add };
        // What was changed on berlin's host reaches main's interface at its next reconcile (or through 'up --gateway main').
        Assert.True(mainHost.Device.Peers.Select(p => p.PublicKey).ToHashSet().SetEquals([key["alice"], key["dave"]]));
        onMain.Up();
        Assert.True(mainHost.Device.Peers.Select(p => p.PublicKey).ToHashSet().SetEquals([key["dave"], key["erin"]]));
        Assert.True(onMain.Add([new AddRequest("frank") { Gateways = ["main"] }]).Live);
        onMain.Block(["erin"]);
        Assert.True(mainHost.Device.Peers.Select(p => p.PublicKey).ToHashSet().SetEquals([key["dave"], admin.Get("frank").Client.PublicKey]));
        onMain.Remove(["frank"]);
        Assert.True(mainHost.Device.Peers.Select(p => p.PublicKey).ToHashSet().SetEquals([key["dave"]]));
        Assert.Empty(mainNotes);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void On_a_gateways_host_the_local_status_shows_no_live_figures_of_the_server_and_says_why(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (here, _, wg, _, admin, _, _) = BerlinsHost(db);
        var alice = admin.Get("alice").Client;
        wg.Seen(alice.PublicKey, "198.18.9.9:4000", Start);

        var report = here.Status();
        Assert.Null(report.Clients.Single(c => c.Client.Name == "alice").Live);
        Assert.False(report.InterfaceUp);
        Assert.Equal($"the interface {Fixtures.Interface} here is gateway 'berlin', not this registry's server: no live figures of the server here; " +
            "this gateway's are 'mkb-vpn status --gateway berlin'", report.OtherGatewayHere);
        Assert.All(report.Clients, c => Assert.Null(c.Live));
        Assert.False(report.Clients.Single(c => c.Client.Name == "alice").Online);
        // Berlin's endpoint for alice was not recorded as the server's.
        Assert.Null(admin.Get("alice").Client.LastEndpoint);
        Assert.False(here.Counts().InterfaceUp);

        // On the registry host: as before.
        var main = admin.Status();
        Assert.True(main.InterfaceUp);
        Assert.Null(main.OtherGatewayHere);
    }

    private static string FileOf(ClientService svc, string name) => File.ReadAllText(svc.Paths.ClientConfig(name));

    /// <summary>The config is berlin's: its key and endpoint (not main's), the registry's client fields.</summary>
    private static void AssertBerlin(string config, Gateway berlin, ServerSettings registry)
    {
        Assert.Contains($"PublicKey = {berlin.PublicKey.ToBase64()}", config, StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn-berlin.example.com:51821", config, StringComparison.Ordinal);
        Assert.DoesNotContain(registry.PublicKey.ToBase64(), config, StringComparison.Ordinal);
        Assert.DoesNotContain("Endpoint = vpn.example.com", config, StringComparison.Ordinal);
        Assert.DoesNotContain("Endpoint = vpn2.example.com", config, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void A_client_main_does_not_serve_has_its_file_show_and_qr_for_its_home_gateway_through_every_change(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        var b = svc.AddGateway(Berlin);
        svc.Add([new AddRequest("carol") { Gateways = ["berlin"] }, new AddRequest("bob")]);
        var registry = svc.GetServer();

        // add: carol's file, show and qr are berlin's config (its key, endpoint and internal networks).
        string carol = svc.ConfigText("carol", "berlin");
        AssertBerlin(carol, b, registry);
        Assert.Contains("AllowedIPs = 203.0.113.0/24, fd00:1234:5678::/64, 198.51.100.128/25", carol, StringComparison.Ordinal);
        Assert.Equal(carol, FileOf(svc, "carol"));
        Assert.Equal(carol, svc.ConfigText("carol"));
        Assert.Equal(carol, svc.QrConfigText("carol"));
        Assert.Equal(carol, svc.QrConfigText("carol", null));
        Assert.Equal("berlin", svc.HomeGateway("carol")?.Name);
        // bob (every gateway): the registry's settings, as on a single server.
        Assert.Null(svc.HomeGateway("bob"));
        Assert.Equal(svc.ConfigText("bob", "main"), FileOf(svc, "bob"));
        Assert.Equal(svc.ConfigText("bob", "main"), svc.ConfigText("bob"));
        Assert.Contains("Endpoint = vpn.example.com:51820", FileOf(svc, "bob"), StringComparison.Ordinal);

        // A server change (init --change: endpoint and DNS) rewrites the files: carol's stays berlin's, with the new DNS.
        svc.Init(ClientServiceTests.Options() with { Endpoint = "vpn2.example.com:443", Dns = ["203.0.113.53"], Change = true });
        registry = svc.GetServer();
        carol = FileOf(svc, "carol");
        AssertBerlin(carol, b, registry);
        Assert.Contains("DNS = 203.0.113.53", carol, StringComparison.Ordinal);
        Assert.Equal(svc.ConfigText("carol", "berlin"), carol);
        Assert.Contains("Endpoint = vpn2.example.com:443", FileOf(svc, "bob"), StringComparison.Ordinal);

        // Access rules: revoking 'everyone -> internal' takes berlin's network out of carol's routes; a rule of her own adds a host of it.
        var internalRule = svc.ListRules().Single(r => r.Target == Access.AccessRule.Internal);
        svc.Revoke(internalRule.Id);
        carol = FileOf(svc, "carol");
        AssertBerlin(carol, b, registry);
        Assert.DoesNotContain("198.51.100.128/25", carol, StringComparison.Ordinal);
        Assert.Equal(svc.ConfigText("carol", "berlin"), carol);
        svc.Allow(new AllowRequest("client:carol", "198.51.100.130"));
        carol = FileOf(svc, "carol");
        AssertBerlin(carol, b, registry);
        Assert.Contains("198.51.100.130/32", carol, StringComparison.Ordinal);
        Assert.Equal(svc.ConfigText("carol", "berlin"), carol);

        // A file gone missing is written again by up: berlin's.
        File.Delete(svc.Paths.ClientConfig("carol"));
        svc.Up();
        Assert.Equal(svc.ConfigText("carol", "berlin"), FileOf(svc, "carol"));

        // set: an edit of her own and a rename keep berlin.
        svc.Set(new SetRequest("carol") { Keepalive = "10", Rename = "carola" });
        Assert.False(File.Exists(svc.Paths.ClientConfig("carol")));
        AssertBerlin(FileOf(svc, "carola"), b, registry);
        Assert.Equal(svc.ConfigText("carola", "berlin"), FileOf(svc, "carola"));

        // set --gateway all, or a list with main: main's settings again (the registry's, byte for byte); back to berlin: berlin's.
        svc.Set(new SetRequest("carola") { Gateways = ["all"] });
        Assert.Null(svc.HomeGateway("carola"));
        Assert.Equal(svc.ConfigText("carola", "main"), FileOf(svc, "carola"));
        Assert.Contains("Endpoint = vpn2.example.com:443", FileOf(svc, "carola"), StringComparison.Ordinal);
        svc.Set(new SetRequest("carola") { Gateways = ["berlin"] });
        Assert.Equal(svc.ConfigText("carola", "berlin"), FileOf(svc, "carola"));
        AssertBerlin(svc.ConfigText("carola"), b, registry);
        svc.Set(new SetRequest("carola") { Gateways = ["berlin,main"] });
        Assert.Equal(svc.ConfigText("carola", "main"), FileOf(svc, "carola"));
        Assert.Equal(svc.ConfigText("carola", "main"), svc.ConfigText("carola"));
        svc.Set(new SetRequest("carola") { Gateways = ["main"] });
        Assert.Equal(svc.ConfigText("carola", "main"), FileOf(svc, "carola"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void The_home_gateway_is_the_first_by_name_and_follows_a_gateway_remove(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        var hamburg = svc.AddGateway(Berlin with { Name = "hamburg", Endpoint = "vpn-hamburg.example.com:51822", Interface = "mkbunith" });
        var b = svc.AddGateway(Berlin);   // added after hamburg: the order is by name, not by id
        svc.Add([new AddRequest("carol") { Gateways = ["hamburg,berlin"] }]);
        Assert.Equal("berlin", svc.HomeGateway("carol")?.Name);
        AssertBerlin(FileOf(svc, "carol"), b, svc.GetServer());
        Assert.Equal(svc.ConfigText("carol", "berlin"), FileOf(svc, "carol"));

        // Without berlin, hamburg is carol's first gateway: her file follows.
        svc.RemoveGateway("berlin", force: false);
        Assert.Equal("hamburg", svc.HomeGateway("carol")?.Name);
        Assert.Equal(svc.ConfigText("carol", "hamburg"), FileOf(svc, "carol"));
        Assert.Contains($"PublicKey = {hamburg.PublicKey.ToBase64()}", FileOf(svc, "carol"), StringComparison.Ordinal);
        Assert.Contains("Endpoint = vpn-hamburg.example.com:51822", svc.ConfigText("carol"), StringComparison.Ordinal);

        // Without hamburg she is served by every gateway: the registry's settings.
        svc.RemoveGateway("hamburg", force: false);
        Assert.Null(svc.HomeGateway("carol"));
        Assert.Equal(svc.ConfigText("carol", "main"), FileOf(svc, "carol"));
        Assert.Contains("Endpoint = vpn.example.com:51820", FileOf(svc, "carol"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Migrate_store_copies_the_gateway_tables(Backend backend)
    {
        if (backend == Backend.Postgres)
            return;   // migrate-store goes from SQLite to PostgreSQL
        using var db = new TestStore(backend, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        svc.AddGateway(Berlin);
        svc.Add([new AddRequest("alice") { Gateways = ["berlin"] }]);
        string before = svc.ConfigText("alice", "berlin");
        string location = pg.NewDatabase();
        var moved = StoreMove.Run(db.Paths(), location, FileLock.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal((2L, 1L), (moved.Rows["gateways"], moved.Rows["client_gateways"]));
        var onPg = new ClientService(new Paths(db.Paths().DataDir, location), new InMemoryHost(new ManualTime(Start)).Host);
        Assert.Equal(before, onPg.ConfigText("alice", "berlin"));
        // The identity continues after the copied ids.
        onPg.AddGateway(Berlin with { Name = "paris", Interface = "mkbunitp" });
        Assert.Equal(3, onPg.ListGateways().Count);
    }

    [Fact]
    public void Notifications_are_sent_at_commit_only_and_not_for_reports()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var svc = Service(db);
        svc.Init(ClientServiceTests.Options());
        svc.Add([new AddRequest("alice")]);
        var alice = svc.Get("alice").Client;
        using var feed = ChangeFeed.Listen(StoreLocation.Parse(db.Location!));
        using (var store = db.Open(create: false))
        {
            using (var tx = store.BeginWrite())
            {
                store.SetEnabled(alice, false);
            }   // rolled back: nothing is sent
            Assert.Empty(feed.Wait(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(20), CancellationToken.None));
            using (var tx = store.BeginWrite())
            {
                store.RecordLive([(alice.PublicKey, "198.18.0.9:4000", Start)]);
                store.ReportGateway(store.ListGateways()[0].Id, Start, "builtin", []);
                tx.Commit();
            }
            Assert.Empty(feed.Wait(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(20), CancellationToken.None));
        }
        svc.Block(["alice"]);
        Assert.Equal([$"client:{alice.Id}"], feed.Wait(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(20), CancellationToken.None));
        svc.AddGroup("staff", null);
        Assert.Equal(["all"], feed.Wait(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(20), CancellationToken.None));
    }

    /// <summary>One gateway host: its own in-memory interface and firewall, following the shared registry on a thread.</summary>
    private sealed class GatewayHost : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _thread;
        private readonly ManualResetEventSlim _started = new();
        public readonly InMemoryHost Host = new(new ManualTime(Start));
        public readonly List<string> Log = [];
        public Exception? Failed;

        public GatewayHost(TestStore db, string gateway, string data, TimeSpan? driftCheckEvery = null)
        {
            var svc = new ClientService(db.Paths(data), Host.Host);
            _thread = new Thread(() =>
            {
                try
                {
                    svc.Follow(gateway, TimeSpan.FromMilliseconds(200), _stop.Token, m => { lock (Log) Log.Add(m); }, started: _ => _started.Set(),
                        driftCheckEvery: driftCheckEvery);
                }
                catch (Exception e)
                {
                    Failed = e;
                    _started.Set();
                }
            }) { IsBackground = true };
            _thread.Start();
            Assert.True(_started.Wait(TimeSpan.FromSeconds(20)), "the gateway did not come up");
            Assert.Null(Failed);
        }

        /// <summary>The public keys on this gateway's interface (read while the follower may be applying: retried).</summary>
        public HashSet<WireGuardKey> Peers(string iface)
        {
            for (int i = 0; ; i++)
            {
                try
                {
                    return Host.Devices.Running.TryGetValue(iface, out var d) ? [.. d.Peers.Select(p => p.PublicKey)] : [];
                }
                catch (InvalidOperationException) when (i < 100)
                {
                    Thread.Sleep(1);
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            Assert.True(_thread.Join(TimeSpan.FromSeconds(20)), "the gateway did not stop");
        }
    }

    // Deadlines are generous (a loaded CI machine); the figures that matter are printed by bench/gateways.sh.
    private static TimeSpan Until(Func<bool> condition, string what, double seconds = 20)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(seconds), $"{what}: not within {seconds} s");
            Thread.Sleep(5);
        }
        return clock.Elapsed;
    }

    [Fact]
    public void Two_gateways_follow_the_registry_each_with_its_own_clients()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var admin = Service(db, "admin");
        admin.Init(ClientServiceTests.Options());
        admin.AddGateway(Berlin);
        admin.Add([new AddRequest("alice"), new AddRequest("bob") { Gateways = ["berlin"] }, new AddRequest("carol") { Gateways = ["main"] }]);
        var key = admin.List().ToDictionary(c => c.Name, c => c.PublicKey);

        using var a = new GatewayHost(db, "main", "a");
        var b = new GatewayHost(db, "berlin", "b");
        try
        {
            Assert.True(a.Peers(Fixtures.Interface).SetEquals([key["alice"], key["carol"]]));
            Assert.True(b.Peers("mkbunitb").SetEquals([key["alice"], key["bob"]]));
            Assert.True(b.Host.Devices.Running["mkbunitb"].PrivateKey!.Equals(admin.ListGateways().Single(v => v.Gateway.Name == "berlin").Gateway.PrivateKey));

            // A block on any host reaches both gateways, per peer.
            int installs = b.Host.Network.Installs.Count;
            admin.Block(["alice"]);
            var took = Until(() => !b.Peers("mkbunitb").Contains(key["alice"]), "alice off berlin");
            Until(() => !a.Peers(Fixtures.Interface).Contains(key["alice"]), "alice off main");
            Console.WriteLine($"block reached gateway berlin in {took.TotalMilliseconds:0} ms");
            // Access rules follow per client too: a rule for a group and a member joining it are a chain and
            // one element in berlin's table (a difference, not a reload).
            admin.AddGroup("staff", null);
            admin.Allow(new AllowRequest("group:staff", "server"));
            admin.Set(new SetRequest("bob") { Groups = ["staff"] });
            string bob4 = admin.List().Single(c => c.Name == "bob").Address4!.ToString();
            Until(() => b.Host.Network.Table is { } t && t.Map4.TryGetValue(bob4, out var v) && v.StartsWith("jump g", StringComparison.Ordinal), "bob's group reached berlin's firewall");
            Assert.Equal(installs, b.Host.Network.Installs.Count);
            Assert.Contains(b.Host.Network.Diffs, d => d.Contains($"add element inet mkb_vpn clients4 {{ {bob4} : jump g", StringComparison.Ordinal));
            Assert.Contains(key["bob"], b.Peers("mkbunitb"));
            admin.Block(["bob"]);
            var warm = Until(() => !b.Peers("mkbunitb").Contains(key["bob"]), "bob off berlin");
            Console.WriteLine($"a second block reached gateway berlin in {warm.TotalMilliseconds:0} ms");
            admin.Reenable(["bob"]);
            Until(() => b.Peers("mkbunitb").Contains(key["bob"]), "bob back on berlin");

            // Moving a client between gateways.
            admin.Set(new SetRequest("carol") { Gateways = ["berlin"] });
            Until(() => b.Peers("mkbunitb").Contains(key["carol"]) && !a.Peers(Fixtures.Interface).Contains(key["carol"]), "carol moved to berlin");

            // Both report: 'gateway list' on any host shows them.
            Until(() => admin.ListGateways().All(v => v.Online && v.Gateway.Engine == "in-memory"), "both gateways reported");
            Until(() => admin.ListGateways().Single(v => v.Gateway.Name == "berlin").Gateway.PeerCount == 2, "berlin reported its 2 peers");

            // A lost connection: changes made meanwhile are applied on return (full reconcile).
            pg.Sql(db.Location!, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
            admin.Reenable(["alice"]);
            Until(() => b.Peers("mkbunitb").Contains(key["alice"]) && a.Peers(Fixtures.Interface).Contains(key["alice"]), "alice back on both after the lost connection", 30);

            // Gateway berlin stopped, a change made, berlin started: it catches up.
            b.Dispose();
            Assert.False(b.Host.Devices.Running.ContainsKey("mkbunitb"));
            admin.Remove(["bob"]);
            admin.Block(["carol"]);
            b = new GatewayHost(db, "berlin", "b");
            Assert.True(b.Peers("mkbunitb").SetEquals([key["alice"]]));
        }
        finally
        {
            b.Dispose();
        }
        Assert.Null(a.Failed);
    }

    // A peer removed and a stray one added by hand on a gateway's host ('wg set'), with no change in the registry:
    // the periodic drift check puts the interface back and says so once; a check finding nothing says nothing.
    [Fact]
    public void The_drift_check_puts_back_a_gateway_interface_changed_by_hand()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var admin = Service(db, "admin");
        admin.Init(ClientServiceTests.Options());
        admin.AddGateway(Berlin);
        admin.Add([new AddRequest("alice") { Gateways = ["berlin"] }, new AddRequest("bob") { Gateways = ["berlin"] }]);
        var key = admin.List().ToDictionary(c => c.Name, c => c.PublicKey);
        using var b = new GatewayHost(db, "berlin", "b", driftCheckEvery: TimeSpan.FromSeconds(1));
        Assert.True(b.Peers("mkbunitb").SetEquals([key["alice"], key["bob"]]));
        var stray = Fixtures.Key(0x5e);
        b.Host.Devices.Running["mkbunitb"].Apply(new DeviceChanges
        {
            Peers = [new PeerChange.Remove(key["alice"]), new PeerChange.Upsert(new PeerSpec(stray, Fixtures.Key(0x11), [System.Net.IPNetwork.Parse("fd00:5e::1/128")]))],
        });
        Until(() => b.Peers("mkbunitb").SetEquals([key["alice"], key["bob"]]), "the drift check put berlin's interface back");
        Until(() => { lock (b.Log) return b.Log.Any(l => l.StartsWith("drift check:", StringComparison.Ordinal)); }, "the drift check's line");
        string line;
        lock (b.Log)
            line = b.Log.Single(l => l.StartsWith("drift check:", StringComparison.Ordinal));
        Assert.Contains("1 peer(s) put back, 1 removed", line);
        // The next check finds nothing to correct (its whole-table firewall load shows it ran) and logs nothing.
        int installs = b.Host.Network.Installs.Count;
        Until(() => b.Host.Network.Installs.Count > installs + 1, "two more drift checks ran");
        lock (b.Log)
            Assert.Single(b.Log, l => l.StartsWith("drift check:", StringComparison.Ordinal));
        Assert.Null(b.Failed);
    }

    /// <summary>The registry host's 'up --foreground' (<see cref="ClientService.Supervise"/>) on a thread, its log kept.</summary>
    private sealed class SupervisorThread
    {
        private readonly Thread _thread;
        public readonly CancellationTokenSource Stop = new();
        public readonly List<string> Log = [];
        /// <summary>What Supervise returned (true: stopped by 'down'); null while it runs or when it threw.</summary>
        public bool? Stopped;
        public Exception? Failed;

        public SupervisorThread(ClientService main, TimeSpan period, TimeSpan? driftCheckEvery = null)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    Stopped = main.Supervise(period, Stop.Token, m => { lock (Log) Log.Add(m); }, driftCheckEvery: driftCheckEvery);
                }
                catch (Exception e)
                {
                    Failed = e;
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public bool IsAlive => _thread.IsAlive;

        public bool Join(TimeSpan timeout) => _thread.Join(timeout);
    }

    /// <summary>The public keys on an in-memory interface (read while another thread may be applying: retried).</summary>
    private static HashSet<WireGuardKey> PeersOn(InMemoryHost host, string iface)
    {
        for (int i = 0; ; i++)
        {
            try
            {
                return host.Devices.Running.TryGetValue(iface, out var d) ? [.. d.Peers.Select(p => p.PublicKey)] : [];
            }
            catch (InvalidOperationException) when (i < 100)
            {
                Thread.Sleep(1);
            }
        }
    }

    // On a PostgreSQL registry the registry host's supervisor follows the registry; its drift check is a full
    // reconcile of that follower: a peer removed by hand comes back with no change in the registry.
    [Fact]
    public void The_registry_hosts_supervisor_puts_back_a_peer_removed_by_hand()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var mainHost = new InMemoryHost(new ManualTime(Start));
        var main = new ClientService(db.Paths("main"), mainHost.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
        main.Init(ClientServiceTests.Options());
        main.Add([new AddRequest("alice"), new AddRequest("bob")]);
        var key = main.List().ToDictionary(c => c.Name, c => c.PublicKey);
        main.Up();
        var supervisor = new SupervisorThread(main, TimeSpan.FromMilliseconds(200), driftCheckEvery: TimeSpan.FromSeconds(1));
        var log = supervisor.Log;
        try
        {
            // Wait for its first full reconcile (it follows from then on), then change the interface by hand.
            Until(() => mainHost.Network.Installs.Count >= 2, "the supervisor's first reconcile", 10);
            mainHost.Devices.Running[Fixtures.Interface].Apply(new DeviceChanges { Peers = [new PeerChange.Remove(key["alice"])] });
            Until(() => PeersOn(mainHost, Fixtures.Interface).SetEquals([key["alice"], key["bob"]]), "alice put back by the drift check", 10);
            Until(() => { lock (log) return log.Any(l => l.Contains("1 added", StringComparison.Ordinal)); }, "the reconcile's line", 10);
        }
        finally
        {
            supervisor.Stop.Cancel();
            Assert.True(supervisor.Join(TimeSpan.FromSeconds(20)), "the supervisor did not stop");
        }
        Assert.Null(supervisor.Failed);
    }

    [Fact]
    public void The_registry_hosts_supervisor_follows_changes_made_on_another_host()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var mainHost = new InMemoryHost(new ManualTime(Start));
        var main = new ClientService(db.Paths("main"), mainHost.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
        main.Init(ClientServiceTests.Options());
        main.AddGateway(Berlin);
        main.Add([new AddRequest("alice"), new AddRequest("bob") { Gateways = ["berlin"] }, new AddRequest("carol") { Gateways = ["main"] }]);
        var key = main.List().ToDictionary(c => c.Name, c => c.PublicKey);
        main.Up();
        Assert.True(PeersOn(mainHost, Fixtures.Interface).SetEquals([key["alice"], key["carol"]]));

        // 'up --foreground' without --gateway on the registry host.
        var supervisor = new SupervisorThread(main, TimeSpan.FromMilliseconds(200));
        var log = supervisor.Log;
        try
        {
            // berlin's host: the same registry, no interface of the server's there (the verbs change the registry only).
            var berlinHost = new InMemoryHost(new ManualTime(Start));
            var berlin = new ClientService(db.Paths("berlin"), berlinHost.Host) { Actor = new Actor("berlin-admin", Actor.Cli) };
            Directory.CreateDirectory(db.Paths("berlin").DataDir);   // its data directory holds the lock and config files

            berlin.Block(["carol"]);
            var took = Until(() => !PeersOn(mainHost, Fixtures.Interface).Contains(key["carol"]), "carol off main after a block on berlin's host", 10);
            Console.WriteLine($"a block on another host reached main in {took.TotalMilliseconds:0} ms");
            berlin.Reenable(["carol"]);
            Until(() => PeersOn(mainHost, Fixtures.Interface).Contains(key["carol"]), "carol back on main after a reenable on berlin's host", 10);
            Assert.Empty(berlinHost.Devices.Running);

            // Access rules follow per client: a group's rule and a member joining it reach main's firewall as a difference.
            int installs = mainHost.Network.Installs.Count;
            berlin.AddGroup("staff", null);
            berlin.Allow(new AllowRequest("group:staff", "server"));
            berlin.Set(new SetRequest("carol") { Groups = ["staff"] });
            string carol4 = main.List().Single(c => c.Name == "carol").Address4!.ToString();
            Until(() => mainHost.Network.Table is { } t && t.Map4.TryGetValue(carol4, out var v) && v.StartsWith("jump g", StringComparison.Ordinal), "carol's group reached main's firewall", 10);
            Assert.Equal(installs, mainHost.Network.Installs.Count);

            // Moving a client off main, and a removal.
            berlin.Set(new SetRequest("alice") { Gateways = ["berlin"] });
            Until(() => !PeersOn(mainHost, Fixtures.Interface).Contains(key["alice"]), "alice moved off main", 10);
            berlin.Remove(["carol"]);
            Until(() => PeersOn(mainHost, Fixtures.Interface).Count == 0, "carol removed from main", 10);

            // main's own verbs apply live as before; the supervisor applying them again changes nothing.
            main.Set(new SetRequest("alice") { Gateways = ["all"] });
            Assert.Contains(key["alice"], PeersOn(mainHost, Fixtures.Interface));
            main.Block(["alice"]);
            Assert.DoesNotContain(key["alice"], PeersOn(mainHost, Fixtures.Interface));
            berlin.Add([new AddRequest("dave") { Gateways = ["main"] }]);
            var dave = main.Get("dave").Client.PublicKey;
            Until(() => PeersOn(mainHost, Fixtures.Interface).Contains(dave), "dave (added on berlin's host) on main", 10);
            Assert.DoesNotContain(key["alice"], PeersOn(mainHost, Fixtures.Interface));
            Assert.DoesNotContain(key["bob"], PeersOn(mainHost, Fixtures.Interface));

            // A lost interface is restored, and changes keep reaching the restored one.
            mainHost.Devices.Lose(Fixtures.Interface);
            Until(() => PeersOn(mainHost, Fixtures.Interface).Contains(dave), "main's interface restored", 10);
            berlin.Block(["dave"]);
            Until(() => !PeersOn(mainHost, Fixtures.Interface).Contains(dave), "dave off the restored interface", 10);

            // A lost connection to the registry: changes made meanwhile reach main when it is back.
            pg.Sql(db.Location!, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
            berlin.Reenable(["dave"]);
            Until(() => PeersOn(mainHost, Fixtures.Interface).Contains(dave), "dave back on main after the lost connection", 30);

            // Its duties stay: 'down' stops it.
            main.Down();
            Assert.True(supervisor.Join(TimeSpan.FromSeconds(20)), "the supervisor did not stop after down");
            Assert.Null(supervisor.Failed);
            Assert.True(supervisor.Stopped);
            Assert.Empty(mainHost.Devices.Running);

            // Cancelled (SIGTERM) while waiting for the registry's changes: it returns false, for the caller's 'down'.
            main.Up();
            using var term = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            Assert.False(main.Supervise(TimeSpan.FromMilliseconds(200), term.Token, m => { lock (log) log.Add(m); }));
        }
        finally
        {
            supervisor.Stop.Cancel();
            supervisor.Join(TimeSpan.FromSeconds(20));
        }
        lock (log)
            Assert.DoesNotContain(log, l => l.StartsWith("following the registry", StringComparison.Ordinal) || l.StartsWith("supervisor:", StringComparison.Ordinal));
    }

    [Fact]
    public void A_change_arriving_after_the_registry_hosts_interface_came_back_by_hand_is_applied()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var mainHost = new InMemoryHost(new ManualTime(Start));
        var main = new ClientService(db.Paths("main"), mainHost.Host) { Actor = new Actor("gw-admin", Actor.Cli) };
        main.Init(ClientServiceTests.Options());
        main.Add([new AddRequest("alice"), new AddRequest("carol")]);
        var key = main.List().ToDictionary(c => c.Name, c => c.PublicKey);
        main.Up();
        var berlin = new ClientService(db.Paths("berlin"), new InMemoryHost(new ManualTime(Start)).Host);
        Directory.CreateDirectory(db.Paths("berlin").DataDir);
        // The connections listening on this test's database (pooled ones of other tests' databases are not counted).
        HashSet<string> Listening() => [.. (pg.Scalar(db.Location!, "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()") as string ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)];

        // A long period: what follows happens before the round that would restore the interface.
        var supervisor = new SupervisorThread(main, TimeSpan.FromSeconds(3));
        var log = supervisor.Log;
        try
        {
            Until(() => Listening().Count == 1, "the supervisor listens", 10);
            var lost = Listening();
            // The interface and the feed lost together: the feed's return finds no interface to reconcile.
            mainHost.Devices.Lose(Fixtures.Interface);
            pg.Sql(db.Location!, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({string.Join(',', lost)})");
            Until(() => { lock (log) return log.Any(l => l.StartsWith("registry unreachable", StringComparison.Ordinal)); }, "the supervisor noticed the lost feed", 10);
            Until(() => Listening().Except(lost).Any(), "the supervisor listens again", 10);
            // The admin runs 'mkb-vpn up' before the supervisor's restore; then a change on another host.
            main.Up();
            berlin.Block(["carol"]);
            Until(() => !PeersOn(mainHost, Fixtures.Interface).Contains(key["carol"]), "carol off main", 10);
            Assert.Contains(key["alice"], PeersOn(mainHost, Fixtures.Interface));
            Assert.Null(supervisor.Failed);
            Assert.True(supervisor.IsAlive, "the supervisor stopped");
        }
        finally
        {
            supervisor.Stop.Cancel();
            supervisor.Join(TimeSpan.FromSeconds(20));
        }
        Assert.Null(supervisor.Failed);
    }

    [Fact]
    public void An_expiry_passing_takes_the_client_off_a_following_gateway_by_its_own_timer()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var admin = Service(db, "admin");
        admin.Init(ClientServiceTests.Options());
        admin.Add([new AddRequest("alice") { Expires = "1h" }, new AddRequest("bob")]);
        var key = admin.List().ToDictionary(c => c.Name, c => c.PublicKey);
        using var a = new GatewayHost(db, "main", "a");
        Assert.True(a.Peers(Fixtures.Interface).SetEquals([key["alice"], key["bob"]]));

        // Its clock passes alice's expiry: she goes at its next wake-up, nobody writes the registry.
        ((ManualTime)a.Host.Host.Time).Advance(TimeSpan.FromMinutes(59));
        // A report stamped with the new time shows a wake-up after it (expiry is checked before each report): not yet due, nothing changes.
        Until(() => admin.ListGateways().Single().Gateway.LastSeen >= Start + TimeSpan.FromMinutes(59), "main reported after its clock moved", 10);
        Assert.Contains(key["alice"], a.Peers(Fixtures.Interface));
        ((ManualTime)a.Host.Host.Time).Advance(TimeSpan.FromMinutes(2));
        Until(() => !a.Peers(Fixtures.Interface).Contains(key["alice"]), "alice off main after her expiry", 10);
        Assert.Contains(key["bob"], a.Peers(Fixtures.Interface));
        Until(() => { lock (a.Log) return a.Log.Any(l => l.StartsWith("1 client(s) expired", StringComparison.Ordinal)); }, "main logged the expiry", 10);
        Assert.True(admin.List().Single(c => c.Name == "alice").Enabled);

        // Her expiry extended in the registry: the gateway serves her again.
        admin.Set(new SetRequest("alice") { Expires = "never" });
        Until(() => a.Peers(Fixtures.Interface).Contains(key["alice"]), "alice back on main after her expiry was lifted", 10);

        // While the registry is unreachable, an expiry still takes effect (the gateway's timer needs no database).
        // (A group with a rule in the same change makes its application visible: bob's element in main's table.)
        admin.AddGroup("ops", null);
        admin.Allow(new AllowRequest("group:ops", "server"));
        admin.Set(new SetRequest("bob") { Expires = "3h", Groups = ["ops"] });
        string bob4 = admin.List().Single(c => c.Name == "bob").Address4!.ToString();
        Until(() => a.Host.Network.Table is { } t && t.Map4.ContainsKey(bob4), "main applied bob's change", 10);
        string location = db.Location!;
        string name = location[(location.LastIndexOf('/') + 1)..location.IndexOf('?', StringComparison.Ordinal)];
        string postgres = pg.Location("postgres");
        pg.Sql(postgres, $"ALTER DATABASE {name} ALLOW_CONNECTIONS false");
        try
        {
            pg.Sql(postgres, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
            Until(() => { lock (a.Log) return a.Log.Any(l => l.StartsWith("registry unreachable", StringComparison.Ordinal)); }, "main noticed the registry is gone", 10);
            Assert.Contains(key["bob"], a.Peers(Fixtures.Interface));
            ((ManualTime)a.Host.Host.Time).Advance(TimeSpan.FromHours(4));
            Until(() => !a.Peers(Fixtures.Interface).Contains(key["bob"]) || a.Failed is not null, "bob off main after his expiry, the registry away", 20);
            lock (a.Log)
                Assert.True(a.Failed is null && !a.Peers(Fixtures.Interface).Contains(key["bob"]), $"{a.Failed}\n{string.Join("\n", a.Log)}");
            Assert.Contains(key["alice"], a.Peers(Fixtures.Interface));
        }
        finally
        {
            pg.Sql(postgres, $"ALTER DATABASE {name} ALLOW_CONNECTIONS true");
        }
        Npgsql.NpgsqlConnection.ClearAllPools();
        Assert.Null(a.Failed);
    }

    [Fact]
    public void A_gateway_keeps_serving_while_the_registry_is_unreachable_and_catches_up_when_it_returns()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var admin = Service(db, "admin");
        admin.Init(ClientServiceTests.Options());
        admin.Add([new AddRequest("alice"), new AddRequest("bob")]);
        var key = admin.List().ToDictionary(c => c.Name, c => c.PublicKey);
        using var a = new GatewayHost(db, "main", "a");
        Assert.True(a.Peers(Fixtures.Interface).SetEquals([key["alice"], key["bob"]]));

        string location = db.Location!;
        string name = location[(location.LastIndexOf('/') + 1)..location.IndexOf('?', StringComparison.Ordinal)];
        string postgres = pg.Location("postgres");
        pg.Sql(postgres, $"ALTER DATABASE {name} ALLOW_CONNECTIONS false");
        try
        {
            pg.Sql(postgres, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
            Until(() => { lock (a.Log) return a.Log.Any(l => l.StartsWith("registry unreachable", StringComparison.Ordinal)); }, "the gateway noticed", 30);
            // The data plane does not depend on the database: the peers stay.
            Assert.True(a.Peers(Fixtures.Interface).SetEquals([key["alice"], key["bob"]]));
            Assert.True(a.Host.Devices.Running.ContainsKey(Fixtures.Interface));
            // A verb fails clearly meanwhile.
            Npgsql.NpgsqlConnection.ClearAllPools();
            Assert.Equal(ExitCodes.Database, Assert.Throws<UserInputException>(() => admin.Add([new AddRequest("carol")])).ExitCode);
        }
        finally
        {
            pg.Sql(postgres, $"ALTER DATABASE {name} ALLOW_CONNECTIONS true");
        }
        Npgsql.NpgsqlConnection.ClearAllPools();
        admin.Block(["bob"]);
        var took = Until(() => !a.Peers(Fixtures.Interface).Contains(key["bob"]), "the change made after the registry returned", 40);
        Console.WriteLine($"registry back: the change reached the gateway in {took.TotalSeconds:0.0} s");
        Assert.Null(a.Failed);
    }
}
