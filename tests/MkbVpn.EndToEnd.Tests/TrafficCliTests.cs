using System.Text.Json;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>The traffic history's command line: 'status --history' (text and JSON), list's LAST SEEN, the retention options. No interface needed.</summary>
public sealed class TrafficCliTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "mkb-vpn-traffic-" + Guid.NewGuid().ToString("N")[..8]);

    public TrafficCliTests() =>
        Assert.Equal(0, Vpn("init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24", "--no-ipv6",
            "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", "mkbtr" + Guid.NewGuid().ToString("N")[..6]).ExitCode);

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    private Shell.Result Vpn(params string[] args) => Shell.Run(Testbed.MkbVpn, ["--data-dir", _data, .. args], TimeSpan.FromSeconds(60));

    [Fact]
    public void Status_history_prints_intervals_and_totals_and_the_apis_json()
    {
        Assert.Equal(0, Vpn("add", "alice", "--no-qr").ExitCode);
        var text = Vpn("status", "alice", "--history", "--since", "2h");
        Assert.Equal(0, text.ExitCode);
        var lines = text.StdOut.Trim().Split('\n');
        Assert.StartsWith("alice: traffic from ", lines[0], StringComparison.Ordinal);
        Assert.Equal(["TIME", "RX", "TX", "ONLINE"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(lines, l => l.StartsWith("total ", StringComparison.Ordinal));
        Assert.Equal("last seen: never", lines[^1]);

        using var doc = JsonDocument.Parse(Vpn("status", "alice", "--history", "--since", "2h", "--json").StdOut);
        var h = doc.RootElement;
        Assert.Equal("alice", h.GetProperty("client").GetString());
        Assert.Equal(300, h.GetProperty("step_seconds").GetInt32());       // 2 h in at most 60 lines: 5 minutes
        Assert.InRange(h.GetProperty("points").GetArrayLength(), 24, 25);
        Assert.Equal(0, h.GetProperty("rx_bytes").GetInt64());
        Assert.True(h.GetProperty("points")[0].TryGetProperty("online_minutes", out _));

        using var all = JsonDocument.Parse(Vpn("status", "--history", "--since", "7d", "--json").StdOut);
        Assert.Equal(JsonValueKind.Null, all.RootElement.GetProperty("client").ValueKind);
        Assert.Equal(6 * 3600, all.RootElement.GetProperty("step_seconds").GetInt32());   // 7 d in at most 60 lines: 6 hours
    }

    [Fact]
    public void Bad_history_options_name_their_flag_and_change_nothing()
    {
        var step = Vpn("status", "--history", "--step", "week");
        Assert.Equal(2, step.ExitCode);
        Assert.StartsWith("mkb-vpn: error: --step: ", step.StdErr, StringComparison.Ordinal);
        var since = Vpn("status", "--history", "--since", "soonish");
        Assert.Equal(2, since.ExitCode);
        Assert.StartsWith("mkb-vpn: error: --since: ", since.StdErr, StringComparison.Ordinal);
        Assert.Equal(2, Vpn("status", "--since", "2h").ExitCode);
        Assert.Equal(3, Vpn("status", "nobody", "--history").ExitCode);
        var keep = Vpn("init", "--change", "--history-hours", "10y");
        Assert.Equal(2, keep.ExitCode);
        Assert.StartsWith("mkb-vpn: error: --history-hours: ", keep.StdErr, StringComparison.Ordinal);
        var ok = Vpn("init", "--change", "--history-minutes", "24h", "--history-hours", "30d");
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("Note: traffic history kept per minute for 24h, per hour for 30d", ok.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("nothing changed", ok.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void List_shows_when_each_client_was_last_seen_in_its_last_column()
    {
        Assert.Equal(0, Vpn("add", "alice", "bob", "--no-qr").ExitCode);
        var lines = Vpn("list").StdOut.Trim().Split('\n');
        Assert.EndsWith("LAST SEEN", lines[0], StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.EndsWith("never", l, StringComparison.Ordinal));
    }
}
