using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using MkbVpn.Audit;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Storage;
using MkbVpn.Traffic;
using MkbVpn.WireGuard.Protocol;
using Xunit.Abstractions;

namespace MkbVpn.Tests;

/// <summary>
/// Traffic history on a fake clock: the sampler against an in-memory interface whose counters the
/// test sets, then the store's minute and hour rows read back through the service's queries.
/// On SQLite here; every test again on PostgreSQL: <see cref="TrafficHistoryTestsOnPostgres"/>.
/// </summary>
public class TrafficHistoryTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 12, 0, 30, TimeSpan.Zero);
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(Start);
    private readonly InMemoryHost _host;
    private readonly ClientService _svc;
    private readonly ITestOutputHelper _out;

    public TrafficHistoryTests(ITestOutputHelper output)
        : this(output, null)
    {
    }

    /// <param name="store">A PostgreSQL store location; null: SQLite in the data directory.</param>
    protected TrafficHistoryTests(ITestOutputHelper output, string? store)
    {
        _out = output;
        _host = new InMemoryHost(_time);
        _svc = new ClientService(new Paths(_dir.File("data"), store), _host.Host) { Actor = new Actor("alice-admin", Actor.Cli) };
        _svc.Init(ClientServiceTests.Options());
    }

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The service's store, whichever database it is in.</summary>
    private Store OpenStore() => Store.Open(_svc.Paths, create: false);

    private InMemoryDevice Device => _host.Device;

    private WireGuardKey KeyOf(string name) => _svc.Get(name).Client.PublicKey;

    /// <summary>The next minute's round: the clock moves on a minute, then the service samples.</summary>
    private TrafficSampleResult NextMinute()
    {
        _time.Advance(TimeSpan.FromMinutes(1));
        return _svc.SampleTraffic();
    }

    private TrafficHistory History(string? name, string from, string? step = "minute") =>
        _svc.TrafficOf(name, _svc.ParseTrafficRange(from, null, step));

    [Fact]
    public void Differences_between_samples_are_recorded_and_a_lower_counter_counts_as_a_reset()
    {
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        Device.Count(alice, 5_000, 7_000);        // traffic from before sampling began is not history
        Assert.Equal(0, _svc.SampleTraffic().RowsWritten);

        Device.Count(alice, 6_000, 7_500);
        Assert.Equal(1, NextMinute().RowsWritten);
        Device.Count(alice, 300, 200);             // the engine restarted: counters from zero
        var r = NextMinute();
        Assert.Equal(1, r.Resets);
        Device.Count(alice, 450, 260);
        NextMinute();

        var h = History("alice", "5m");
        Assert.Equal(60, h.StepSeconds);
        Assert.Equal([1_000L, 300, 150], h.Points.Where(p => p.RxBytes > 0).Select(p => p.RxBytes));
        Assert.Equal([500L, 200, 60], h.Points.Where(p => p.TxBytes > 0).Select(p => p.TxBytes));
        Assert.Equal(1_450, h.RxBytes);
        Assert.Equal(760, h.TxBytes);
        var totals = History(null, "5m");
        Assert.Equal(h.RxBytes, totals.RxBytes);
        Assert.Equal(h.TxBytes, totals.TxBytes);
    }

    [Fact]
    public void Counters_and_sums_past_four_gibibytes_are_kept_exactly()
    {
        // A busy client moves more than a 32-bit column holds in minutes: counters, rows, per-hour and total sums stay exact.
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        _svc.SampleTraffic();
        const long Big = 5L << 30;   // 5 GiB a minute
        for (int i = 1; i <= 3; i++)
        {
            Device.Count(alice, i * Big + 1, i * (Big / 5) + 3);
            NextMinute();
        }
        var h = History("alice", "10m");
        Assert.Equal(3 * Big + 1, h.RxBytes);
        Assert.Equal(3 * (Big / 5) + 3, h.TxBytes);
        Assert.Equal(Big + 1, h.Points.First(p => p.RxBytes > 0).RxBytes);
        Assert.Equal(3 * Big + 1, History(null, "3h", "hour").RxBytes);
        Assert.Equal(3 * Big + 1, History("alice", "3h", "hour").RxBytes);
    }

    [Fact]
    public void The_supervisor_samples_once_a_minute_of_its_clock()
    {
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        using var stop = new CancellationTokenSource();
        int finds = 0;
        long rx = 0;
        // Each look-up of the interface is 20 s later on the fake clock, with 100 more bytes received.
        _host.Devices.Finding = () =>
        {
            if (++finds > 60)
                stop.Cancel();
            _time.Advance(TimeSpan.FromSeconds(20));
            rx += 100;
            if (_host.Devices.Running.ContainsKey(Fixtures.Interface))
                Device.Count(alice, rx, rx / 2);
        };
        var log = new List<string>();
        _svc.Supervise(TimeSpan.Zero, stop.Token, log.Add);
        _host.Devices.Finding = null;

        Assert.Empty(log);
        var h = History("alice", "1h");
        int minutes = h.Points.Count(p => p.RxBytes > 0);
        Assert.InRange(minutes, 8, 21);                            // about one sample per minute, not one per round
        Assert.InRange(h.RxBytes, rx - 1_000, rx);                 // every byte since the first sample
    }

    [Fact]
    public void Online_minutes_follow_the_handshake_and_last_seen_stays_after_going_offline()
    {
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        Device.Seen(alice, "198.51.100.20:51000", _time.GetUtcNow());
        var seen = _time.GetUtcNow();
        _svc.Snapshot();
        _svc.SampleTraffic();
        for (int i = 0; i < 5; i++)
            NextMinute();      // online while the handshake is less than 3 minutes old, then offline

        var h = History("alice", "10m");
        Assert.Equal(3, h.Points.Sum(p => p.OnlineMinutes));
        Assert.Equal(seen, h.LastHandshake);
        Assert.Equal(seen, _svc.Get("alice").Client.LastHandshake);
    }

    [Fact]
    public void A_client_added_between_rounds_counts_from_zero_and_a_blocked_one_counts_from_zero_when_re_enabled()
    {
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        _svc.SampleTraffic();
        _time.Advance(TimeSpan.FromSeconds(20));
        _svc.Add([new AddRequest("bob")]);
        var bob = KeyOf("bob");
        Device.Count(bob, 700, 70);
        NextMinute();
        Assert.Equal(700, History("bob", "5m").RxBytes);

        Device.Count(bob, 1_700, 170);
        NextMinute();
        _svc.Block(["bob"]);
        NextMinute();                               // off the interface: its counters will start from zero
        _svc.Reenable(["bob"]);
        Device.Count(bob, 2_500, 250);              // higher than before the block, yet all of it is new
        NextMinute();

        Assert.Equal(700 + 1_000 + 2_500, History("bob", "10m").RxBytes);
    }

    [Fact]
    public void A_new_interface_counts_every_peer_from_zero()
    {
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        _svc.SampleTraffic();
        Device.Count(alice, 9_000, 900);
        NextMinute();
        _host.Devices.Lose(Fixtures.Interface);     // the engine died; 'up' makes it anew
        _svc.Up();
        Device.Count(alice, 10_000, 1_000);         // past the old counters: only a known restart tells
        NextMinute();

        Assert.Equal(19_000, History("alice", "5m").RxBytes);
    }

    [Fact]
    public void Minute_rows_are_rolled_up_into_hours_and_hours_expire_after_the_retention()
    {
        Assert.Equal(TrafficRetention.Default, _svc.GetTrafficRetention());
        Assert.Equal(new TrafficRetention(1, 2), _svc.SetTrafficRetention("1h", "2d"));
        _svc.Add([new AddRequest("alice")]);
        _svc.Up();
        var alice = KeyOf("alice");
        _svc.SampleTraffic();
        long rx = 0;
        int rolled = 0;
        for (int i = 0; i < 4 * 60; i++)
        {
            rx += 10;
            Device.Count(alice, rx, rx / 10);
            rolled += NextMinute().MinuteRowsRolledUp;
        }
        Assert.True(rolled >= 2 * 60, $"rolled up {rolled} minute rows");
        using (var store = OpenStore())
            Assert.True(store.TrafficRowCount() <= 2 * (2 * 60 + 4), $"{store.TrafficRowCount()} rows");

        // Nothing lost in the roll-up: per hour, per minute (where kept) and in total the same bytes.
        var hourly = History("alice", "5h", "hour");
        Assert.Equal(2_400, hourly.RxBytes);
        Assert.Contains(hourly.Points, p => p.RxBytes == 600 && p.OnlineMinutes == 0);
        var recent = History("alice", "30m");
        Assert.All(recent.Points.SkipLast(1), p => Assert.Equal(10, p.RxBytes));
        Assert.Equal(2_400, History(null, "5h", "hour").RxBytes);

        // Three days later the hours are gone too.
        _time.Advance(TimeSpan.FromDays(3));
        _svc.SampleTraffic();
        Assert.Equal(0, History("alice", "4d", "day").RxBytes);
        Assert.Equal(0, History(null, "4d", "day").RxBytes);
        using (var store = OpenStore())
            Assert.Equal(0, store.TrafficRowCount());
    }

    [Fact]
    public void A_removed_clients_history_goes_with_it_and_the_total_keeps_its_share()
    {
        _svc.Add([new AddRequest("alice"), new AddRequest("bob")]);
        _svc.Up();
        _svc.SampleTraffic();
        Device.Count(KeyOf("alice"), 100, 10);
        Device.Count(KeyOf("bob"), 1_000, 100);
        NextMinute();
        var bob = _svc.Get("bob").Client;

        _svc.Remove(["bob"]);

        using (var store = OpenStore())
            Assert.Empty(store.ReadTraffic(bob.Id, 0, long.MaxValue / 2, 1));
        Assert.Equal(3, Assert.Throws<UserInputException>(() => History("bob", "5m")).ExitCode);
        Assert.Equal(1_100, History(null, "5m").RxBytes);
        _svc.Add([new AddRequest("bob")]);          // a new bob (maybe the same id) starts with no history
        Assert.Equal(0, History("bob", "5m").RxBytes);
    }

    [Theory]
    [InlineData("yesterday", null, null, "from")]
    [InlineData("1h", "2h", null, "from")]
    [InlineData(null, "tomorrow", null, "to")]
    [InlineData(null, null, "week", "step")]
    [InlineData(null, null, "90", "step")]
    [InlineData("90d", null, "minute", "step")]
    public void Bad_ranges_and_steps_are_refused_naming_the_field(string? from, string? to, string? step, string field)
    {
        var e = Assert.Throws<FieldException>(() => _svc.ParseTrafficRange(from, to, step));
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ": ", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("30m", null, "history-minutes")]
    [InlineData("15d", null, "history-minutes")]
    [InlineData(null, "10y", "history-hours")]
    [InlineData(null, "4000d", "history-hours")]
    [InlineData("72h", "2d", "history-hours")]
    public void Retention_outside_its_bounds_is_refused_and_nothing_changes(string? minutes, string? hours, string field)
    {
        var e = Assert.Throws<FieldException>(() => _svc.SetTrafficRetention(minutes, hours));
        Assert.Equal(field, e.Field);
        Assert.Equal(TrafficRetention.Default, _svc.GetTrafficRetention());
        Assert.Equal(new TrafficRetention(72, 7), _svc.SetTrafficRetention("72h", "1w"));
    }

    [Fact]
    public void The_automatic_step_keeps_the_points_bounded_and_aligned()
    {
        var day = _svc.ParseTrafficRange("24h", null, null);
        Assert.Equal(5, day.StepMinutes);
        Assert.Equal(0, day.FromMinute % day.StepMinutes);
        var quarter = _svc.ParseTrafficRange("90d", null, null);
        Assert.Equal(1440, quarter.StepMinutes);
        Assert.InRange(quarter.Points, 90, 91);
        Assert.Equal(60, _svc.ParseTrafficRange("3d", null, null).StepMinutes);   // before the minute history: hours at least
        Assert.InRange(_svc.ParseTrafficRange("90d", null, "hour").Points, 2160, 2161);
    }

    [Fact]
    public void Ten_thousand_clients_are_sampled_in_one_round()
    {
        const int n = 10_000;
        var peers = new List<PeerState>(n);
        using (var store = OpenStore())
        {
            using var tx = store.BeginWrite();
            for (int i = 0; i < n; i++)
            {
                var bytes = new byte[32];
                BitConverter.TryWriteBytes(bytes, i + 1);
                var key = WireGuardKey.FromBytes(bytes);
                store.InsertClient(new Client
                {
                    Id = 0, Name = $"c{i:D5}", PrivateKey = null, PublicKey = key, PresharedKey = Fixtures.Key(1),
                    Enabled = true, CreatedAt = Start - TimeSpan.FromDays(1),
                });
                peers.Add(new PeerState { PublicKey = key, RxBytes = 0, TxBytes = 0 });
            }
            tx.Commit();
        }
        using (var store = OpenStore())
        {
            _svc.SampleTraffic(store, peers);
            _time.Advance(TimeSpan.FromMinutes(1));
            var busy = peers.Select((p, i) => p with { RxBytes = 1_000 + i, TxBytes = 10, LastHandshake = _time.GetUtcNow() }).ToList();
            var clock = Stopwatch.StartNew();
            var r = _svc.SampleTraffic(store, busy, recordLastSeen: false);
            _out.WriteLine($"one round of {n} clients: {clock.ElapsedMilliseconds} ms (a figure, not a limit: bench/traffic-history.sh measures it)");
            Assert.Equal(n, r.Peers);
            Assert.Equal(n, r.RowsWritten);
            Assert.Equal(n + 1, store.TrafficRowCount());
        }
        var total = History(null, "5m");
        Assert.Equal(n * 1_000L + (long)n * (n - 1) / 2, total.RxBytes);
        Assert.Equal(n, total.Points.Max(p => p.OnlineMinutes));
        Assert.Equal(1_000 + 4_242, History("c04242", "5m").RxBytes);

        // Two days later every client's minute moves into its hour, chunk after chunk of clients.
        _time.Advance(TimeSpan.FromHours(50));
        using (var store = OpenStore())
        {
            var r = _svc.SampleTraffic(store, peers.Select((p, i) => p with { RxBytes = 1_000 + i, TxBytes = 10 }).ToList());
            Assert.Equal(n, r.MinuteRowsRolledUp);
            Assert.Equal(n + 1, store.TrafficRowCount());
        }
        Assert.Equal(total.RxBytes, History(null, "3d", "hour").RxBytes);
        Assert.Equal(1_000 + 9_999, History("c09999", "3d", "hour").RxBytes);
        Assert.Equal(10_001L * (49 * 60 + 90 * 24 + 1), TrafficRetention.Default.MaxRows(n));   // 51.0 million
    }
}

/// <summary>Every test of <see cref="TrafficHistoryTests"/> again, with the store in PostgreSQL (a real server: <see cref="PostgresServer"/>).</summary>
[Collection(PostgresCollection.Name)]
public sealed class TrafficHistoryTestsOnPostgres(PostgresServer pg, ITestOutputHelper output) : TrafficHistoryTests(output, pg.NewDatabase());
