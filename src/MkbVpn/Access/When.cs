using System.Globalization;
using System.Text.RegularExpressions;

namespace MkbVpn.Access;

/// <summary>
/// Points in time as an admin writes them: "2026-12-31" (through the end of that day, host
/// time), "2026-12-31T18:00Z" or with an offset (exact), "2026-12-31T18:00" (host time),
/// "14d" / "12h" / "30m" / "2w" (from now; "ago" for --since), "never".
/// </summary>
public static partial class When
{
    /// <summary>Parses an expiry: a future time, or null for "never".</summary>
    public static DateTimeOffset? ParseExpiry(string text, DateTimeOffset now, string field = "expires", TimeZoneInfo? zone = null)
    {
        text = text.Trim();
        if (text.Equals("never", StringComparison.OrdinalIgnoreCase) || text.Equals("none", StringComparison.OrdinalIgnoreCase))
            return null;
        var t = Parse(text, now, future: true, field, zone);
        if (t <= now)
            throw new FieldException(field, $"{field}: {Format(t)} is in the past");
        return t;
    }

    /// <summary>Parses a start time for a query: an absolute time, or a duration back from now.</summary>
    public static DateTimeOffset ParseSince(string text, DateTimeOffset now, string field = "since", TimeZoneInfo? zone = null) =>
        Parse(text.Trim(), now, future: false, field, zone);

    private static DateTimeOffset Parse(string text, DateTimeOffset now, bool future, string field, TimeZoneInfo? zone)
    {
        zone ??= TimeZoneInfo.Local;
        var m = DurationPattern().Match(text);
        if (m.Success)
        {
            double n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var unit = m.Groups[2].Value.ToLowerInvariant();
            TimeSpan span = unit switch
            {
                "m" or "min" => TimeSpan.FromMinutes(n),
                "h" => TimeSpan.FromHours(n),
                "d" => TimeSpan.FromDays(n),
                "w" => TimeSpan.FromDays(7 * n),
                _ => TimeSpan.FromSeconds(n),
            };
            if (span <= TimeSpan.Zero || span > TimeSpan.FromDays(36500))
                throw new FieldException(field, $"{field}: '{text}' is not a usable duration");
            return future ? now + span : now - span;
        }
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            // A bare date: an expiry runs through that whole day; a start begins with it.
            var local = date.ToDateTime(TimeOnly.MinValue);
            if (future)
                local = local.AddDays(1);
            return new DateTimeOffset(local, zone.GetUtcOffset(local));
        }
        string[] zoned = ["yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd HH:mmK", "yyyy-MM-dd HH:mm:ssK"];
        bool hasZone = text.EndsWith('Z') || text.EndsWith('z') || OffsetPattern().IsMatch(text);
        if (hasZone && DateTimeOffset.TryParseExact(text.ToUpperInvariant(), zoned, CultureInfo.InvariantCulture, DateTimeStyles.None, out var exact))
            return exact;
        string[] plain = ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss"];
        if (!hasZone && DateTime.TryParseExact(text, plain, CultureInfo.InvariantCulture, DateTimeStyles.None, out var dt))
            return new DateTimeOffset(dt, zone.GetUtcOffset(dt));
        throw new FieldException(field, $"{field}: '{text}' is not a time; use 2026-12-31, 2026-12-31T18:00Z, 14d, 12h{(future ? " or never" : "")}");
    }

    /// <summary>The way times are shown to admins: UTC, to the minute.</summary>
    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)(?:\s+ago)?$", RegexOptions.IgnoreCase)]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"[+-]\d\d:?\d\d$")]
    private static partial Regex OffsetPattern();
}
