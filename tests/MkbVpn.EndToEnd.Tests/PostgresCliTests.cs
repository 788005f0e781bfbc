using System.Text.Json;
using MkbVpn.Tests;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// The mkb-vpn command on a PostgreSQL registry (a real server: <see cref="PostgresServer"/>): the
/// verbs with --store, 20 adds at once as separate processes from two data directories (two hosts,
/// two lock files), and migrate-store of a SQLite server after which list and show print the same.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresCliTests(PostgresServer pg) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "mkb-vpn-pgcli-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    private string Dir(string name) => Path.Combine(_root, name);

    private static Shell.Result Vpn(string dataDir, string? store, params string[] args) =>
        Shell.Run(Testbed.MkbVpn, [.. (store is null ? Array.Empty<string>() : ["--store", store]), "--data-dir", dataDir, .. args], TimeSpan.FromSeconds(180));

    private static string[] InitArgs(string iface) =>
        ["init", "--endpoint", "198.18.1.1:51820", "--subnet", "203.0.113.0/24", "--subnet6", "fd00:1234:5678::/64",
         "--internal-network", "198.51.100.0/24", "--dns", "none", "--interface", iface];

    [Fact]
    public async Task Twenty_adds_at_once_from_two_hosts_get_twenty_distinct_addresses_and_the_verbs_work()
    {
        string store = pg.NewDatabase();
        string a = Dir("host-a"), b = Dir("host-b");
        var init = Vpn(a, store, InitArgs("mkbpg" + Guid.NewGuid().ToString("N")[..6]));
        Assert.True(init.ExitCode == 0, init.ToString());
        Directory.CreateDirectory(b);

        var names = Enumerable.Range(1, 20).Select(i => $"u{i:00}").ToList();
        var runs = names.Select((n, i) => Task.Run(() => (Name: n, Result: Vpn(i % 2 == 0 ? a : b, store, "add", n, "--no-qr")))).ToArray();
        var done = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromMinutes(5));
        Assert.All(done, r => Assert.True(r.Result.ExitCode == 0, $"{r.Name}: {r.Result}"));

        var listed = JsonDocument.Parse(Vpn(b, store, "list", "--json").StdOut).RootElement.EnumerateArray().ToList();
        Assert.Equal(names, listed.Select(c => c.GetProperty("name").GetString()).Order());
        Assert.Equal(20, listed.Select(c => c.GetProperty("address4").GetString()).Distinct().Count());
        Assert.Equal(20, listed.Select(c => c.GetProperty("address6").GetString()).Distinct().Count());
        // Each host wrote the files of its own adds.
        Assert.Equal(10, Directory.GetFiles(Path.Combine(a, "clients"), "*.conf").Length);
        Assert.Equal(10, Directory.GetFiles(Path.Combine(b, "clients"), "*.conf").Length);

        Assert.Equal(0, Vpn(a, store, "block", "u01").ExitCode);
        Assert.Equal(0, Vpn(b, store, "remove", "u02", "--yes").ExitCode);
        var after = JsonDocument.Parse(Vpn(a, store, "list", "--json").StdOut).RootElement.EnumerateArray().ToList();
        Assert.Equal(19, after.Count);
        Assert.Equal("blocked", after.Single(c => c.GetProperty("name").GetString() == "u01").GetProperty("state").GetString());
        var dup = Vpn(b, store, "add", "U03", "--no-qr");
        Assert.Equal(4, dup.ExitCode);
        Assert.Single(dup.StdErr.Trim().Split('\n'));
        // The same through the variable instead of the flag.
        var viaEnv = Shell.Run(Testbed.MkbVpn, ["--data-dir", a, "list"], TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["MKB_VPN_STORE"] = store });
        Assert.Equal(0, viaEnv.ExitCode);
        Assert.Contains("u20", viaEnv.StdOut);
    }

    [Fact]
    public void A_password_in_store_is_refused_in_one_line_and_never_repeated()
    {
        var r = Vpn(Dir("x"), $"postgresql://mkbtest:{pg.Password}@127.0.0.1:{pg.Port}/postgres", "list");
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.StdErr.Trim().Split('\n'));
        Assert.Contains("passfile", r.StdErr);
        Assert.DoesNotContain(pg.Password, r.StdErr + r.StdOut);
    }

    [Fact]
    public void Migrate_store_moves_a_server_and_list_and_show_print_the_same_through_postgresql()
    {
        string data = Dir("sqlite");
        Assert.Equal(0, Vpn(data, null, InitArgs("mkbpg" + Guid.NewGuid().ToString("N")[..6])).ExitCode);
        Assert.Equal(0, Vpn(data, null, "group", "add", "staff", "--description", "Office staff").ExitCode);
        Assert.Equal(0, Vpn(data, null, "group", "add", "accounting").ExitCode);
        Assert.Equal(0, Vpn(data, null, "add", "alice", "--group", "staff", "--no-qr").ExitCode);
        Assert.Equal(0, Vpn(data, null, "add", "bob", "--group", "accounting", "--expires", "14d", "--no-qr").ExitCode);
        Assert.Equal(0, Vpn(data, null, "add", "carol", "--dns", "198.51.100.53", "--no-qr").ExitCode);
        Assert.Equal(0, Vpn(data, null, "access", "allow", "group:accounting", "198.51.100.20", "--port", "443", "--proto", "tcp").ExitCode);
        Assert.Equal(0, Vpn(data, null, "block", "carol").ExitCode);
        string[][] looks = [["list"], ["list", "--json"], ["show", "alice"], ["show", "bob"], ["show", "carol"], ["access", "list"], ["group", "list"], ["log"], ["access", "check", "bob", "198.51.100.20:443/tcp"]];
        var before = looks.Select(l => Vpn(data, null, l)).ToList();
        Assert.All(before, r => Assert.Equal(0, r.ExitCode));

        string store = pg.NewDatabase();
        var moved = Vpn(data, null, "migrate-store", "--to", store);
        Assert.True(moved.ExitCode == 0, moved.ToString());
        Assert.Contains("MKB_VPN_STORE", moved.StdOut);
        Assert.Contains("3 clients, 2 groups, 3 access rules", moved.StdOut);

        var after = looks.Select(l => Vpn(data, store, l)).ToList();
        for (int i = 0; i < looks.Length; i++)
        {
            Assert.Equal(0, after[i].ExitCode);
            Assert.Equal(before[i].StdOut, after[i].StdOut);
        }
        foreach (var name in new[] { "alice", "bob", "carol" })
            Assert.Equal(File.ReadAllText(Path.Combine(data, "clients", name + ".conf")), Vpn(data, store, "show", name).StdOut);

        // The SQLite file refuses further use; the database refuses a second move; an initialised database refuses a move into it.
        var stale = Vpn(data, null, "list");
        Assert.Equal(2, stale.ExitCode);
        Assert.Contains("MKB_VPN_STORE", stale.StdErr);
        Assert.Equal(4, Vpn(data, null, "migrate-store", "--to", store).ExitCode);
        string other = Dir("other");
        Assert.Equal(0, Vpn(other, null, InitArgs("mkbpg" + Guid.NewGuid().ToString("N")[..6])).ExitCode);
        var full = Vpn(other, null, "migrate-store", "--to", store);
        Assert.Equal(4, full.ExitCode);
        Assert.Contains("not empty", full.StdErr);
        Assert.Single(full.StdErr.Trim().Split('\n'));
        Assert.Equal(0, Vpn(other, null, "list").ExitCode);   // still on its SQLite file
    }
}
