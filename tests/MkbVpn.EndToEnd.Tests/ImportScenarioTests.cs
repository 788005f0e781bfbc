using System.Globalization;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// Move in and move out, with real peers: an installation of PiVPN, wg-easy or a wg-quick server
/// (fixtures built from each tool's own scripts, real keys, test ranges) is imported, 'up' serves
/// it, and a wireguard-go client loaded from that tool's own client file, untouched, handshakes
/// and reaches the internal host; the client the old tool had disabled cannot. Then a backup of
/// a running server taken under concurrent adds is restored in other namespaces, and an old
/// client file connects there.
/// </summary>
public sealed class ImportScenarioTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly string _tmp = Directory.CreateTempSubdirectory("mkb-vpn-e2e-import-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    public static TheoryData<string, string, string> Tools => new()
    {
        { "pivpn", "pivpn/etc/wireguard/configs/alice.conf", "pivpn/etc/wireguard/configs/bob.conf" },
        { "wg-easy", "wg-easy/v15/alice.conf", "wg-easy/v15/bob.conf" },
        { "wg-easy-v14", "wg-easy/v14/alice.conf", "wg-easy/v14/bob.conf" },
        { "wg-quick", "wg-quick/clients/wg0-client-alice.conf", "wg-quick/clients/wg0-client-oldphone.conf" },
    };

    [Theory]
    [MemberData(nameof(Tools))]
    public void Imported_installation_serves_the_old_client_file_and_not_the_disabled_one(string tool, string enabledFile, string disabledFile)
    {
        using var tb = new Testbed();
        string[] source = tool switch
        {
            "pivpn" => ["pivpn", Fixture("pivpn", "etc", "wireguard")],
            "wg-easy" => ["wg-easy", WgEasyDatabase()],
            // v14 kept the endpoint (WG_HOST) and the clients' AllowedIPs (WG_ALLOWED_IPS) in its environment, not in wg0.json
            "wg-easy-v14" => ["wg-easy", Fixture("wg-easy", "v14", "wg0.json"), "--endpoint", "198.18.1.1:51820", "--internal-network", Testbed.InternalNetwork],
            _ => ["wg-quick", Fixture("wg-quick", "wg0.conf"), "--clients", Fixture("wg-quick", "clients")],
        };
        output.WriteLine(tb.VpnOk(["import", .. source, "--interface", tb.ServerInterface]));
        tb.VpnOk("up");

        string a = $"a{tb.Id}", b = $"b{tb.Id}";
        LoadOriginal(tb, tb.ClientA, a, Fixture(enabledFile.Split('/')));
        LoadOriginal(tb, tb.ClientB, b, Fixture(disabledFile.Split('/')));

        var served = Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.InternalHost, 0.5), Deadline);
        Assert.True(served is not null, $"{tool}: the enabled client's own file does not reach the internal host");
        Assert.True(tb.Ping(tb.ClientA, Testbed.ServerTunnel), $"{tool}: the enabled client cannot reach the server's tunnel address");
        Assert.NotEqual(0, tb.LatestHandshake(tb.ClientA, a));
        output.WriteLine($"{tool}: served {served!.Value.TotalMilliseconds:0} ms after the client came up");

        // The disabled client is no peer of the server; its handshake never completes.
        string disabledKey = PublicKeyOf(tb, tb.ClientB, b);
        Assert.DoesNotContain(disabledKey, tb.ServerPeers());
        Assert.False(tb.Ping(tb.ClientB, Testbed.InternalHost, 2), $"{tool}: the disabled client reaches the internal host");
        Assert.Equal(0, tb.LatestHandshake(tb.ClientB, b));
        Assert.Contains("blocked", tb.VpnOk("list"));

        if (tool == "wg-quick")
        {
            // A peer the admin had no client file for is imported public key only: show and qr say
            // so, and its device, with the config only it holds, is served all the same.
            var show = tb.Vpn("show", "peer-3");
            Assert.Contains("public key only", show.StdErr);
            Assert.DoesNotContain("PrivateKey =", show.StdOut);
            Assert.Equal(2, tb.Vpn("qr", "peer-3").ExitCode);
            Shell.Check("ip", "-n", tb.ClientB, "link", "del", b);
            string k = $"k{tb.Id}";
            LoadOriginal(tb, tb.ClientB, k, Fixture("wg-quick", "device-only", "peer7.conf"));
            Assert.NotNull(Shell.WaitFor(() => tb.Ping(tb.ClientB, Testbed.InternalHost, 0.5), Deadline));
        }
    }

    [Fact]
    public async Task Backup_under_concurrent_adds_restores_in_other_namespaces_and_old_client_files_connect()
    {
        string backup = Path.Combine(_tmp, "live.mkbbak");
        string pass = Path.Combine(_tmp, "pass");
        File.WriteAllText(pass, "correct horse battery staple\n");
        string oldConf;
        using var first = new Testbed();
        first.InitServer();
        first.VpnOk("up");
        string a = $"a{first.Id}";
        first.VpnOk("add", a, "--no-qr");
        oldConf = Path.Combine(first.DataDir, "clients", a + ".conf");
        first.ClientUp(first.ClientA, oldConf);
        Assert.NotNull(Shell.WaitFor(() => first.Ping(first.ClientA, Testbed.InternalHost, 0.5), Deadline));

        // Adds go on while the backup is taken (each add is live on the running interface).
        int adds = 0;
        var adder = Task.Run(() =>
        {
            for (int i = 0; i < 12; i++)
            {
                var r = first.Vpn("add", $"x{i}{first.Id}", "--no-qr");
                Assert.True(r.ExitCode == 0, r.ToString());
                Interlocked.Increment(ref adds);
            }
        });
        Assert.NotNull(Shell.WaitFor(() => Volatile.Read(ref adds) >= 2 || adder.IsCompleted, Deadline));
        int doneBefore = Volatile.Read(ref adds);
        output.WriteLine(first.VpnOk("backup", backup, "--passphrase-file", pass));
        int doneAfter = Volatile.Read(ref adds);
        await adder.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(backup));
        first.VpnOk("down");   // the old host is gone (its interface name comes back in the restore)

        using var second = new Testbed();
        second.Track(first.ServerInterface);
        var restored = Shell.Run("ip", ["netns", "exec", second.Server, Testbed.MkbVpn, "--data-dir", second.DataDir, "restore", backup, "--passphrase-file", pass], TimeSpan.FromSeconds(60));
        Assert.True(restored.ExitCode == 0, restored.ToString());
        // Through the CLI: the documented exit codes, one line, nothing changed.
        var twice = Shell.Run(Testbed.MkbVpn, "--data-dir", second.DataDir, "restore", backup, "--passphrase-file", pass);
        Assert.Equal(4, twice.ExitCode);
        File.WriteAllBytes(backup + ".cut", File.ReadAllBytes(backup)[..1000]);
        var cut = Shell.Run(Testbed.MkbVpn, "--data-dir", Path.Combine(_tmp, "fresh"), "restore", backup + ".cut", "--passphrase-file", pass);
        Assert.Equal(2, cut.ExitCode);
        Assert.Matches(@"^mkb-vpn: error: .*truncated[^\n]*\n$", cut.StdErr);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "fresh")));
        var up = Shell.Run("ip", ["netns", "exec", second.Server, Testbed.MkbVpn, "--data-dir", second.DataDir, "up"], TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["MKB_VPN_ENGINE"] = "builtin" });
        Assert.True(up.ExitCode == 0, up.ToString());
        var list = Shell.Run("ip", "netns", "exec", second.Server, Testbed.MkbVpn, "--data-dir", second.DataDir, "list").StdOut;
        int clients = list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1;
        output.WriteLine($"backup taken while adds {doneBefore + 1}-{doneAfter + 1} of 12 ran holds {clients - 1} of them");
        Assert.InRange(clients - 1, doneBefore, Math.Min(12, doneAfter + 1));

        // The old client file, untouched, under a new interface name in the new client namespace.
        string again = Path.Combine(_tmp, $"r{second.Id}.conf");
        File.Copy(oldConf, again);
        File.SetUnixFileMode(again, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        second.ClientUp(second.ClientA, again);
        Assert.NotNull(Shell.WaitFor(() => second.Ping(second.ClientA, Testbed.InternalHost, 0.5), Deadline));
        Assert.True(second.Ping(second.ClientA, Testbed.ServerTunnel));
    }

    // ---- helpers ------------------------------------------------------------

    private string WgEasyDatabase()
    {
        string path = Path.Combine(_tmp, "wg-easy.db");
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = File.ReadAllText(Fixture("wg-easy", "v15", "wg-easy.sql"));
        cmd.ExecuteNonQuery();
        return path;
    }

    /// <summary>
    /// Loads another tool's client file as wg-quick does (docs/testing.md): wireguard-go, then
    /// 'wg setconf' with 'wg-quick strip FILE', its addresses and routes. The file's content is
    /// untouched; only its name is the unique interface name (wg-quick requires that). DNS lines
    /// are left alone so no test touches the host's resolver.
    /// </summary>
    private void LoadOriginal(Testbed tb, string ns, string iface, string original)
    {
        string file = Path.Combine(_tmp, iface + ".conf");
        File.Copy(original, file);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        tb.Track(iface);
        Shell.Check("ip", "netns", "exec", ns, "sh", "-c", $"wireguard-go {iface} </dev/null >/dev/null 2>&1");
        string stripped = Shell.Check("wg-quick", "strip", file);
        string strippedFile = Path.Combine(_tmp, iface + ".stripped");
        File.WriteAllText(strippedFile, stripped);
        Shell.Check("ip", "netns", "exec", ns, "wg", "setconf", iface, strippedFile);
        var lines = File.ReadAllLines(original).Select(l => l.Split('#')[0].Trim()).ToList();
        IEnumerable<string> Values(string key) => lines
            .Where(l => l.StartsWith(key, StringComparison.OrdinalIgnoreCase) && l[key.Length..].TrimStart().StartsWith('='))
            .SelectMany(l => l[(l.IndexOf('=') + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        foreach (var address in Values("Address"))
            Shell.Check("ip", "-n", ns, "address", "add", address, "dev", iface);
        string mtu = Values("MTU").FirstOrDefault() ?? "1420";
        Shell.Check("ip", "-n", ns, "link", "set", iface, "mtu", mtu, "up");
        foreach (var route in Values("AllowedIPs"))
            Shell.Check("ip", "-n", ns, "route", "replace", route, "dev", iface);
    }

    private static string PublicKeyOf(Testbed tb, string ns, string iface) =>
        Shell.Check("ip", "netns", "exec", ns, "wg", "show", iface, "public-key").Trim();
}
