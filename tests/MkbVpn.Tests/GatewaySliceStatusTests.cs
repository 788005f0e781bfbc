using System.Net;
using System.Text.Json;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Gateways;
using MkbVpn.Json;

namespace MkbVpn.Tests;

/// <summary>Gateway slices (gateway add --subnet) and 'status' from the gateways' reports, on both backends.</summary>
[Collection(PostgresCollection.Name)]
public sealed class GatewaySliceStatusTests(PostgresServer pg)
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static (ClientService Service, ManualTime Time) Service(TestStore db)
    {
        var time = new ManualTime(Start);
        var host = new InMemoryHost(time);
        return (new ClientService(db.Paths("data"), host.Host) { Actor = new Actor("gw-admin", Actor.Cli) }, time);
    }

    private static GatewayRequest Gw(string name, int port, string? subnet4 = null) =>
        new(name) { Endpoint = $"vpn-{name}.example.com:{port}", ListenPort = port, Interface = "mkbunit" + name[0], Subnet4 = subnet4 };

    /// <summary>The store as the service opens it (on SQLite: the data directory's file).</summary>
    private static Storage.Store OpenStore(TestStore db) =>
        db.Location is { } pg ? db.Open(create: false) : Storage.Store.Open(db.Paths("data").Database, create: false);

    private static string? Address4(ClientService svc, string name) => svc.Get(name).Client.Address4?.ToString();

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void A_gateway_slice_gives_its_clients_their_addresses_and_disagreeing_slices_are_refused(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (svc, _) = Service(db);
        svc.Init(ClientServiceTests.Options());
        svc.Add([new AddRequest("bob")]);
        Assert.Equal("203.0.113.2", Address4(svc, "bob"));

        // bob is served by every gateway, so by a new one too: its address must be in the slice.
        var outside = Assert.Throws<FieldException>(() => svc.AddGateway(Gw("berlin", 51821, "203.0.113.128/25")));
        Assert.Equal(("subnet", ExitCodes.Conflict), (outside.Field, outside.ExitCode));
        Assert.Contains("bob", outside.Message, StringComparison.Ordinal);
        Assert.Single(svc.ListGateways());   // nothing added
        svc.Set(new SetRequest("bob") { Gateways = ["main"] });

        var berlin = svc.AddGateway(Gw("berlin", 51821, "203.0.113.128/25"));
        Assert.Equal(IPNetwork.Parse("203.0.113.128/25"), berlin.Subnet4);
        Assert.Null(berlin.Subnet6);
        Assert.Equal(IPAddress.Parse("203.0.113.129"), berlin.Serve(svc.GetServer()).ServerAddress4);
        Assert.Contains(svc.AuditLog(null, null).Items, e => e.Action == "gateway add" && e.Detail!.Contains("subnets 203.0.113.128/25", StringComparison.Ordinal));
        Assert.Equal("203.0.113.128/25", GatewayDto.Of(svc.ListGateways().Single(v => v.Gateway.Name == "berlin")).Subnet4);

        // Refused slices: overlapping another, holding the registry's server address, straddling its subnet, wrong family, too small.
        void Refused(GatewayRequest r, string field, int exit = ExitCodes.UserError)
        {
            var e = Assert.Throws<FieldException>(() => svc.AddGateway(r));
            Assert.Equal((field, exit), (e.Field, e.ExitCode));
        }
        Refused(Gw("hamburg", 51822, "203.0.113.192/26"), "subnet", ExitCodes.Conflict);
        Refused(Gw("hamburg", 51822, "203.0.113.0/25"), "subnet");
        Refused(Gw("hamburg", 51822, "203.0.112.0/23"), "subnet");
        Refused(Gw("hamburg", 51822, "fd00:1::/64"), "subnet");
        Refused(Gw("hamburg", 51822, "203.0.113.64/32"), "subnet");
        Refused(Gw("hamburg", 51822) with { Subnet6 = "203.0.113.64/26" }, "subnet6");
        Refused(Gw("hamburg", 51822, "203.0.113.1/25"), "subnet");   // host bits set

        // A subnet of its own, outside the registry's.
        var hamburg = svc.AddGateway(Gw("hamburg", 51822, "198.51.100.0/26") with { Subnet6 = "fd00:99::/64" });
        Assert.Equal(IPNetwork.Parse("fd00:99::/64"), hamburg.Subnet6);

        svc.Add([
            new AddRequest("alice") { Gateways = ["berlin"] },
            new AddRequest("carol") { Gateways = ["main"] },
            new AddRequest("erin") { Gateways = ["main", "berlin"] },
            new AddRequest("frank") { Gateways = ["hamburg"] },
        ]);
        Assert.Equal("203.0.113.130", Address4(svc, "alice"));   // berlin's slice: .128 network, .129 the gateway
        Assert.Equal("203.0.113.3", Address4(svc, "carol"));     // main: the registry's subnet, berlin's slice skipped
        Assert.Equal("203.0.113.131", Address4(svc, "erin"));    // main and berlin share berlin's slice
        Assert.Equal("198.51.100.2", Address4(svc, "frank"));
        Assert.StartsWith("fd00:99::", svc.Get("frank").Client.Address6!.ToString(), StringComparison.Ordinal);
        Assert.StartsWith("fd00:1234:5678::", svc.Get("alice").Client.Address6!.ToString(), StringComparison.Ordinal);
        Assert.Contains("Address = 203.0.113.130/32", svc.ConfigText("alice", "berlin"), StringComparison.Ordinal);

        // Clients whose gateways share no address: refused with the field, nothing added.
        var all = Assert.Throws<FieldException>(() => svc.Add([new AddRequest("dave")]));
        Assert.Equal("gateway", all.Field);
        Assert.Contains("--gateway", all.Message, StringComparison.Ordinal);
        Assert.Equal("gateway", Assert.Throws<FieldException>(() => svc.Add([new AddRequest("dave") { Gateways = ["berlin,hamburg"] }])).Field);
        Assert.Throws<UserInputException>(() => svc.Get("dave"));

        // A chosen address in another gateway's slice is refused; carol's own subnet is main's.
        var taken = Assert.Throws<UserInputException>(() => svc.Add([new AddRequest("gina") { Gateways = ["main"], Address4 = IPAddress.Parse("203.0.113.140") }]));
        Assert.Contains("slice", taken.Message, StringComparison.Ordinal);
        svc.Add([new AddRequest("gina") { Gateways = ["main"], Address4 = IPAddress.Parse("203.0.113.40") }]);

        // 'set --gateway' keeps an address only where the new gateways route it.
        svc.Set(new SetRequest("alice") { Gateways = ["main"] });   // .130 is in main's subnet too
        var moved = Assert.Throws<FieldException>(() => svc.Set(new SetRequest("carol") { Gateways = ["berlin"] }));
        Assert.Equal("gateway", moved.Field);
        Assert.Contains("203.0.113.3", moved.Message, StringComparison.Ordinal);
        Assert.Equal("gateway", Assert.Throws<FieldException>(() => svc.Set(new SetRequest("frank") { Gateways = ["main"] })).Field);
        Assert.Equal(["main"], svc.GatewaysOf("carol"));
    }

    [Fact]
    public void The_address_pool_skips_other_slices_even_huge_ones()
    {
        var none = new HashSet<UInt128>();
        var v6 = new Addressing.AddressPool(IPNetwork.Parse("fd00:1::/64"));
        // Half of a /64 skipped: the next address is the other half's first, found at once.
        Assert.Equal(IPAddress.Parse("fd00:1::8000:0:0:0"), v6.Next(none, [], none, [IPNetwork.Parse("fd00:1::/65")]));
        var v4 = new Addressing.AddressPool(IPNetwork.Parse("203.0.113.0/24"));
        Assert.Equal(IPAddress.Parse("203.0.113.64"), v4.Next(none, [], none, [IPNetwork.Parse("203.0.113.0/26")]));
        Assert.Equal(IPAddress.Parse("203.0.113.2"), v4.Next(none, [], none, [IPNetwork.Parse("203.0.113.128/25")]));
        // Everything outside the skipped slice taken, a released address inside it: full, not reused.
        var inUse = Enumerable.Range(2, 126).Select(i => Addressing.AddressPool.ToNumber(IPAddress.Parse($"203.0.113.{i}"))).ToHashSet();
        var released = Addressing.AddressPool.ToNumber(IPAddress.Parse("203.0.113.200"));
        Assert.Null(v4.Next(inUse, [released], new HashSet<UInt128> { released }, [IPNetwork.Parse("203.0.113.128/25")]));
        Assert.Equal(IPAddress.Parse("203.0.113.128"), v4.Next(inUse, [released], new HashSet<UInt128> { released }, []));   // without the skip: the slice is free
    }

    [Fact]
    public void Without_slices_addresses_are_allocated_as_before()
    {
        using var db = new TestStore(Backend.Sqlite, pg);
        var (svc, _) = Service(db);
        svc.Init(ClientServiceTests.Options());
        svc.AddGateway(Gw("berlin", 51821));
        svc.Add([new AddRequest("a"), new AddRequest("b") { Gateways = ["berlin"] }, new AddRequest("c") { Gateways = ["main"] }]);
        Assert.Equal(["203.0.113.2", "203.0.113.3", "203.0.113.4"], new[] { "a", "b", "c" }.Select(n => Address4(svc, n)));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Status_shows_every_gateways_reports_per_client_and_marks_a_silent_gateway_stale(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var (svc, time) = Service(db);
        svc.Init(ClientServiceTests.Options());
        svc.AddGateway(Gw("berlin", 51821));
        svc.Add([new AddRequest("alice"), new AddRequest("bob") { Gateways = ["berlin"] }, new AddRequest("carol") { Gateways = ["main"] }]);

        // No gateway has reported: a single-host server, status is the local interface's.
        Assert.Null(svc.GatewayStatus(null));
        var never = svc.GatewayStatus("berlin")!;
        Assert.Equal("never_seen", Assert.Single(never.Gateways).State);
        Assert.Equal(["alice", "bob"], never.Clients.Select(c => c.Client.Name));

        long Id(string name) => svc.ListGateways().Single(v => v.Gateway.Name == name).Gateway.Id;
        long Client(string name) => svc.Get(name).Client.Id;
        using (var store = OpenStore(db))
        {
            store.ReportGateway(Id("main"), Start, "built-in", [
                new GatewayPeerReport(Id("main"), Client("alice"), Start.AddSeconds(-10), "198.18.0.5:4000", 100, 200, Start),
                new GatewayPeerReport(Id("main"), Client("carol"), Start.AddHours(-1), "198.18.0.7:4000", 5, 6, Start)], 2);
            store.ReportGateway(Id("berlin"), Start, "kernel", [
                new GatewayPeerReport(Id("berlin"), Client("alice"), Start.AddSeconds(-60), "198.18.1.5:5000", 1000, 2000, Start),
                new GatewayPeerReport(Id("berlin"), Client("bob"), Start.AddSeconds(-5), "198.18.1.6:5000", 7, 8, Start)], 2);
        }

        var report = svc.GatewayStatus(null)!;
        Assert.Equal(["berlin", "main"], report.Gateways.Select(v => v.Gateway.Name));
        Assert.All(report.Gateways, v => Assert.Equal("online", v.State));
        var alice = report.Clients.Single(c => c.Client.Name == "alice");
        Assert.Equal(["berlin", "main"], alice.Gateways.Select(g => g.Gateway.Name));
        Assert.All(alice.Gateways, g => Assert.True(g.Online));
        Assert.Equal("main", alice.Best!.Gateway.Name);   // the most recent handshake
        Assert.Equal("198.18.1.5:5000", alice.Gateways[0].Report!.Endpoint);
        Assert.False(report.Clients.Single(c => c.Client.Name == "carol").Online);   // an hour-old handshake
        Assert.Equal(["berlin"], report.Clients.Single(c => c.Client.Name == "bob").Gateways.Select(g => g.Gateway.Name));

        var dto = ClientDto.Of(alice, time.GetUtcNow());
        Assert.Equal(("198.18.0.5:4000", 1100L, 2200L, true), (dto.Endpoint, dto.RxBytes, dto.TxBytes, dto.Online));
        string json = JsonSerializer.Serialize(dto, MkbVpnJson.Default.ClientDto);
        Assert.Contains("\"gateways\":[{\"gateway\":\"berlin\",\"state\":\"online\"", json.Replace(" ", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal), StringComparison.Ordinal);

        // Berlin stops reporting: 40 s later its entries are stale (not online), main's are fresh.
        time.Advance(TimeSpan.FromSeconds(40));
        using (var store = OpenStore(db))
            store.ReportGateway(Id("main"), time.GetUtcNow(), "built-in", [], 2);
        report = svc.GatewayStatus(null)!;
        Assert.Equal("stale", report.Gateways.Single(v => v.Gateway.Name == "berlin").State);
        alice = report.Clients.Single(c => c.Client.Name == "alice");
        var staleEntry = alice.Gateways.Single(g => g.Gateway.Name == "berlin");
        Assert.True(staleEntry.Stale);
        Assert.False(staleEntry.Online);
        Assert.Equal("stale", GatewayPeerDto.Of(staleEntry).State);
        Assert.True(alice.Online);   // main still has her (handshake 50 s ago)
        Assert.False(report.Clients.Single(c => c.Client.Name == "bob").Online);

        // One gateway; one client; errors name the field.
        var one = svc.GatewayStatus("BERLIN", "bob")!;
        Assert.Equal("berlin", Assert.Single(one.Gateways).Gateway.Name);
        Assert.Equal("bob", Assert.Single(one.Clients).Client.Name);
        Assert.Equal(["berlin"], svc.GatewaysServing("bob").Select(g => g.Gateway.Name));
        Assert.Equal(2, svc.GatewaysServing("alice").Count);
        var unknown = Assert.Throws<FieldException>(() => svc.GatewayStatus("paris"));
        Assert.Equal(("gateway", ExitCodes.NotFound), (unknown.Field, unknown.ExitCode));
        Assert.Equal(("gateway", ExitCodes.NotFound), (Assert.Throws<FieldException>(() => svc.GatewayStatus("berlin", "carol")).Field, ExitCodes.NotFound));
    }
}
