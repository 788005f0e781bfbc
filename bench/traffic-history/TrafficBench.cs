#:project ../../src/MkbVpn/MkbVpn.csproj
// Fills an mkb-vpn store with N clients (default 10,000) and full traffic history for each (90 days
// per hour and 48 hours per minute, every bucket busy: the worst case the size bound is for), then
// times the service's sampling round over a stand-in interface with N peers. Run by
// bench/traffic-history.sh, which then serves the store and times the API and the charts.
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using MkbVpn;
using MkbVpn.Clients;
using MkbVpn.Devices;
using MkbVpn.Network;
using MkbVpn.WireGuard.Protocol;

string dir = args[0];
int n = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000;
var paths = new Paths(dir);
var clock = new BenchClock(DateTimeOffset.UtcNow);
var device = new BenchDevice("mkbbench1");
var devices = new BenchDevices(device);
var host = new ServiceHost(devices, LiveHostNetwork.Instance, LivePrivileges.Instance, FileLock.Instance, clock);
var svc = new ClientService(paths, host);
svc.Init(new InitOptions { Endpoint = "vpn.example.com", Subnet4 = "198.19.0.0/16", NoIpv6 = true, InternalNetworks = ["198.51.100.0/24"], Interface = "mkbbench1" });
var sw = Stopwatch.StartNew();
for (int i = 0; i < n; i += 1000)
    svc.Add([.. Enumerable.Range(i, Math.Min(1000, n - i)).Select(k => new AddRequest($"c{k:D5}"))]);
Console.WriteLine($"added {n} clients in {sw.Elapsed.TotalSeconds:0.0} s");

// History, in primary-key order, ending at the current minute: hours before the minute window, minutes within it.
long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 60;
long minuteStart = (now - 48 * 60) / 60 * 60, hourStart = (now - 90 * 1440) / 60 * 60;
sw.Restart();
using (var db = new SqliteConnection($"Data Source={paths.Database}"))
{
    db.Open();
    using var cmd = db.CreateCommand();
    cmd.CommandTimeout = 3600;
    cmd.CommandText = $"""
        PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000;
        BEGIN;
        WITH RECURSIVE h(m) AS (SELECT {hourStart} UNION ALL SELECT m + 60 FROM h WHERE m + 60 < {minuteStart})
        INSERT INTO traffic_hour (client_id, minute, rx, tx, online)
        SELECT c.id, h.m, abs(random() % 50000000), abs(random() % 5000000), abs(random() % 61) FROM clients c, h ORDER BY c.id, h.m;
        WITH RECURSIVE m(m) AS (SELECT {minuteStart} UNION ALL SELECT m + 1 FROM m WHERE m + 1 < {now})
        INSERT INTO traffic_minute (client_id, minute, rx, tx, online)
        SELECT c.id, m.m, abs(random() % 1000000), abs(random() % 100000), abs(random() % 2) FROM clients c, m ORDER BY c.id, m.m;
        INSERT INTO traffic_total_hour (minute, rx, tx, online) SELECT minute, SUM(rx), SUM(tx), SUM(online) FROM traffic_hour GROUP BY minute;
        INSERT INTO traffic_total_minute (minute, rx, tx, online) SELECT minute, SUM(rx), SUM(tx), SUM(online) FROM traffic_minute GROUP BY minute;
        INSERT INTO runtime (key, value) VALUES ('traffic_rolled_to', '{minuteStart}') ON CONFLICT (key) DO UPDATE SET value = excluded.value;
        COMMIT;
        PRAGMA wal_checkpoint(TRUNCATE);
        """;
    cmd.ExecuteNonQuery();
    cmd.CommandText = "SELECT (SELECT COUNT(*) FROM traffic_minute), (SELECT COUNT(*) FROM traffic_hour), (SELECT COUNT(*) FROM traffic_total_minute) + (SELECT COUNT(*) FROM traffic_total_hour)";
    using var r = cmd.ExecuteReader();
    r.Read();
    Console.WriteLine($"history rows: {r.GetInt64(0):N0} per minute, {r.GetInt64(1):N0} per hour, {r.GetInt64(2):N0} total rows ({sw.Elapsed.TotalSeconds:0} s to fill)");
}
SqliteConnection.ClearAllPools();

// Sampling: every peer busy and online each minute; the first round also rolls an hour of minutes up.
var clients = svc.List();
var rng = new Random(1);
long[] rx = new long[clients.Count], tx = new long[clients.Count];
var times = new List<double>();
devices.Up = true;
for (int round = 0; round < 6; round++)
{
    clock.Advance(TimeSpan.FromMinutes(round == 1 ? 61 : 1));
    for (int i = 0; i < clients.Count; i++)
    {
        rx[i] += rng.Next(1, 1_000_000);
        tx[i] += rng.Next(1, 100_000);
    }
    device.Peers = [.. clients.Select((c, i) => new PeerState { PublicKey = c.PublicKey, RxBytes = rx[i], TxBytes = tx[i], LastHandshake = clock.GetUtcNow().AddSeconds(-30) })];
    sw.Restart();
    var result = svc.SampleTraffic();
    double ms = sw.Elapsed.TotalMilliseconds;
    if (result.MinuteRowsRolledUp > 0)
        Console.WriteLine($"sampling round with an hourly roll-up ({result.MinuteRowsRolledUp:N0} minute rows into hours): {ms:0} ms");
    else if (round > 0)
        times.Add(ms);
}
times.Sort();
Console.WriteLine($"sampling round, {clients.Count} clients all busy and online: {times[times.Count / 2]:0} ms (median of {times.Count}; min {times[0]:0}, max {times[^1]:0})");

internal sealed class BenchClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

internal sealed class BenchDevice(string name) : IWireGuardDevice
{
    public string Name { get; } = name;

    public IReadOnlyList<PeerState> Peers { get; set; } = [];

    public InterfaceState Read() => new() { Peers = Peers };

    public void Apply(DeviceChanges changes)
    {
    }
}

internal sealed class BenchDevices(BenchDevice device) : IDeviceLocator
{
    /// <summary>Off while clients are added (no live interface, no nft), on for the sampling rounds.</summary>
    public bool Up { get; set; }

    public IWireGuardDevice? Find(string name) => Up && name == device.Name ? device : null;

    public DataPlane Create(string name, string? engine) => throw new IOException("no interface in this bench");

    public bool IsKernelLink(string name) => false;

    public void AwaitEngineExit(string name)
    {
    }
}
