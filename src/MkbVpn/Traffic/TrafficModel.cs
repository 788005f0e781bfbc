namespace MkbVpn.Traffic;

/// <summary>
/// How long history is kept: per minute for <see cref="MinuteHours"/> hours, then per hour for
/// <see cref="HourDays"/> days (counted from now, not from the end of the minute rows).
/// </summary>
public sealed record TrafficRetention(int MinuteHours, int HourDays)
{
    public static readonly TrafficRetention Default = new(48, 90);

    public const int MinMinuteHours = 1, MaxMinuteHours = 14 * 24, MinHourDays = 1, MaxHourDays = 3 * 366;

    public TimeSpan Minutes => TimeSpan.FromHours(MinuteHours);

    public TimeSpan Hours => TimeSpan.FromDays(HourDays);

    /// <summary>
    /// The most rows the history holds for <paramref name="clients"/> clients that are all online and
    /// busy every minute (idle, offline minutes write no row): minute rows (the window plus the hour
    /// not yet rolled up), hour rows, and the total's.
    /// </summary>
    public long MaxRows(long clients) => (clients + 1) * ((MinuteHours + 1) * 60L + HourDays * 24L + 1);

    /// <summary>Validates an admin's values ("48h", "90d"); the fields are the CLI's flags without dashes.</summary>
    public static TrafficRetention Parse(string? minutes, string? hours, TrafficRetention current)
    {
        int m = minutes is null ? current.MinuteHours : (int)Math.Round(ParseSpan(minutes, "history-minutes").TotalHours);
        int h = hours is null ? current.HourDays : (int)Math.Round(ParseSpan(hours, "history-hours").TotalDays);
        if (m is < MinMinuteHours or > MaxMinuteHours)
            throw new FieldException("history-minutes", $"history-minutes: keep minute rows between {MinMinuteHours} hour and {MaxMinuteHours / 24} days (e.g. 48h)");
        if (h is < MinHourDays or > MaxHourDays)
            throw new FieldException("history-hours", $"history-hours: keep hour rows between {MinHourDays} day and {MaxHourDays} days (e.g. 90d)");
        if (h * 24 < m)
            throw new FieldException("history-hours", $"history-hours: {h}d is shorter than the minute history ({m}h)");
        return new TrafficRetention(m, h);
    }

    private static TimeSpan ParseSpan(string text, string field)
    {
        var t = text.Trim().ToLowerInvariant();
        int unit = t.Length == 0 ? 0 : t[^1] switch { 'h' => 1, 'd' => 24, 'w' => 7 * 24, _ => 0 };
        if (unit == 0 || !int.TryParse(t[..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) || n > 100_000)
            throw new FieldException(field, $"{field}: '{UserInputException.Shown(text)}' is not a duration in hours, days or weeks (e.g. 48h, 90d, 2w)");
        return TimeSpan.FromHours((double)n * unit);
    }
}

/// <summary>A peer's byte counters as last sampled, and the minute of that sample.</summary>
internal readonly record struct TrafficCounters(long Rx, long Tx, long Minute);

/// <summary>What one client did in one sampled minute.</summary>
internal readonly record struct TrafficDelta(long ClientId, long Rx, long Tx, bool Online);

/// <summary>One bucket of history: its start, bytes received and sent by the server from/to the client(s), minutes online (summed over clients for the total).</summary>
public sealed record TrafficPoint(DateTimeOffset At, long RxBytes, long TxBytes, long OnlineMinutes);

/// <summary>
/// A client's history (or the total over all clients, <see cref="Client"/> null) from
/// <see cref="From"/> to <see cref="To"/> in buckets of <see cref="StepSeconds"/>, one point per
/// bucket (zero where nothing was recorded). The one shape for the API and 'status --history --json'.
/// </summary>
public sealed record TrafficHistory(
    string? Client,
    DateTimeOffset From,
    DateTimeOffset To,
    int StepSeconds,
    long RxBytes,
    long TxBytes,
    DateTimeOffset? LastHandshake,
    IReadOnlyList<TrafficPoint> Points);

/// <summary>What one sampling round did.</summary>
public sealed record TrafficSampleResult(bool InterfaceUp, int Peers, int Resets, int RowsWritten, int MinuteRowsRolledUp);
