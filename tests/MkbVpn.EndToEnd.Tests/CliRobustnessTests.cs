using System.Text.Json;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>The command line as a user meets it outside the happy path: wrong user, bad output path, who the log names.</summary>
public sealed class CliRobustnessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "mkb-vpn-cli-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    private Shell.Result Vpn(params string[] args) => Shell.Run(Testbed.MkbVpn, ["--data-dir", _data, .. args], TimeSpan.FromSeconds(60));

    private void Init() =>
        Assert.Equal(0, Vpn("init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24", "--no-ipv6",
            "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", "mkbcli" + Guid.NewGuid().ToString("N")[..6]).ExitCode);

    [Fact]
    public void A_user_who_may_not_read_the_data_directory_is_told_to_run_as_root()
    {
        Init();
        var r = Shell.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Testbed.MkbVpn, "--data-dir", _data, "list"], TimeSpan.FromSeconds(60));
        Assert.Equal(6, r.ExitCode);
        Assert.Contains("run as root", r.StdErr);
        Assert.DoesNotContain("not initialised", r.StdErr);
    }

    [Fact]
    public void A_bad_qr_png_path_adds_nothing()
    {
        Init();
        var r = Vpn("add", "alice", "--qr-png", "/nonexistent-dir/alice.png", "--no-qr");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--qr-png", r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
        Assert.Equal("[]", Vpn("list", "--json").StdOut.Trim());
        Assert.False(File.Exists(Path.Combine(_data, "clients", "alice.conf")));
    }

    [Fact]
    public void A_row_that_does_not_parse_is_named_and_the_others_are_still_listed()
    {
        Init();
        Assert.Equal(0, Vpn("add", "alice", "bob", "--no-qr").ExitCode);
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_data, "mkb-vpn.db")};Pooling=false"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE clients SET created_at = 'yesterday-ish' WHERE name = 'bob'";
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        foreach (string[] view in new[] { new[] { "list" }, ["list", "--json"], ["status"] })
        {
            var r = Vpn(view);
            Assert.True(r.ExitCode == 8, $"{string.Join(' ', view)}: exit {r.ExitCode}");
            Assert.Contains("alice", r.StdOut);
            Assert.DoesNotContain("bob", r.StdOut);
            var line = Assert.Single(r.StdErr.Trim().Split('\n'));
            Assert.Contains("'bob'", line);
            Assert.Contains("restore", line);
        }
        // Adding someone else does not need bob's row; the list then names carol too, and still bob's damage.
        Assert.Equal(0, Vpn("add", "carol", "--no-qr").ExitCode);
        var after = Vpn("list");
        Assert.Equal(8, after.ExitCode);
        Assert.Contains("carol", after.StdOut);
    }

    [Fact]
    public void The_audit_log_names_the_scripts_and_the_user_behind_sudo()
    {
        Init();
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "scripts", "add-wireguard-client.sh")))
            dir = dir.Parent;
        var script = Shell.Run("bash", [Path.Combine(dir!.FullName, "scripts", "add-wireguard-client.sh"), "--data-dir", _data, "carol", "--no-qr"], TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["MKB_VPN"] = Testbed.MkbVpn, ["SUDO_USER"] = "office-admin" });
        Assert.Equal(0, script.ExitCode);
        using var doc = JsonDocument.Parse(Vpn("log", "--client", "carol", "--json").StdOut);
        var e = doc.RootElement.EnumerateArray().Single();
        Assert.Equal(("office-admin", "script", "add"), (e.GetProperty("actor").GetString(), e.GetProperty("via").GetString(), e.GetProperty("action").GetString()));
    }
}
