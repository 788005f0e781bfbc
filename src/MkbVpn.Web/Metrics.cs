using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using MkbVpn.Clients;

namespace MkbVpn.Web;

/// <summary>/metrics in the Prometheus text format: peers, per-client traffic and handshake age, API request counts.</summary>
internal sealed class Metrics(TimeProvider time)
{
    private readonly ConcurrentDictionary<(string Route, string Method, int Code), long> _requests = new();

    /// <summary>The method label's values: anything else is counted as "other", so a client cannot add series.</summary>
    private static readonly string[] KnownMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    /// <summary>The route label of a request that matched no route of ours.</summary>
    public const string Unmatched = "unmatched";

    /// <summary>
    /// Counts a request. Labels take fixed values only: <paramref name="route"/> is one of our route
    /// templates (or <see cref="Unmatched"/>), the method one of <see cref="KnownMethods"/> or "other",
    /// the code a valid HTTP status: the number of series is bounded whatever clients send.
    /// </summary>
    public void Count(string route, string method, int code) =>
        _requests.AddOrUpdate((route, MethodLabel(method), code is >= 100 and <= 599 ? code : 0), 1, (_, n) => n + 1);

    internal static string MethodLabel(string method)
    {
        foreach (var m in KnownMethods)
        {
            if (string.Equals(m, method, StringComparison.Ordinal))
                return m;
        }
        return "other";
    }

    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/metrics", (Metrics m, ClientService clients) => Results.Text(m.Render(clients), "text/plain; version=0.0.4; charset=utf-8"))
           .ExcludeFromDescription();

    public string Render(ClientService clients)
    {
        var report = clients.ViewStatus();   // a scrape reads, never writes; on a registry, the gateways' reports
        var now = time.GetUtcNow();
        var sb = new StringBuilder();
        void Gauge(string name, string help, string type = "gauge")
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        }
        string L(string v) => v.Replace(@"\", @"\\").Replace("\"", "\\\"").Replace("\n", @"\n");
        string N(double v) => v.ToString(CultureInfo.InvariantCulture);

        Gauge("mkbvpn_interface_up", "1 when the WireGuard interface is up.");
        sb.Append("mkbvpn_interface_up ").Append(report.InterfaceUp ? 1 : 0).Append('\n');
        Gauge("mkbvpn_peers", "Clients (peers) in the store.");
        sb.Append("mkbvpn_peers ").Append(report.Clients.Count).Append('\n');
        Gauge("mkbvpn_peers_enabled", "Clients that are not blocked.");
        sb.Append("mkbvpn_peers_enabled ").Append(report.Clients.Count(c => c.Client.Enabled)).Append('\n');
        Gauge("mkbvpn_peers_online", "Clients with a handshake in the last 3 minutes.");
        sb.Append("mkbvpn_peers_online ").Append(report.Clients.Count(c => c.Online)).Append('\n');
        Gauge("mkbvpn_peer_receive_bytes_total", "Bytes received from the client since the interface came up.", "counter");
        foreach (var c in report.Clients)
            sb.Append("mkbvpn_peer_receive_bytes_total{name=\"").Append(L(c.Client.Name)).Append("\"} ").Append(c.Live?.RxBytes ?? 0).Append('\n');
        Gauge("mkbvpn_peer_transmit_bytes_total", "Bytes sent to the client since the interface came up.", "counter");
        foreach (var c in report.Clients)
            sb.Append("mkbvpn_peer_transmit_bytes_total{name=\"").Append(L(c.Client.Name)).Append("\"} ").Append(c.Live?.TxBytes ?? 0).Append('\n');
        Gauge("mkbvpn_peer_handshake_age_seconds", "Seconds since the client's latest handshake (absent: never).");
        foreach (var c in report.Clients)
        {
            if ((c.Live?.LastHandshake ?? c.Client.LastHandshake) is { } hs)
                sb.Append("mkbvpn_peer_handshake_age_seconds{name=\"").Append(L(c.Client.Name)).Append("\"} ").Append(N(Math.Max(0, (now - hs).TotalSeconds))).Append('\n');
        }
        if (report.Drops is { } drops)
        {
            Gauge("mkbvpn_engine_dropped_packets_total", "Packets the built-in engine dropped, by reason (malformed, invalid_mac, replay, ...).", "counter");
            foreach (var (reason, n) in drops.Where(d => d.Key != "dropped").OrderBy(d => d.Key, StringComparer.Ordinal))
                sb.Append("mkbvpn_engine_dropped_packets_total{reason=\"").Append(L(reason)).Append("\"} ").Append(n).Append('\n');
        }
        Gauge("mkbvpn_http_requests_total", "HTTP requests served, by route, method and status code.", "counter");
        foreach (var ((route, method, code), n) in _requests.OrderBy(r => r.Key.Route, StringComparer.Ordinal).ThenBy(r => r.Key.Method, StringComparer.Ordinal).ThenBy(r => r.Key.Code))
            sb.Append("mkbvpn_http_requests_total{route=\"").Append(L(route)).Append("\",method=\"").Append(L(method)).Append("\",code=\"").Append(code).Append("\"} ").Append(n).Append('\n');
        return sb.ToString();
    }
}
