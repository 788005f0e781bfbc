using System.Globalization;
using MkbVpn.Devices;
using MkbVpn.Storage;
using MkbVpn.Traffic;

namespace MkbVpn.Clients;

/// <summary>A validated history query: bucket starts are multiples of the step (epoch minutes, UTC); To is exclusive.</summary>
public sealed record TrafficRange(long FromMinute, long ToMinute, long StepMinutes)
{
    public int Points => (int)((ToMinute - FromMinute) / StepMinutes);
}

/// <summary>
/// Traffic history: the running service samples every client's byte counters and handshake once a
/// minute from the live interface and keeps the differences in the store (per minute, then per
/// hour); the CLI, the API and the charts read them back in buckets.
/// </summary>
public sealed partial class ClientService
{
    /// <summary>The most points one history answer holds (a refused step says so).</summary>
    public const int MaxTrafficPoints = 3000;

    /// <summary>Steps an automatic choice picks from, in minutes.</summary>
    private static readonly long[] AutoSteps = [1, 5, 15, 60, 360, 1440, 10080];

    private const string SampledAtKey = "traffic_sampled_at", RolledToKey = "traffic_rolled_to";

    internal static long EpochMinute(DateTimeOffset t) => (long)Math.Floor(t.ToUnixTimeSeconds() / 60.0);

    internal static DateTimeOffset FromEpochMinute(long minute) => DateTimeOffset.FromUnixTimeSeconds(minute * 60);

    public TrafficRetention GetTrafficRetention()
    {
        using var store = OpenStore();
        store.RequireServer();
        return store.GetTrafficRetention();
    }

    /// <summary>Changes how long history is kept ('init --change --history-minutes 48h --history-hours 90d'); the next hourly roll-up applies it.</summary>
    public TrafficRetention SetTrafficRetention(string? minutes, string? hours)
    {
        using var held = Lock();
        using var store = OpenStore();
        store.RequireServer();
        var before = store.GetTrafficRetention();
        var after = MkbVpn.Traffic.TrafficRetention.Parse(minutes, hours, before);
        if (after == before)
            return after;
        using var tx = store.BeginWrite();
        store.SetTrafficRetention(after);
        store.SetRuntime(RolledToKey, null);   // apply at the next sample
        store.AppendAudit(Now, Actor, "init change", null, null, $"traffic history: per minute {after.MinuteHours}h, per hour {after.HourDays}d");
        tx.Commit();
        return after;
    }

    /// <summary>One sampling round from the live interface (the supervisor calls it once a minute).</summary>
    public TrafficSampleResult SampleTraffic()
    {
        using var store = OpenStore();
        var server = store.RequireServer();
        var device = Devices.Find(server.Interface);
        if (device is null)
            return new TrafficSampleResult(false, 0, 0, 0, 0);
        return SampleTraffic(store, device.Read().Peers);
    }

    /// <summary>
    /// Takes each peer's counters, subtracts the last sample's, and records the differences for the
    /// current minute. A counter lower than last time was reset (the engine restarted, the peer was
    /// re-added): the new value is the difference. A peer missing from the interface (blocked,
    /// interface lost) comes back with counters from zero, so its last counters become zero. A client
    /// seen for the first time counts from zero when it was created after the previous round, else
    /// the round only takes its counters (traffic from before sampling began is not history). Each
    /// peer's latest handshake is kept with the client too ("last seen").
    /// </summary>
    internal TrafficSampleResult SampleTraffic(Store store, IReadOnlyList<PeerState> peers)
    {
        var now = Now;
        long minute = EpochMinute(now);
        var clients = new Dictionary<string, (long Id, DateTimeOffset CreatedAt)>(StringComparer.Ordinal);
        foreach (var (id, key, created) in store.ClientKeys())
            clients[key] = (id, created);
        var last = store.LoadTrafficCounters();
        DateTimeOffset? previousRound = store.GetRuntime(SampledAtKey) is { } s
            ? DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) : null;
        var deltas = new List<TrafficDelta>(peers.Count);
        var counters = new List<(long, TrafficCounters)>(peers.Count);
        var seen = new HashSet<long>();
        int resets = 0;
        foreach (var p in peers)
        {
            if (!clients.TryGetValue(p.PublicKey.ToBase64(), out var c) || !seen.Add(c.Id))
                continue;   // a stray peer: not ours
            long rx = Math.Max(0, p.RxBytes), tx = Math.Max(0, p.TxBytes);
            long dRx, dTx;
            if (last.TryGetValue(c.Id, out var before))
            {
                if (rx < before.Rx || tx < before.Tx)
                {
                    resets++;
                    (dRx, dTx) = (rx, tx);
                }
                else
                {
                    (dRx, dTx) = (rx - before.Rx, tx - before.Tx);
                }
            }
            else
            {
                (dRx, dTx) = previousRound is { } prev && c.CreatedAt >= prev ? (rx, tx) : (0, 0);
            }
            bool online = p.LastHandshake is { } hs && now - hs < OnlineWindow;
            deltas.Add(new TrafficDelta(c.Id, dRx, dTx, online));
            if (before.Rx != rx || before.Tx != tx || !last.ContainsKey(c.Id))
                counters.Add((c.Id, new TrafficCounters(rx, tx, minute)));
        }
        foreach (var (id, before) in last)
            if (!seen.Contains(id) && (before.Rx != 0 || before.Tx != 0))
                counters.Add((id, before with { Rx = 0, Tx = 0 }));

        using (var write = store.BeginWrite())
        {
            store.RecordTraffic(minute, deltas, counters);
            // Last seen: the latest handshake (and endpoint) stays in the store after the client goes offline.
            store.RecordLive(peers.Select(p => (p.PublicKey, p.Endpoint, p.LastHandshake)));
            store.SetRuntime(SampledAtKey, now.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            write.Commit();
        }
        int rolled = RollUpTraffic(store, minute);
        return new TrafficSampleResult(true, deltas.Count, resets, deltas.Count(d => d.Rx != 0 || d.Tx != 0 || d.Online), rolled);
    }

    /// <summary>Clients per roll-up transaction: an hour of minute rows for 500 busy clients is 30,000 rows.</summary>
    private const long RollUpChunk = 500;

    /// <summary>
    /// Once an hour: the minute rows that left the minute window become hour rows, the hour rows that
    /// left the hour window go. In chunks of clients, a transaction each; the hour is marked done after
    /// the last chunk, so a round that was interrupted is simply repeated (the chunks done have nothing left to move).
    /// </summary>
    private static int RollUpTraffic(Store store, long minute)
    {
        var retention = store.GetTrafficRetention();
        long cutoff = (minute - retention.MinuteHours * 60L) / 60 * 60;
        if (store.GetRuntime(RolledToKey) == cutoff.ToString(CultureInfo.InvariantCulture))
            return 0;
        long hourCutoff = (minute - retention.HourDays * 1440L) / 60 * 60;
        long maxId = store.MaxClientId();
        int rolled = 0;
        for (long lo = 0; lo <= maxId; lo += RollUpChunk)
        {
            using var write = store.BeginWrite();
            rolled += store.RollUpClientTraffic(cutoff, hourCutoff, lo, lo + RollUpChunk).MinuteRows;
            write.Commit();
        }
        using (var write = store.BeginWrite())
        {
            store.RollUpTotalTraffic(cutoff, hourCutoff);
            store.SetRuntime(RolledToKey, cutoff.ToString(CultureInfo.InvariantCulture));
            write.Commit();
        }
        return rolled;
    }

    /// <summary>
    /// Validates a history query (the one home of these rules for the CLI and the API): from and to
    /// as 'mkb-vpn log --since' takes them (24h, 2026-11-01, 2026-11-01T08:00Z; default: the last
    /// 24 hours up to now), step as minute, hour, day or seconds (a multiple of 60; default: the
    /// smallest of 1m, 5m, 15m, 1h, 6h, 1d, 7d giving at most <paramref name="autoPoints"/> points,
    /// and no finer than an hour before the minute history begins). At most <see cref="MaxTrafficPoints"/> points.
    /// </summary>
    public TrafficRange ParseTrafficRange(string? from, string? to, string? step, int autoPoints = 300, string fromField = "from", string toField = "to")
    {
        var now = Now;
        var end = string.IsNullOrWhiteSpace(to) ? now : Access.When.ParseSince(to, now, toField);
        var start = string.IsNullOrWhiteSpace(from) ? end - TimeSpan.FromHours(24) : Access.When.ParseSince(from, now, fromField);
        if (start >= end)
            throw new FieldException(fromField, $"{fromField}: {Access.When.Format(start)} is not before {Access.When.Format(end)}");
        long fromMinute = EpochMinute(start), toMinute = EpochMinute(end - TimeSpan.FromTicks(1)) + 1;
        long stepMinutes;
        if (string.IsNullOrWhiteSpace(step))
        {
            var retention = GetTrafficRetention();
            long finest = fromMinute < EpochMinute(now) - retention.MinuteHours * 60L ? 60 : 1;
            stepMinutes = AutoSteps.Where(s => s >= finest).FirstOrDefault(s => Count(fromMinute, toMinute, s) <= autoPoints, AutoSteps[^1]);
        }
        else
        {
            stepMinutes = step.Trim().ToLowerInvariant() switch
            {
                "minute" or "1m" => 1,
                "hour" or "1h" => 60,
                "day" or "1d" => 1440,
                var t when long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds) && seconds % 60 == 0 && seconds is >= 60 and <= 31L * 86400 => seconds / 60,
                _ => throw new FieldException("step", $"step: '{UserInputException.Shown(step)}' is not minute, hour, day or a number of seconds (a multiple of 60, at most 31 days)"),
            };
        }
        long points = Count(fromMinute, toMinute, stepMinutes);
        if (points > MaxTrafficPoints)
            throw new FieldException("step", $"step: {points} points from {Access.When.Format(start)} to {Access.When.Format(end)}; at most {MaxTrafficPoints}: take a larger step or a shorter range");
        long alignedFrom = FloorTo(fromMinute, stepMinutes);
        return new TrafficRange(alignedFrom, alignedFrom + points * stepMinutes, stepMinutes);
    }

    private static long FloorTo(long minute, long step) => (long)Math.Floor(minute / (double)step) * step;

    private static long Count(long from, long to, long step)
    {
        long start = FloorTo(from, step);
        return (to - start + step - 1) / step;
    }

    /// <summary>A client's history (<paramref name="name"/>), or the total over all clients (null): one point per bucket, zeros where nothing was recorded.</summary>
    public TrafficHistory TrafficOf(string? name, TrafficRange range)
    {
        using var store = OpenStore();
        store.RequireServer();
        long? id = null;
        string? client = null;
        DateTimeOffset? handshake = null;
        if (name is not null)
        {
            var c = store.RequireClient(name);
            (id, client, handshake) = (c.Id, c.Name, c.LastHandshake);
        }
        var rows = store.ReadTraffic(id, range.FromMinute, range.ToMinute, range.StepMinutes);
        var points = new TrafficPoint[range.Points];
        int next = 0;
        long rx = 0, tx = 0;
        for (int i = 0; i < points.Length; i++)
        {
            long at = range.FromMinute + i * range.StepMinutes;
            var point = new TrafficPoint(FromEpochMinute(at), 0, 0, 0);
            while (next < rows.Count && rows[next].Minute < at)
                next++;
            if (next < rows.Count && rows[next].Minute == at)
            {
                var r = rows[next++];
                point = point with { RxBytes = r.Rx, TxBytes = r.Tx, OnlineMinutes = r.Online };
                rx += r.Rx;
                tx += r.Tx;
            }
            points[i] = point;
        }
        return new TrafficHistory(client, FromEpochMinute(range.FromMinute), FromEpochMinute(range.ToMinute), (int)(range.StepMinutes * 60), rx, tx, handshake, points);
    }
}
