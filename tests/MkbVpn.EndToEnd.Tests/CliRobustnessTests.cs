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
