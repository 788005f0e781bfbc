using System.Text.Json;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>The mkb-stack scripts against a live server, concurrency, and the bad-input and failure paths.</summary>
public sealed class ScriptsAndFailureTests(ITestOutputHelper output)
{
    private static string Script(string name)
    {
        // tests/MkbVpn.EndToEnd.Tests/bin/Release/net10.0 -> repository root
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "scripts", name)))
            dir = dir.Parent;
        return dir is null ? throw new FileNotFoundException(name) : Path.Combine(dir.FullName, "scripts", name);
    }

    private static Shell.Result RunScript(Testbed tb, string script, params string[] args) =>
        Shell.Run("ip", ["netns", "exec", tb.Server, "bash", Script(script), "--data-dir", tb.DataDir, .. args], TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["MKB_VPN"] = Testbed.MkbVpn });

    [Fact]
    public void The_four_mkb_stack_scripts_change_the_live_interface_with_the_cli_exit_codes()
    {
        using var tb = new Testbed(withClients: false);
        tb.InitServer();
        tb.VpnOk("up");
        string name = $"s{tb.Id}";

        foreach (var s in new[] { "add-wireguard-client.sh", "remove-client.sh", "block-client.sh", "reenable-client.sh" })
        {
            var help = Shell.Run("bash", Script(s), "--help");
            Assert.Equal(0, help.ExitCode);
            Assert.Contains("Usage:", help.StdOut);
            Assert.Contains("Example:", help.StdOut);
            Assert.Equal(2, Shell.Run("bash", Script(s)).ExitCode);   // no name: usage error
        }

        var add = RunScript(tb, "add-wireguard-client.sh", name, "--qr-png", Path.Combine(tb.DataDir, "qr.png"));
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains($"clients/{name}.conf", add.StdOut);
        Assert.Single(tb.ServerPeers());
        var png = File.ReadAllBytes(Path.Combine(tb.DataDir, "qr.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

        Assert.Equal(4, RunScript(tb, "add-wireguard-client.sh", name, "--no-qr").ExitCode);   // duplicate
        Assert.Equal(3, RunScript(tb, "block-client.sh", "nosuchclient").ExitCode);
        Assert.Equal(2, RunScript(tb, "block-client.sh", "bad/name").ExitCode);

        Assert.Equal(0, RunScript(tb, "block-client.sh", name).ExitCode);
        Assert.Empty(tb.ServerPeers());
        Assert.True(File.Exists(Path.Combine(tb.DataDir, "clients", name + ".conf")), "block must keep the config");
        Assert.Equal(0, RunScript(tb, "reenable-client.sh", name).ExitCode);
        Assert.Single(tb.ServerPeers());
        Assert.Equal(0, RunScript(tb, "remove-client.sh", name).ExitCode);   // no question asked
        Assert.Empty(tb.ServerPeers());
        Assert.False(File.Exists(Path.Combine(tb.DataDir, "clients", name + ".conf")));
        Assert.Equal(3, RunScript(tb, "remove-client.sh", name).ExitCode);
    }

    [Fact]
    public async Task Fifty_concurrent_adds_give_fifty_distinct_addresses_on_the_live_interface()
    {
        using var tb = new Testbed(withClients: false);
        tb.InitServer();
        tb.VpnOk("up");
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => tb.Vpn("add", $"c{i}", "--no-qr"))));
        foreach (var r in results)
            Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(tb.VpnOk("list", "--json"));
        var clients = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(50, clients.Count);
        Assert.Equal(50, clients.Select(c => c.GetProperty("address4").GetString()).Distinct().Count());
        Assert.Equal(50, clients.Select(c => c.GetProperty("address6").GetString()).Distinct().Count());
        Assert.Equal(50, tb.ServerPeers().Count);
    }

    [Fact]
    public void Bad_input_and_failures_give_one_line_a_nonzero_exit_and_change_nothing()
    {
        using var tb = new Testbed(withClients: false);

        void Refused(int code, string expect, params string[] args)
        {
            var r = tb.Vpn(args);
            output.WriteLine($"mkb-vpn {string.Join(' ', args)} -> {r.ExitCode}: {r.StdErr.Trim()}");
            Assert.Equal(code, r.ExitCode);
            var lines = r.StdErr.Trim().Split('\n');
            Assert.Single(lines);
            Assert.StartsWith("mkb-vpn: error: ", lines[0]);
            Assert.Contains(expect, lines[0]);
        }

        Refused(5, "not initialised", "add", "alice");
        Refused(2, "--endpoint", "init", "--subnet", Testbed.VpnSubnet);
        Refused(2, "host bits set", "init", "--endpoint", "198.18.1.1", "--subnet", "203.0.113.7/24");
        Refused(2, "port", "init", "--endpoint", "198.18.1.1:99999");
        Refused(2, "not a valid host name", "init", "--endpoint", "bad_host!:51820");
        Refused(2, "--port", "init", "--endpoint", "198.18.1.1", "--port", "0");
        Refused(2, "too small", "init", "--endpoint", "198.18.1.1", "--subnet", "203.0.113.0/31");
        Assert.False(File.Exists(Path.Combine(tb.DataDir, "mkb-vpn.db")) && tb.Vpn("list").ExitCode == 0);

        tb.VpnOk("init", "--endpoint", "198.18.1.1", "--subnet", Testbed.VpnSubnet, "--no-ipv6", "--internal-network", Testbed.InternalNetwork, "--interface", tb.ServerInterface);
        Refused(4, "already initialised", "init", "--endpoint", "198.18.1.1");
        tb.VpnOk("up");
        Refused(2, "at most 15", "add", "a-very-long-client-name");
        Refused(2, "may only contain", "add", "bad name");
        Refused(3, "no client named", "block", "ghost");
        Refused(3, "no client named", "remove", "--yes", "ghost");
        Refused(2, "not a client address", "add", "x1", "--address", "198.51.100.9");
        tb.VpnOk("add", "x1", "--no-qr");
        Refused(4, "already exists", "add", "x2", "X1");
        Assert.Single(tb.ServerPeers());   // x2 was not added either: all or nothing
        Refused(2, "confirmation", "remove", "x1");

        // Needs root: the live interface and 'up' refuse an ordinary user.
        var asNobody = Shell.Run("ip", ["netns", "exec", tb.Server, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            Testbed.MkbVpn, "--data-dir", tb.DataDir, "up"]);
        Assert.NotEqual(0, asNobody.ExitCode);
        Assert.Single(asNobody.StdErr.Trim().Split('\n'));

        // A hung engine: the change fails after the UAPI timeout, the store is unchanged, and
        // 'up' brings the interface back in line (the engine may still act on the queued request).
        string pid = Shell.Check("pgrep", "-f", $"engine {tb.ServerInterface}$").Trim().Split('\n')[0];
        Shell.Check("kill", "-STOP", pid);
        try
        {
            Refused(1, "the store is unchanged", "add", "x3", "--no-qr");
        }
        finally
        {
            Shell.Check("kill", "-CONT", pid);
        }
        Assert.DoesNotContain("x3", tb.VpnOk("list"));
        tb.VpnOk("up");
        Assert.Single(tb.ServerPeers());
        Assert.False(File.Exists(Path.Combine(tb.DataDir, "clients", "x3.conf")));

        // Another command holds the data directory: a clear refusal after the wait, nothing changed.
        using (var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("flock",
                   ["-x", Path.Combine(tb.DataDir, ".lock"), "sleep", "60"]) { UseShellExecute = false })!)
        {
            try
            {
                Assert.NotNull(Shell.WaitFor(() => Shell.Run("flock", "-n", "-x", Path.Combine(tb.DataDir, ".lock"), "true").ExitCode != 0, TimeSpan.FromSeconds(10)));
                var locked = Shell.Run("ip", ["netns", "exec", tb.Server, Testbed.MkbVpn, "--data-dir", tb.DataDir, "add", "x5", "--no-qr"], TimeSpan.FromSeconds(30),
                    new Dictionary<string, string> { ["MKB_VPN_LOCK_TIMEOUT"] = "1" });
                Assert.Equal(8, locked.ExitCode);
                Assert.Contains("still running", locked.StdErr);
            }
            finally
            {
                holder.Kill(entireProcessTree: true);   // sleep inherits the locked descriptor
            }
        }
        Assert.DoesNotContain("x5", tb.VpnOk("list"));

        // A missing userspace engine is named.
        tb.VpnOk("down");
        var noEngine = Shell.Run("ip", ["netns", "exec", tb.Server, Testbed.MkbVpn, "--data-dir", tb.DataDir, "up"], TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["MKB_VPN_ENGINE"] = "/nonexistent/wireguard-go" });   // a third-party engine that is missing
        Assert.Equal(7, noEngine.ExitCode);
        Assert.Contains("not installed", noEngine.StdErr);

        // A corrupt database: one line, exit 8, the file is left for the admin to restore.
        var db = Path.Combine(tb.DataDir, "mkb-vpn.db");
        foreach (var f in Directory.GetFiles(tb.DataDir, "mkb-vpn.db-*"))
            File.Delete(f);
        File.WriteAllBytes(db, System.Security.Cryptography.RandomNumberGenerator.GetBytes(8192));
        Refused(8, "corrupt", "list");
        Refused(8, "corrupt", "add", "x4");
    }
}
