using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;
using MkbVpn.Traffic;

namespace MkbVpn.Web.Pages;

/// <summary>
/// Traffic history as a server-rendered SVG chart: bytes received and sent per bucket (area and
/// line), online periods as shaded bands, axes in KB/MB/GB and UTC times, a title and description
/// for screen readers. No script, no external resource: it works offline. It scales with its box
/// (viewBox, width 100%); <see cref="ChartSize.Small"/> has larger type and fewer ticks for phones.
/// Colours are CSS custom properties (<see cref="Css"/>) with light and dark fallbacks. Every text
/// taken from data is a number or XML-encoded.
/// </summary>
internal static class TrafficChart
{
    /// <summary>The chart's look; the same rules are embedded in a standalone SVG. A page that inlines the SVG adds them to its stylesheet (its CSP blocks inline styles) and may set the variables.</summary>
    public const string Css =
        ".mkb-chart{font-family:system-ui,sans-serif}" +
        ".mkb-chart text{fill:var(--chart-text,#334155)}" +
        ".mkb-chart .grid{stroke:var(--chart-grid,#e2e8f0)}" +
        ".mkb-chart .axis{stroke:var(--chart-axis,#94a3b8)}" +
        ".mkb-chart .rx{stroke:var(--chart-rx,#2563eb)}" +
        ".mkb-chart .rx-area,.mkb-chart .rx-key{fill:var(--chart-rx,#2563eb)}" +
        ".mkb-chart .tx{stroke:var(--chart-tx,#c2410c)}" +
        ".mkb-chart .tx-key{fill:var(--chart-tx,#c2410c)}" +
        ".mkb-chart .online,.mkb-chart .online-key{fill:var(--chart-online,#16a34a)}" +
        "@media (prefers-color-scheme:dark){" +
        ".mkb-chart text{fill:var(--chart-text,#cbd5e1)}" +
        ".mkb-chart .grid{stroke:var(--chart-grid,#334155)}" +
        ".mkb-chart .axis{stroke:var(--chart-axis,#64748b)}" +
        ".mkb-chart .rx{stroke:var(--chart-rx,#60a5fa)}" +
        ".mkb-chart .rx-area,.mkb-chart .rx-key{fill:var(--chart-rx,#60a5fa)}" +
        ".mkb-chart .tx{stroke:var(--chart-tx,#fb923c)}" +
        ".mkb-chart .tx-key{fill:var(--chart-tx,#fb923c)}" +
        ".mkb-chart .online,.mkb-chart .online-key{fill:var(--chart-online,#4ade80)}}";

    internal enum ChartSize
    {
        Large,
        Small,
    }

    private sealed record Layout(int Width, int Height, int Left, int Right, int Top, int Bottom, int FontSize, int XTicks, int YTicks)
    {
        public int PlotWidth => Width - Left - Right;

        public int PlotHeight => Height - Top - Bottom;
    }

    private static Layout LayoutOf(ChartSize size) => size == ChartSize.Small
        ? new Layout(420, 270, 54, 10, 46, 30, 13, 3, 4)
        : new Layout(800, 280, 64, 14, 34, 30, 12, 7, 5);

    /// <summary>The chart of one history (a client's or the total). <paramref name="idPrefix"/> keeps the title's ids unique on a page with several charts.</summary>
    public static string Render(TrafficHistory history, ChartSize size = ChartSize.Large, string idPrefix = "traffic", bool embedStyle = true)
    {
        var l = LayoutOf(size);
        string id = SafeId(idPrefix);
        var points = history.Points;
        var sb = new StringBuilder(4096 + points.Count * 48);
        string who = history.Client is null ? "all clients" : history.Client;
        long peak = points.Count == 0 ? 0 : points.Max(p => Math.Max(p.RxBytes, p.TxBytes));
        var (yMax, yStep) = NiceScale(peak, l.YTicks);
        double step = history.StepSeconds;
        double span = Math.Max(step, (history.To - history.From).TotalSeconds);
        double X(DateTimeOffset t) => l.Left + (t - history.From).TotalSeconds / span * l.PlotWidth;
        double Y(long bytes) => l.Top + l.PlotHeight - (double)bytes / yMax * l.PlotHeight;

        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mkb-chart\" viewBox=\"0 0 {l.Width} {l.Height}\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" font-size=\"{l.FontSize}\" font-family=\"system-ui,sans-serif\">");
        sb.Append("<title id=\"").Append(id).Append("-title\">Traffic of ").Append(Xml(who)).Append("</title>");
        sb.Append("<desc id=\"").Append(id).Append("-desc\">").Append(Xml(Describe(history))).Append("</desc>");
        if (embedStyle)
            sb.Append("<style>").Append(Css).Append("</style>");

        // Online periods: one band per run of buckets with a client online.
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i].OnlineMinutes <= 0)
                continue;
            int j = i;
            while (j + 1 < points.Count && points[j + 1].OnlineMinutes > 0)
                j++;
            double x0 = X(points[i].At), x1 = X(points[j].At.AddSeconds(step));
            sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"online\" fill=\"#16a34a\" fill-opacity=\"0.14\" x=\"{x0:0.#}\" y=\"{l.Top}\" width=\"{Math.Max(0.5, x1 - x0):0.#}\" height=\"{l.PlotHeight}\"/>");
            i = j;
        }

        // Horizontal grid and the byte axis.
        for (long v = 0; v <= yMax; v += yStep)
        {
            double y = Y(v);
            sb.Append(CultureInfo.InvariantCulture, $"<line class=\"grid\" stroke=\"#e2e8f0\" x1=\"{l.Left}\" x2=\"{l.Width - l.Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{l.Left - 6}\" y=\"{y + l.FontSize * 0.35:0.#}\" text-anchor=\"end\" fill=\"#334155\">{Bytes(v)}</text>");
        }
        // Time axis.
        sb.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" stroke=\"#94a3b8\" x1=\"{l.Left}\" x2=\"{l.Width - l.Right}\" y1=\"{l.Top + l.PlotHeight}\" y2=\"{l.Top + l.PlotHeight}\"/>");
        long tick = TickMinutes(span / 60, l.XTicks);
        long firstTick = (long)Math.Ceiling(history.From.ToUnixTimeSeconds() / 60.0 / tick) * tick;
        string format = tick >= 1440 ? "MMM d" : span > 86400 ? "MMM d HH:mm" : "HH:mm";
        for (long m = firstTick; m * 60 <= history.To.ToUnixTimeSeconds(); m += tick)
        {
            var t = DateTimeOffset.FromUnixTimeSeconds(m * 60);
            double x = X(t);
            sb.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" stroke=\"#94a3b8\" x1=\"{x:0.#}\" x2=\"{x:0.#}\" y1=\"{l.Top + l.PlotHeight}\" y2=\"{l.Top + l.PlotHeight + 4}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:0.#}\" y=\"{l.Top + l.PlotHeight + 6 + l.FontSize}\" text-anchor=\"middle\" fill=\"#334155\">{t.UtcDateTime.ToString(format, CultureInfo.InvariantCulture)}</text>");
        }

        // Received: a filled step area and its outline; sent: a step line.
        if (points.Count > 0)
        {
            string rx = StepPath(points, p => p.RxBytes, X, Y, step);
            string tx = StepPath(points, p => p.TxBytes, X, Y, step);
            double baseY = Y(0);
            sb.Append(CultureInfo.InvariantCulture, $"<path class=\"rx-area\" fill=\"#2563eb\" fill-opacity=\"0.2\" stroke=\"none\" d=\"M{X(points[0].At):0.#} {baseY:0.#}{rx.Replace('M', 'L')}L{X(points[^1].At.AddSeconds(step)):0.#} {baseY:0.#}Z\"/>");
            sb.Append("<path class=\"rx\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" d=\"").Append(rx).Append("\"/>");
            sb.Append("<path class=\"tx\" fill=\"none\" stroke=\"#c2410c\" stroke-width=\"1.5\" d=\"").Append(tx).Append("\"/>");
        }
        if (peak == 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{l.Left + l.PlotWidth / 2}\" y=\"{l.Top + l.PlotHeight / 2}\" text-anchor=\"middle\" fill=\"#334155\">No traffic recorded in this period</text>");
        }

        // Legend, with the totals.
        int ly = 14, lx = l.Left;
        string perStep = StepText(history.StepSeconds);
        sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"rx-key\" fill=\"#2563eb\" x=\"{lx}\" y=\"{ly - 9}\" width=\"10\" height=\"10\"/><text x=\"{lx + 14}\" y=\"{ly}\" fill=\"#334155\">Received {Bytes(history.RxBytes)}</text>");
        lx += size == ChartSize.Small ? 128 : 150;
        sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"tx-key\" fill=\"#c2410c\" x=\"{lx}\" y=\"{ly - 9}\" width=\"10\" height=\"10\"/><text x=\"{lx + 14}\" y=\"{ly}\" fill=\"#334155\">Sent {Bytes(history.TxBytes)}</text>");
        lx += size == ChartSize.Small ? 112 : 140;
        sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"online-key\" fill=\"#16a34a\" fill-opacity=\"0.35\" x=\"{lx}\" y=\"{ly - 9}\" width=\"10\" height=\"10\"/><text x=\"{lx + 14}\" y=\"{ly}\" fill=\"#334155\">Online</text>");
        // The step and the time zone: beside the legend, or under it on a phone.
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{l.Width - l.Right}\" y=\"{(size == ChartSize.Small ? ly + l.FontSize + 5 : ly)}\" text-anchor=\"end\" fill=\"#334155\">per {perStep}, UTC</text>");
        sb.Append("</svg>");
        return sb.ToString();
    }

    /// <summary>A step path: each bucket a horizontal segment at its value, from its start to its end.</summary>
    private static string StepPath(IReadOnlyList<TrafficPoint> points, Func<TrafficPoint, long> value, Func<DateTimeOffset, double> x, Func<long, double> y, double step)
    {
        var sb = new StringBuilder(points.Count * 24);
        double lastY = double.NaN;
        for (int i = 0; i < points.Count; i++)
        {
            double py = y(Math.Max(0, value(points[i])));
            double px = x(points[i].At);
            if (i == 0)
                sb.Append(CultureInfo.InvariantCulture, $"M{px:0.#} {py:0.#}");
            else if (Math.Abs(py - lastY) >= 0.05)
                sb.Append(CultureInfo.InvariantCulture, $"H{px:0.#}V{py:0.#}");
            lastY = py;
        }
        sb.Append(CultureInfo.InvariantCulture, $"H{x(points[^1].At.AddSeconds(step)):0.#}");
        return sb.ToString();
    }

    /// <summary>What a screen reader says: totals, the period, the step, the time online.</summary>
    internal static string Describe(TrafficHistory h)
    {
        string who = h.Client is null ? "All clients together" : h.Client;
        long online = h.Points.Sum(p => p.OnlineMinutes);
        string onlineText = h.Client is null
            ? $"about {h.Points.Select(p => (p.OnlineMinutes + h.StepSeconds / 60 - 1) / Math.Max(1, h.StepSeconds / 60)).DefaultIfEmpty(0).Max()} clients online in the busiest {StepText(h.StepSeconds)}"
            : $"online {Duration(online)}";
        return $"{who} received {Bytes(h.RxBytes)} and sent {Bytes(h.TxBytes)} from {Access.When.Format(h.From)} to {Access.When.Format(h.To)}, per {StepText(h.StepSeconds)}; {onlineText}.";
    }

    private static string Duration(long minutes) =>
        minutes < 60 ? $"{minutes} min" : minutes < 1440 ? $"{minutes / 60} h {minutes % 60} min" : $"{minutes / 1440} d {minutes % 1440 / 60} h";

    private static string StepText(int seconds) => seconds switch
    {
        60 => "minute",
        3600 => "hour",
        86400 => "day",
        604800 => "week",
        < 3600 => $"{seconds / 60} min",
        < 86400 when seconds % 3600 == 0 => $"{seconds / 3600} h",
        _ => $"{seconds / 60} min",
    };

    /// <summary>Bytes in decimal units: 0 B, 950 B, 1.2 KB, 34 MB, 5.6 GB, 1.1 TB.</summary>
    internal static string Bytes(long n)
    {
        if (n < 1000)
            return n.ToString(CultureInfo.InvariantCulture) + " B";
        string[] units = ["KB", "MB", "GB", "TB", "PB", "EB"];
        double v = n;
        int u = -1;
        while (v >= 1000 && u < units.Length - 1)
        {
            v /= 1000;
            u++;
        }
        return v.ToString(v < 10 ? "0.#" : "0", CultureInfo.InvariantCulture) + " " + units[u];
    }

    /// <summary>A round axis maximum and tick step (1, 2, 2.5 or 5 times a power of ten) for values up to <paramref name="peak"/>.</summary>
    internal static (long Max, long Step) NiceScale(long peak, int ticks)
    {
        if (peak <= 0)
            return (1000, 250);
        double raw = (double)peak / ticks;
        double pow = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double nice = new[] { 1, 2, 2.5, 5, 10 }.First(f => f * pow >= raw) * pow;
        long step = Math.Max(1, (long)Math.Ceiling(nice));
        long max = (long)Math.Ceiling((double)peak / step) * step;
        return (max, step);
    }

    private static long TickMinutes(double spanMinutes, int ticks)
    {
        long[] candidates = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 40320, 80640];
        return candidates.FirstOrDefault(c => spanMinutes / c <= ticks, candidates[^1]);
    }

    private static string SafeId(string s)
    {
        var id = new string([.. s.Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')]);
        return id.Length == 0 || !char.IsAsciiLetter(id[0]) ? "t" + id : id;
    }

    private static string Xml(string s) => System.Security.SecurityElement.Escape(s);

    // ---- the routes that serve the chart alone (auth like the pages) --------

    /// <summary>GET /clients/{name}/traffic.svg and /traffic.svg (?from=&amp;to=&amp;step= as the API; size=small for phones).</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/clients/{name}/traffic.svg", (HttpContext ctx, ClientService clients, string name, string? from, string? to, string? step, string? size) =>
            Svg(ctx, clients, name, from, to, step, size)).ExcludeFromDescription();
        app.MapGet("/traffic.svg", (HttpContext ctx, ClientService clients, string? from, string? to, string? step, string? size) =>
            Svg(ctx, clients, null, from, to, step, size)).ExcludeFromDescription();
    }

    private static IResult Svg(HttpContext ctx, ClientService clients, string? name, string? from, string? to, string? step, string? size)
    {
        var chartSize = size switch
        {
            null or "" or "large" => ChartSize.Large,
            "small" => ChartSize.Small,
            _ => throw new FieldException("size", "size: use large or small"),
        };
        var history = clients.TrafficOf(name, clients.ParseTrafficRange(from, to, step, autoPoints: chartSize == ChartSize.Small ? 150 : 300));
        // The SVG's own <style> (static text) is its only inline content.
        ctx.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
        return Results.Text(Render(history, chartSize, name is null ? "traffic-all" : "traffic-client"), "image/svg+xml; charset=utf-8");
    }
}
