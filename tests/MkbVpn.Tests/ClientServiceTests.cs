using System.Net;
using MkbVpn.Clients;
using MkbVpn.Configs;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>The verbs end to end on the store and files (the live interface named in the store does not exist).</summary>
public sealed class ClientServiceTests : IDisposable
{
    private const UnixFileMode OwnerRw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly ClientService _svc;

    public ClientServiceTests()
    {
        Assert.False(Directory.Exists($"/sys/class/net/{Fixtures.Interface}"), "the test interface must not exist on this machine");
        _svc = new ClientService(new Paths(_dir.File("data")), _time);
    }

    public void Dispose() => _dir.Dispose();

    internal static InitOptions Options(string subnet4 = "203.0.113.0/24", string? subnet6 = "fd00:1234:5678::/64") => new()
    {
        Endpoint = "vpn.example.com",
        Subnet4 = subnet4,
        Subnet6 = subnet6,
        NoIpv6 = subnet6 is null,
        InternalNetworks = ["198.51.100.0/24"],
        Dns = ["203.0.113.1"],
        Interface = Fixtures.Interface,
    };

    private ServerSettings Init(string subnet4 = "203.0.113.0/24", string? subnet6 = "fd00:1234:5678::/64") =>
        _svc.Init(Options(subnet4, subnet6)).Server;

    private static AddRequest[] Names(params string[] names) => [.. names.Select(n => new AddRequest(n))];

    private string ConfPath(string name) => _svc.Paths.ClientConfig(name);

    private string[] ConfFiles() =>
        [.. Directory.GetFiles(_svc.Paths.ClientsDir).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    // ---- init -------------------------------------------------------------

    [Fact]
    public void Init_creates_the_server_with_the_given_settings()
    {
        var r = _svc.Init(Options());
        Assert.True(r.Created);
        var s = r.Server;
        Assert.Equal(Fixtures.Interface, s.Interface);
        Assert.Equal(ServerSettings.DefaultPort, s.ListenPort);
        Assert.Equal("vpn.example.com:51820", s.Endpoint);
        Assert.Equal(IPNetwork.Parse("203.0.113.0/24"), s.Subnet4);
        Assert.Equal(IPNetwork.Parse("fd00:1234:5678::/64"), s.Subnet6);
        Assert.Equal(["203.0.113.1"], s.Dns);
        Assert.Equal([IPNetwork.Parse("198.51.100.0/24")], s.InternalNetworks);
        Assert.Equal(ServerSettings.DefaultMtu, s.Mtu);
        Assert.Equal(ServerSettings.DefaultKeepalive, s.Keepalive);
        Assert.False(s.FullTunnel);
        Assert.Equal(WireGuardKeys.PublicKeyOf(s.PrivateKey), s.PublicKey);
        Assert.Equal(_time.GetUtcNow(), s.CreatedAt);

        StoreTests.AssertSameServer(s, _svc.GetServer());
        Assert.Empty(_svc.List());
        var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(owner, File.GetUnixFileMode(_svc.Paths.DataDir));
        Assert.Equal(owner, File.GetUnixFileMode(_svc.Paths.ClientsDir));
        Assert.Equal(OwnerRw, File.GetUnixFileMode(_svc.Paths.Database));
    }

    [Fact]
    public void Init_twice_is_refused_and_changes_nothing()
    {
        var first = Init();
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(Options() with { Port = 40000 }));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("--change", e.Message);
        Fixtures.AssertOneLine(e.Message);
        var now = _svc.GetServer();
        Assert.Equal(first.ListenPort, now.ListenPort);
        Assert.Equal(first.PrivateKey, now.PrivateKey);
    }

    [Fact]
    public void Init_needs_an_endpoint_and_writes_nothing_without_one()
    {
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(Options() with { Endpoint = null }));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.StartsWith("endpoint: ", e.Message);
        var e2 = Assert.Throws<UserInputException>(() => _svc.List());
        Assert.Equal(ExitCodes.NotInitialised, e2.ExitCode);
    }

    [Theory]
    [InlineData("203.0.113.5/24", null, "did you mean 203.0.113.0/24")]
    [InlineData("fd00:1234::/64", null, "not an IPv4 network")]
    [InlineData("203.0.113.0/24", "198.51.100.0/24", "not an IPv6 network")]
    public void Init_validates_subnets_before_touching_anything(string subnet4, string? subnet6, string expected)
    {
        var o = Options(subnet4, subnet6);
        var e = Assert.Throws<FieldException>(() => _svc.Init(o));
        Assert.Contains(expected, e.Message);
        Assert.False(Directory.Exists(_svc.Paths.DataDir));
    }

    [Theory]
    [InlineData(0, null, null, "port: ")]
    [InlineData(null, 1000, null, "mtu: ")]
    [InlineData(null, null, -1, "keepalive: ")]
    public void Init_validates_numbers(int? port, int? mtu, int? keepalive, string expected)
    {
        var e = Assert.Throws<FieldException>(() => _svc.Init(Options() with { Port = port, Mtu = mtu, Keepalive = keepalive }));
        Assert.StartsWith(expected, e.Message);
        Assert.False(Directory.Exists(_svc.Paths.DataDir));
    }

    [Theory]
    [InlineData("mkb-vpn0")]
    [InlineData("abcdefghijklmnop")]
    [InlineData("")]
    public void Init_validates_the_interface_name(string iface)
    {
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(Options() with { Interface = iface }));
        Assert.StartsWith("interface: ", e.Message);
    }

    [Fact]
    public void Init_refuses_contradicting_ipv6_options()
    {
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(Options() with { NoIpv6 = true }));
        Assert.Contains("contradict", e.Message);
    }

    [Theory]
    [InlineData("203.0.113.0/31", null)]
    [InlineData("203.0.113.0/32", null)]
    [InlineData("203.0.113.0/24", "fd00:1234:5678::/127")]
    public void Init_refuses_a_too_small_subnet_as_a_user_error(string subnet4, string? subnet6)
    {
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(Options(subnet4, subnet6)));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Contains("too small", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.False(Directory.Exists(_svc.Paths.DataDir));
    }

    [Fact]
    public void Init_dns_accepts_comma_lists_and_none()
    {
        var s = _svc.Init(Options() with { Dns = ["203.0.113.1, 198.51.100.53", "fd00:1234:5678::1"] }).Server;
        Assert.Equal(["203.0.113.1", "198.51.100.53", "fd00:1234:5678::1"], s.Dns);
        var none = _svc.Init(new InitOptions { Change = true, Dns = ["none"] }).Server;
        Assert.Empty(none.Dns);
        Assert.Empty(_svc.GetServer().Dns);
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(new InitOptions { Change = true, Dns = ["dns.example.com"] }));
        Assert.StartsWith("dns: ", e.Message);
    }

    [Fact]
    public void Paths_layout()
    {
        var p = _svc.Paths;
        Assert.Equal(_dir.File("data"), p.DataDir);
        Assert.Equal(Path.Combine(p.DataDir, "mkb-vpn.db"), p.Database);
        Assert.Equal(Path.Combine(p.DataDir, "clients", "alice.conf"), p.ClientConfig("alice"));
        Assert.Equal(Path.Combine(p.DataDir, ".lock"), p.LockFile);
        Assert.Equal(p.DataDir, new Paths(_dir.File("data") + "/./").DataDir.TrimEnd('/'));
    }

    [Fact]
    public void Init_with_an_endpoint_port_and_without_ipv6()
    {
        var s = _svc.Init(Options(subnet6: null) with { Endpoint = "[2001:db8::1]:443", Port = 51000 }).Server;
        Assert.Equal(51000, s.ListenPort);
        Assert.Equal("[2001:db8::1]:443", s.Endpoint);
        Assert.Null(s.Subnet6);
        var c = Assert.Single(_svc.Add(Names("alice")).Clients);
        Assert.Null(c.Address6);
        Assert.Equal(IPAddress.Parse("203.0.113.2"), c.Address4);
    }

    [Fact]
    public void Init_change_updates_settings_and_rerenders_every_config()
    {
        Init();
        _svc.Add(Names("alice", "bob"));
        string aliceBefore = File.ReadAllText(ConfPath("alice"));

        var r = _svc.Init(new InitOptions { Change = true, Port = 51999, Endpoint = "vpn2.example.com:443", Dns = ["198.51.100.53"] });
        Assert.False(r.Created);
        Assert.Equal(51999, r.Server.ListenPort);
        Assert.Equal("vpn2.example.com:443", r.Server.Endpoint);
        Assert.Contains(r.Notes, n => n.Contains("all 2 clients", StringComparison.Ordinal));
        Assert.Equal(51999, _svc.GetServer().ListenPort);

        foreach (var name in new[] { "alice", "bob" })
        {
            var conf = WgQuickConfig.Parse(File.ReadAllText(ConfPath(name)));
            Assert.Equal("vpn2.example.com:443", conf.Peers.Single()["Endpoint"]);
            Assert.Equal(["198.51.100.53"], conf.Interface!.All("DNS"));
            Assert.Equal(OwnerRw, File.GetUnixFileMode(ConfPath(name)));
        }
        // Keys and addresses are unchanged by a settings change.
        var before = WgQuickConfig.Parse(aliceBefore);
        var after = WgQuickConfig.Parse(File.ReadAllText(ConfPath("alice")));
        Assert.Equal(before.Interface!["PrivateKey"], after.Interface!["PrivateKey"]);
        Assert.Equal(before.Interface["Address"], after.Interface["Address"]);
        Assert.Equal(_svc.ConfigText("alice"), File.ReadAllText(ConfPath("alice")));
        Assert.Empty(Directory.GetFiles(_svc.Paths.ClientsDir, "*.tmp"));
    }

    [Fact]
    public void Init_change_port_only_keeps_an_explicit_endpoint_port()
    {
        _svc.Init(Options() with { Endpoint = "vpn.example.com:443" });
        var s = _svc.Init(new InitOptions { Change = true, Port = 51999 }).Server;
        Assert.Equal(51999, s.ListenPort);
        Assert.Equal("vpn.example.com:443", s.Endpoint);   // e.g. a NAT forward: not ours to change
    }

    [Fact]
    public void Init_change_port_moves_an_implicit_endpoint_port()
    {
        Init();   // endpoint given without a port: clients dial the listen port
        _svc.Add(Names("alice"));
        var s = _svc.Init(new InitOptions { Change = true, Port = 51999 }).Server;
        Assert.Equal(51999, s.ListenPort);
        Assert.Equal("vpn.example.com:51999", s.Endpoint);
        Assert.Equal("vpn.example.com:51999", WgQuickConfig.Parse(File.ReadAllText(ConfPath("alice"))).Peers.Single()["Endpoint"]);
    }

    [Fact]
    public void Init_change_with_nothing_new_says_so()
    {
        Init();
        var r = _svc.Init(new InitOptions { Change = true });
        Assert.False(r.Created);
        Assert.Contains("nothing changed", r.Notes);
    }

    [Fact]
    public void Init_change_refuses_a_subnet_that_does_not_hold_existing_clients()
    {
        Init();
        _svc.Add(Names("alice"));
        var e = Assert.ThrowsAny<UserInputException>(() => _svc.Init(new InitOptions { Change = true, Subnet4 = "198.51.100.0/24" }));
        Assert.Contains("alice", e.Message);
        Assert.Equal(IPNetwork.Parse("203.0.113.0/24"), _svc.GetServer().Subnet4);
        var e6 = Assert.ThrowsAny<UserInputException>(() => _svc.Init(new InitOptions { Change = true, NoIpv6 = true }));
        Assert.Contains("alice", e6.Message);
        Assert.NotNull(_svc.GetServer().Subnet6);
    }

    // ---- add ---------------------------------------------------------------

    [Fact]
    public void Add_before_init_is_not_initialised()
    {
        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("alice")));
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
        Directory.CreateDirectory(_svc.Paths.DataDir);   // directory exists, store does not
        var e2 = Assert.Throws<UserInputException>(() => _svc.Add(Names("alice")));
        Assert.Equal(ExitCodes.NotInitialised, e2.ExitCode);
        Assert.False(File.Exists(_svc.Paths.Database));
        foreach (Action a in new Action[] { () => _svc.List(), () => _svc.Remove(["alice"]), () => _svc.Block(["alice"]), () => _svc.Reenable(["alice"]) })
            Assert.Equal(ExitCodes.NotInitialised, Assert.Throws<UserInputException>(a).ExitCode);
    }

    [Fact]
    public void Add_several_gives_distinct_addresses_and_private_config_files()
    {
        var server = Init();
        var r = _svc.Add(Names("alice", "bob", "Carol.Phone"));
        Assert.False(r.Live);
        Assert.Equal(["alice", "bob", "Carol.Phone"], r.Clients.Select(c => c.Name));
        Assert.Equal(["203.0.113.2", "203.0.113.3", "203.0.113.4"], r.Clients.Select(c => c.Address4!.ToString()));
        Assert.Equal(["fd00:1234:5678::2", "fd00:1234:5678::3", "fd00:1234:5678::4"], r.Clients.Select(c => c.Address6!.ToString()));
        Assert.Equal(3, r.Clients.Select(c => c.PublicKey).Distinct().Count());
        Assert.Equal(3, r.Clients.Select(c => c.PresharedKey).Distinct().Count());
        Assert.All(r.Clients, c => Assert.Equal(WireGuardKeys.PublicKeyOf(c.PrivateKey!), c.PublicKey));
        Assert.All(r.Clients, c => Assert.True(c.Enabled));

        Assert.Equal(["Carol.Phone.conf", "alice.conf", "bob.conf"], ConfFiles());
        foreach (var c in r.Clients)
        {
            string path = ConfPath(c.Name);
            Assert.Equal(OwnerRw, File.GetUnixFileMode(path));
            var conf = WgQuickConfig.Parse(File.ReadAllText(path));
            Assert.Equal(c.PrivateKey, WireGuardKey.ParseBase64(conf.Interface!["PrivateKey"]!));
            Assert.Equal([$"{c.Address4}/32", $"{c.Address6}/128"], conf.Interface.All("Address"));
            Assert.Equal(server.PublicKey, WireGuardKey.ParseBase64(conf.Peers.Single()["PublicKey"]!));
            Assert.Equal(c.PresharedKey, WireGuardKey.ParseBase64(conf.Peers.Single()["PresharedKey"]!));
        }

        var listed = _svc.List();
        Assert.Equal(r.Clients.Select(c => (c.Id, c.Name, c.Address4, c.Address6)), listed.Select(c => (c.Id, c.Name, c.Address4, c.Address6)));
        Assert.Equal(ClientConfig.Render(server, listed[0]), _svc.ConfigText("alice"));
        Assert.Equal(_svc.ConfigText("ALICE"), File.ReadAllText(ConfPath("alice")));
    }

    [Fact]
    public void Add_keeps_per_client_overrides()
    {
        Init();
        var req = new AddRequest("alice")
        {
            Address4 = IPAddress.Parse("203.0.113.100"),
            Address6 = IPAddress.Parse("fd00:1234:5678::abc"),
            Dns = [],
            AllowedIps = [IPNetwork.Parse("198.51.100.0/25")],
            Keepalive = 0,
        };
        _svc.Add([req]);
        var conf = WgQuickConfig.Parse(_svc.ConfigText("alice"));
        Assert.Equal(["203.0.113.100/32", "fd00:1234:5678::abc/128"], conf.Interface!.All("Address"));
        Assert.Null(conf.Interface["DNS"]);
        Assert.Equal(["198.51.100.0/25"], conf.Peers.Single().All("AllowedIPs"));
        Assert.Null(conf.Peers.Single()["PersistentKeepalive"]);
        // The next automatic address is still the lowest free one.
        Assert.Equal(IPAddress.Parse("203.0.113.2"), _svc.Add(Names("bob")).Clients[0].Address4);
    }

    [Theory]
    [InlineData("203.0.113.1", ExitCodes.UserError)]     // the server's
    [InlineData("203.0.113.255", ExitCodes.UserError)]   // broadcast
    [InlineData("198.51.100.2", ExitCodes.UserError)]    // outside the subnet
    [InlineData("203.0.113.2", ExitCodes.Conflict)]      // alice has it
    public void Add_with_an_unusable_explicit_address_is_refused(string address, int code)
    {
        Init();
        _svc.Add(Names("alice"));
        var e = Assert.Throws<UserInputException>(() => _svc.Add([new AddRequest("bob") { Address4 = IPAddress.Parse(address) }]));
        Assert.Equal(code, e.ExitCode);
        Assert.Contains(address, e.Message);
        Assert.Single(_svc.List());
        Assert.False(File.Exists(ConfPath("bob")));
    }

    [Fact]
    public void Add_same_explicit_address_twice_in_one_batch_is_refused()
    {
        Init();
        var a = IPAddress.Parse("203.0.113.50");
        var e = Assert.Throws<UserInputException>(() => _svc.Add([new AddRequest("alice") { Address4 = a }, new AddRequest("bob") { Address4 = a }]));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Empty(_svc.List());
    }

    [Fact]
    public void Add_ipv6_address_without_an_ipv6_subnet_is_refused()
    {
        Init(subnet6: null);
        var e = Assert.Throws<UserInputException>(() => _svc.Add([new AddRequest("alice") { Address6 = IPAddress.Parse("fd00:1234:5678::9") }]));
        Assert.Contains("no IPv6 subnet", e.Message);
        Assert.Empty(_svc.List());
    }

    [Fact]
    public void Add_with_one_existing_name_in_the_batch_adds_nothing()
    {
        Init();
        _svc.Add(Names("alice"));
        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob", "ALICE", "carol")));
        Assert.Equal(ExitCodes.Conflict, e.ExitCode);
        Assert.Contains("ALICE", e.Message);
        Assert.Equal(["alice"], _svc.List().Select(c => c.Name));
        Assert.Equal(["alice.conf"], ConfFiles());
        // The failed batch did not consume addresses.
        Assert.Equal(IPAddress.Parse("203.0.113.3"), _svc.Add(Names("bob")).Clients[0].Address4);
    }

    [Fact]
    public void Add_with_a_name_twice_in_the_batch_adds_nothing()
    {
        Init();
        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("bob", "dave", "Bob")));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Contains("twice", e.Message);
        Assert.Empty(_svc.List());
        Assert.Empty(ConfFiles());
    }

    [Theory]
    [InlineData("-bob")]
    [InlineData("waytoolongname16")]
    [InlineData("bo b")]
    public void Add_with_an_invalid_name_in_the_batch_adds_nothing(string bad)
    {
        Init();
        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("alice", bad)));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Empty(_svc.List());
        Assert.Empty(ConfFiles());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void Add_with_an_invalid_keepalive_is_refused(int ka)
    {
        Init();
        Assert.Equal("keepalive", Assert.Throws<FieldException>(() => _svc.Add([new AddRequest("alice") { Keepalive = ka }])).Field);
        Assert.Empty(_svc.List());
    }

    [Fact]
    public void Add_of_nothing_is_refused()
    {
        Init();
        Assert.Equal(ExitCodes.UserError, Assert.Throws<UserInputException>(() => _svc.Add([])).ExitCode);
    }

    [Fact]
    public void Full_pool_is_refused_with_nothing_half_added()
    {
        Init("203.0.113.0/29");   // clients .2 .. .6
        var e = Assert.Throws<UserInputException>(() => _svc.Add(Names("c1", "c2", "c3", "c4", "c5", "c6")));
        Assert.Equal(ExitCodes.PoolFull, e.ExitCode);
        Assert.Contains("203.0.113.0/29", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.Empty(_svc.List());
        Assert.Empty(ConfFiles());

        var r = _svc.Add(Names("c1", "c2", "c3", "c4", "c5"));
        Assert.Equal(["203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5", "203.0.113.6"], r.Clients.Select(c => c.Address4!.ToString()));
        var e2 = Assert.Throws<UserInputException>(() => _svc.Add(Names("c6")));
        Assert.Equal(ExitCodes.PoolFull, e2.ExitCode);
        Assert.Equal(5, _svc.List().Count);
        Assert.Equal(5, ConfFiles().Length);
        Assert.False(File.Exists(ConfPath("c6")));
    }

    // ---- remove --------------------------------------------------------------

    [Fact]
    public void Remove_deletes_the_file_and_the_address_is_reused_last()
    {
        Init("203.0.113.0/29");   // .2 .. .6
        _svc.Add(Names("a", "b", "c"));   // .2 .3 .4
        var r = _svc.Remove(["b"]);
        Assert.Equal("b", Assert.Single(r.Clients).Name);
        Assert.False(File.Exists(ConfPath("b")));
        Assert.Equal(["a", "c"], _svc.List().Select(c => c.Name));

        Assert.Equal(IPAddress.Parse("203.0.113.5"), _svc.Add(Names("d")).Clients[0].Address4);   // never-used first
        Assert.Equal(IPAddress.Parse("203.0.113.6"), _svc.Add(Names("e")).Clients[0].Address4);
        var f = _svc.Add(Names("f")).Clients[0];
        Assert.Equal(IPAddress.Parse("203.0.113.3"), f.Address4);   // then b's old one
        // The IPv6 pool is its own: b's ::3 was released too, but the /64 still has never-used addresses.
        Assert.Equal(IPAddress.Parse("fd00:1234:5678::7"), f.Address6);
    }

    [Fact]
    public void Released_addresses_are_reused_oldest_release_first()
    {
        Init("203.0.113.0/29");   // .2 .. .6
        _svc.Add(Names("a", "b", "c", "d", "e"));   // .2 .. .6: full
        _svc.Remove(["d"]);   // .5 released first
        _time.Advance(TimeSpan.FromMinutes(1));
        _svc.Remove(["b"]);   // .3 released later
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(IPAddress.Parse("203.0.113.5"), _svc.Add(Names("x")).Clients[0].Address4);
        Assert.Equal(IPAddress.Parse("203.0.113.3"), _svc.Add(Names("y")).Clients[0].Address4);
        Assert.Equal(ExitCodes.PoolFull, Assert.Throws<UserInputException>(() => _svc.Add(Names("z"))).ExitCode);
    }

    [Fact]
    public void Remove_with_an_unknown_name_removes_nothing()
    {
        Init();
        _svc.Add(Names("alice", "bob"));
        var e = Assert.Throws<UserInputException>(() => _svc.Remove(["alice", "ghost"]));
        Assert.Equal(ExitCodes.NotFound, e.ExitCode);
        Assert.Contains("ghost", e.Message);
        Assert.Equal(2, _svc.List().Count);
        Assert.True(File.Exists(ConfPath("alice")));
    }

    [Fact]
    public void Remove_is_case_insensitive_and_ignores_repeats()
    {
        Init();
        _svc.Add(Names("alice", "bob"));
        var r = _svc.Remove(["ALICE", "alice"]);
        Assert.Single(r.Clients);
        Assert.False(File.Exists(ConfPath("alice")));
        Assert.Equal(["bob"], _svc.List().Select(c => c.Name));
        Assert.Equal(ExitCodes.NotFound, Assert.Throws<UserInputException>(() => _svc.Get("alice")).ExitCode);
    }

    [Fact]
    public void Remove_then_add_same_name_gets_new_keys()
    {
        Init();
        var old = _svc.Add(Names("alice")).Clients[0];
        _svc.Remove(["alice"]);
        var again = _svc.Add(Names("alice")).Clients[0];
        Assert.NotEqual(old.PrivateKey, again.PrivateKey);
        Assert.NotEqual(old.PresharedKey, again.PresharedKey);
        Assert.NotEqual(old.Address4, again.Address4);   // the old address is not handed out while fresh ones remain
    }

    // ---- block / reenable ----------------------------------------------------

    [Fact]
    public void Block_and_reenable_flip_state_and_keep_keys_and_addresses()
    {
        Init();
        _svc.Add(Names("alice", "bob"));
        var before = _svc.Get("alice").Client;
        string confBefore = File.ReadAllText(ConfPath("alice"));

        var b = _svc.Block(["alice"]);
        Assert.False(b.Live);
        Assert.False(Assert.Single(b.Clients).Enabled);
        Assert.Empty(b.Unchanged);
        var blocked = _svc.Get("alice").Client;
        Assert.False(blocked.Enabled);
        Assert.True(_svc.Get("bob").Client.Enabled);
        Assert.Equal(before with { Enabled = false }, blocked);

        var again = _svc.Block(["alice"]);
        Assert.Empty(again.Clients);
        Assert.Equal(["alice"], again.Unchanged);

        var re = _svc.Reenable(["alice", "bob"]);
        Assert.Equal(["alice"], re.Clients.Select(c => c.Name));
        Assert.Equal(["bob"], re.Unchanged);
        Assert.Equal(before, _svc.Get("alice").Client);
        Assert.Equal(confBefore, File.ReadAllText(ConfPath("alice")));
    }

    [Fact]
    public void Block_with_an_unknown_name_changes_nothing()
    {
        Init();
        _svc.Add(Names("alice"));
        Assert.Equal(ExitCodes.NotFound, Assert.Throws<UserInputException>(() => _svc.Block(["alice", "ghost"])).ExitCode);
        Assert.True(_svc.Get("alice").Client.Enabled);
        Assert.Equal(ExitCodes.UserError, Assert.Throws<UserInputException>(() => _svc.Block([])).ExitCode);
        Assert.Equal(ExitCodes.UserError, Assert.Throws<UserInputException>(() => _svc.Block(["-x"])).ExitCode);
    }

    [Fact]
    public void Blocked_client_keeps_its_address()
    {
        Init("203.0.113.0/29");
        _svc.Add(Names("a"));
        _svc.Block(["a"]);
        Assert.Equal(IPAddress.Parse("203.0.113.3"), _svc.Add(Names("b")).Clients[0].Address4);
    }

    // ---- read side -----------------------------------------------------------

    [Fact]
    public void Status_and_snapshot_without_a_live_interface()
    {
        Init();
        _svc.Add(Names("alice"));
        var st = _svc.Status();
        Assert.False(st.InterfaceUp);
        var c = Assert.Single(st.Clients);
        Assert.Null(c.Live);
        Assert.False(c.Online);
        Assert.Equal(-1, _svc.Snapshot());
    }
}
