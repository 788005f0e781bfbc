using System.Data.Common;
using System.Globalization;
using MkbVpn.Traffic;

namespace MkbVpn.Storage;

/// <summary>
/// Traffic history (schema 6): what the running service samples once a minute, per client and in
/// total, per minute for a while and per hour for longer. Plain SQL (INTEGER columns, ON CONFLICT
/// upserts, IN-subqueries): the same text runs on SQLite and PostgreSQL. Times are epoch minutes (UTC).
/// </summary>
public sealed partial class Store
{
    /// <summary>How long minute and hour rows are kept (the server row's two columns).</summary>
    internal TrafficRetention GetTrafficRetention()
    {
        using var cmd = Command("SELECT traffic_minute_hours, traffic_hour_days FROM server WHERE id = 1");
        using var r = Reader(cmd);
        return r.Read() ? new TrafficRetention(Int32(r, 0), Int32(r, 1)) : TrafficRetention.Default;
    }

    internal void SetTrafficRetention(TrafficRetention retention) =>
        Execute("UPDATE server SET traffic_minute_hours = @m, traffic_hour_days = @h WHERE id = 1",
            ("@m", retention.MinuteHours), ("@h", retention.HourDays));

    /// <summary>Every client's id, public key (base64) and creation time: what the sampler matches peers with.</summary>
    internal List<(long Id, string PublicKey, DateTimeOffset CreatedAt)> ClientKeys()
    {
        using var cmd = Command("SELECT id, public_key, created_at FROM clients");
        return Rows(cmd, r => (Int64(r, 0), r.GetString(1), ParseTime(r.GetString(2))), "clients");
    }

    /// <summary>Each client's counters at its last sample.</summary>
    internal Dictionary<long, TrafficCounters> LoadTrafficCounters()
    {
        using var cmd = Command("SELECT client_id, rx, tx, minute FROM traffic_counters");
        using var r = Reader(cmd);
        var map = new Dictionary<long, TrafficCounters>();
        while (r.Read())
            map[Int64(r, 0)] = new TrafficCounters(Int64(r, 1), Int64(r, 2), Int64(r, 3));
        return map;
    }

    /// <summary>Forgets every peer's counters as zero (the interface was made anew: its counters start from zero).</summary>
    internal void ZeroTrafficCounters() => Execute("UPDATE traffic_counters SET rx = 0, tx = 0");

    /// <summary>
    /// Writes one round of samples (in the caller's transaction): the per-client minute rows, the
    /// total's minute row, and the counters to take the next differences from. Rows for the same
    /// minute add up (a service restarted within the minute samples it twice).
    /// </summary>
    internal void RecordTraffic(long minute, IReadOnlyList<TrafficDelta> deltas, IReadOnlyList<(long ClientId, TrafficCounters Counters)> counters)
    {
        using (var cmd = Command("""
            INSERT INTO traffic_minute (client_id, minute, rx, tx, online) VALUES (@c, @m, @rx, @tx, @on)
            ON CONFLICT (client_id, minute) DO UPDATE SET rx = traffic_minute.rx + excluded.rx, tx = traffic_minute.tx + excluded.tx,
              online = CASE WHEN excluded.online > traffic_minute.online THEN excluded.online ELSE traffic_minute.online END
            """))
        {
            var c = RowParameter(cmd, "@c", System.Data.DbType.Int64);
            RowParameter(cmd, "@m", System.Data.DbType.Int64).Value = minute;
            var rx = RowParameter(cmd, "@rx", System.Data.DbType.Int64);
            var tx = RowParameter(cmd, "@tx", System.Data.DbType.Int64);
            var on = RowParameter(cmd, "@on", System.Data.DbType.Int64);
            cmd.Prepare();
            foreach (var d in deltas)
            {
                if (d.Rx == 0 && d.Tx == 0 && !d.Online)
                    continue;   // idle and offline: no row (a missing row reads as zero)
                (c.Value, rx.Value, tx.Value, on.Value) = (d.ClientId, d.Rx, d.Tx, d.Online ? 1 : 0);
                Run(cmd);
            }
        }
        long totalRx = deltas.Sum(d => d.Rx), totalTx = deltas.Sum(d => d.Tx), online = deltas.Count(d => d.Online);
        if (totalRx != 0 || totalTx != 0 || online != 0)
        {
            Execute("""
                INSERT INTO traffic_total_minute (minute, rx, tx, online) VALUES (@m, @rx, @tx, @on)
                ON CONFLICT (minute) DO UPDATE SET rx = traffic_total_minute.rx + excluded.rx, tx = traffic_total_minute.tx + excluded.tx,
                  online = CASE WHEN excluded.online > traffic_total_minute.online THEN excluded.online ELSE traffic_total_minute.online END
                """, ("@m", minute), ("@rx", totalRx), ("@tx", totalTx), ("@on", online));
        }
        using (var cmd = Command("""
            INSERT INTO traffic_counters (client_id, rx, tx, minute) VALUES (@c, @rx, @tx, @m)
            ON CONFLICT (client_id) DO UPDATE SET rx = excluded.rx, tx = excluded.tx, minute = excluded.minute
            """))
        {
            var c = RowParameter(cmd, "@c", System.Data.DbType.Int64);
            var rx = RowParameter(cmd, "@rx", System.Data.DbType.Int64);
            var tx = RowParameter(cmd, "@tx", System.Data.DbType.Int64);
            var m = RowParameter(cmd, "@m", System.Data.DbType.Int64);
            cmd.Prepare();
            foreach (var (id, k) in counters)
            {
                (c.Value, rx.Value, tx.Value, m.Value) = (id, k.Rx, k.Tx, k.Minute);
                Run(cmd);
            }
        }
    }

    /// <summary>
    /// Moves the minute rows before <paramref name="minuteCutoff"/> (an hour boundary) of the clients
    /// with ids in [<paramref name="fromId"/>, <paramref name="toId"/>) into hour rows, and deletes
    /// their hour rows before <paramref name="hourCutoff"/>. The statements seek by client (the IN list
    /// drives the primary key), never scanning the whole table; the caller takes the clients in
    /// chunks, a transaction each, so no write holds the database for long.
    /// </summary>
    internal (int MinuteRows, int HourRowsDeleted) RollUpClientTraffic(long minuteCutoff, long hourCutoff, long fromId, long toId)
    {
        const string Clients = "client_id IN (SELECT id FROM clients WHERE id >= @lo AND id < @hi)";
        Execute($"""
            INSERT INTO traffic_hour (client_id, minute, rx, tx, online)
            SELECT client_id, (minute / 60) * 60, SUM(rx), SUM(tx), SUM(online) FROM traffic_minute WHERE {Clients} AND minute < @cut
            GROUP BY client_id, (minute / 60) * 60
            ON CONFLICT (client_id, minute) DO UPDATE SET rx = traffic_hour.rx + excluded.rx, tx = traffic_hour.tx + excluded.tx, online = traffic_hour.online + excluded.online
            """, ("@cut", minuteCutoff), ("@lo", fromId), ("@hi", toId));
        int moved = Execute($"DELETE FROM traffic_minute WHERE {Clients} AND minute < @cut", ("@cut", minuteCutoff), ("@lo", fromId), ("@hi", toId));
        int deleted = Execute($"DELETE FROM traffic_hour WHERE {Clients} AND minute < @cut", ("@cut", hourCutoff), ("@lo", fromId), ("@hi", toId));
        return (moved, deleted);
    }

    /// <summary>The same for the total over all clients.</summary>
    internal void RollUpTotalTraffic(long minuteCutoff, long hourCutoff)
    {
        Execute("""
            INSERT INTO traffic_total_hour (minute, rx, tx, online)
            SELECT (minute / 60) * 60, SUM(rx), SUM(tx), SUM(online) FROM traffic_total_minute WHERE minute < @cut
            GROUP BY (minute / 60) * 60
            ON CONFLICT (minute) DO UPDATE SET rx = traffic_total_hour.rx + excluded.rx, tx = traffic_total_hour.tx + excluded.tx, online = traffic_total_hour.online + excluded.online
            """, ("@cut", minuteCutoff));
        Execute("DELETE FROM traffic_total_minute WHERE minute < @cut", ("@cut", minuteCutoff));
        Execute("DELETE FROM traffic_total_hour WHERE minute < @cut", ("@cut", hourCutoff));
    }

    /// <summary>The highest client id (0 without clients): the roll-up's chunks go up to it.</summary>
    internal long MaxClientId()
    {
        using var cmd = Command("SELECT COALESCE(MAX(id), 0) FROM clients");
        return Convert.ToInt64(Scalar(cmd), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// One client's history (or the total's, <paramref name="clientId"/> null) in buckets of
    /// <paramref name="step"/> minutes from <paramref name="from"/> (inclusive, a multiple of the step)
    /// to <paramref name="to"/> (exclusive): the bucket's start, bytes received and sent, minutes online.
    /// Only buckets with rows are returned.
    /// </summary>
    internal List<(long Minute, long Rx, long Tx, long Online)> ReadTraffic(long? clientId, long from, long to, long step)
    {
        string sql = clientId is null
            ? """
              SELECT b, SUM(rx), SUM(tx), SUM(online) FROM (
                SELECT minute / @step AS b, rx, tx, online FROM traffic_total_minute WHERE minute >= @from AND minute < @to
                UNION ALL
                SELECT minute / @step AS b, rx, tx, online FROM traffic_total_hour WHERE minute >= @from AND minute < @to
              ) t GROUP BY b ORDER BY b
              """
            : """
              SELECT b, SUM(rx), SUM(tx), SUM(online) FROM (
                SELECT minute / @step AS b, rx, tx, online FROM traffic_minute WHERE client_id = @c AND minute >= @from AND minute < @to
                UNION ALL
                SELECT minute / @step AS b, rx, tx, online FROM traffic_hour WHERE client_id = @c AND minute >= @from AND minute < @to
              ) t GROUP BY b ORDER BY b
              """;
        using var cmd = clientId is { } id
            ? Command(sql, ("@step", step), ("@from", from), ("@to", to), ("@c", id))
            : Command(sql, ("@step", step), ("@from", from), ("@to", to));
        return Rows(cmd, r => (Int64(r, 0) * step, Int64(r, 1), Int64(r, 2), Int64(r, 3)), "traffic");
    }

    /// <summary>Rows in the four history tables (for the bench and the size bound).</summary>
    internal long TrafficRowCount()
    {
        using var cmd = Command("""
            SELECT (SELECT COUNT(*) FROM traffic_minute) + (SELECT COUNT(*) FROM traffic_hour)
                 + (SELECT COUNT(*) FROM traffic_total_minute) + (SELECT COUNT(*) FROM traffic_total_hour)
            """);
        return Convert.ToInt64(Scalar(cmd), CultureInfo.InvariantCulture);
    }
}
