using System.Net;
using Microsoft.Data.Sqlite;
using MkbVpn.Clients;
using MkbVpn.Configs;
using MkbVpn.Configs.Importers;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>The readers of PiVPN, wg-easy and wg-quick installations, the planner's checks and the name mapping.</summary>
public sealed class ImportTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    internal static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    private ClientService Service(string sub = "data") => new(new Paths(_dir.File(sub)), new ManualTime(Now));

    private static string KeyFile(string name) => File.ReadAllText(Fixture("pivpn", "etc", "wireguard", "keys", name)).Trim();

    /// <summary>Builds wg-easy v15's database from the fixture's SQL text.</summary>
    internal static string WgEasyV15Database(string path)
    {
        using (var db = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = File.ReadAllText(Fixture("wg-easy", "v15", "wg-easy.sql"));
            cmd.ExecuteNonQuery();
        }
        return path;
    }

    // ---- PiVPN -------------------------------------------------------------

    [Fact]
    public void PiVpn_reads_server_clients_keys_disabled_marker_and_creation_times()
    {
        var src = PiVpnReader.Read(Fixture("pivpn", "etc", "wireguard"));
        Assert.Empty(src.Problems);
        var s = src.Server!;
        Assert.Equal(KeyFile("server_priv"), s.PrivateKey.ToBase64());
        Assert.Equal(51820, s.ListenPort);
        Assert.Equal(IPNetwork.Parse("203.0.113.0/24"), s.Subnet4);
        Assert.Equal(IPNetwork.Parse("fd00:5e:1::/64"), s.Subnet6);
        Assert.Equal(["198.51.100.53"], s.Dns);
        Assert.Equal(1420, s.Mtu);
        Assert.Equal(25, s.Keepalive);
        Assert.Equal(("198.18.1.1", 51820), (s.EndpointHost, s.EndpointPort));
        Assert.Equal(["alice", "bob", "me@phone"], src.Clients.Select(c => c.Name));
        var bob = src.Clients[1];
        Assert.False(bob.Enabled);
        Assert.Contains("#[disabled]", bob.DisabledBy);
        Assert.All(src.Clients, c => Assert.NotNull(c.PrivateKey));
        Assert.All(src.Clients, c => Assert.NotNull(c.PresharedKey));
        Assert.Equal(KeyFile("alice_priv"), src.Clients[0].PrivateKey!.ToBase64());
        Assert.Equal(KeyFile("alice_psk"), src.Clients[0].PresharedKey!.ToBase64());
        Assert.Equal(IPAddress.Parse("fd00:5e:1::cb00:7102"), src.Clients[0].Address6);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000 + 86400), src.Clients[0].CreatedAt);
    }

    [Fact]
    public void PiVpn_plan_maps_the_name_our_rules_refuse_and_derives_internal_networks()
    {
        var plan = Service().PlanImport(PiVpnReader.Read(Fixture("pivpn", "etc", "wireguard")), new ImportOptions());
        Assert.Equal(["alice", "bob", "me-phone"], plan.Clients.Select(c => c.Name));
        Assert.Equal([("'me@phone'", "me-phone")], plan.Renamed);
        Assert.Equal([IPNetwork.Parse("198.51.100.0/24")], plan.Server.InternalNetworks);
        Assert.False(plan.Server.FullTunnel);
        Assert.Equal(WireGuardKeys.PublicKeyOf(plan.Server.PrivateKey), plan.Server.PublicKey);
        // PiVPN's server sits at ::cb00:7101; ours at the first host: said, not refused.
        Assert.Contains(plan.Notes, n => n.Contains("fd00:5e:1::cb00:7101", StringComparison.Ordinal));
    }

    [Fact]
    public void PiVpn_private_key_that_does_not_match_its_public_key_refuses_naming_the_file()
    {
        var root = _dir.File("pivpn");
        CopyDir(Fixture("pivpn"), root);
        string conf = Path.Combine(root, "etc", "wireguard", "configs", "alice.conf");
        // alice's config carries bob's private key: the file matches bob's peer, and bob's key file is not alice's.
        File.Delete(conf);
        File.WriteAllText(Path.Combine(root, "etc", "wireguard", "keys", "alice_priv"), KeyFile("bob_priv") + "\n");
        var e = Assert.Throws<ImportRefusedException>(() => Service().PlanImport(PiVpnReader.Read(Path.Combine(root, "etc", "wireguard")), new ImportOptions()));
        var line = Assert.Single(e.Problems);
        Assert.Contains("wg0.conf:7", line);
        Assert.Contains("'alice'", line);
        Assert.Contains("does not match its public key", line);
        Assert.DoesNotContain(KeyFile("bob_priv"), line);
    }

    [Fact]
    public void PiVpn_missing_setup_vars_is_a_problem_and_missing_key_files_make_public_key_only_clients()
    {
        var root = _dir.File("pivpn");
        CopyDir(Fixture("pivpn"), root);
        string wg = Path.Combine(root, "etc", "wireguard");
        Directory.Delete(Path.Combine(wg, "configs"), recursive: true);
        Directory.Delete(Path.Combine(wg, "keys"), recursive: true);
        var src = PiVpnReader.Read(wg);
        Assert.Empty(src.Problems);
        Assert.All(src.Clients, c => Assert.Null(c.PrivateKey));
        Assert.All(src.Clients, c => Assert.Null(c.CreatedAt));
        var plan = Service().PlanImport(src, new ImportOptions());
        Assert.Equal(3, plan.Clients.Count(c => c.PrivateKey is null));

        Directory.Delete(Path.Combine(root, "etc", "pivpn"), recursive: true);
        if (File.Exists(PiVpnReader.DefaultSetupVars))
            return;   // a real PiVPN on this machine would be found instead
        var e = Assert.Throws<ImportRefusedException>(() => Service().PlanImport(PiVpnReader.Read(wg), new ImportOptions()));
        Assert.Contains(e.Problems, p => p.Contains("no PiVPN setupVars.conf", StringComparison.Ordinal));
    }

    // ---- wg-easy -----------------------------------------------------------

    [Fact]
    public void WgEasy_v14_disabled_without_psk_without_private_key_and_odd_names()
    {
        var src = WgEasyReader.Read(Fixture("wg-easy", "v14", "wg0.json"), Now);
        Assert.Empty(src.Problems);
        Assert.Equal(IPNetwork.Parse("203.0.113.0/24"), src.Server!.Subnet4);
        Assert.Null(src.Server.EndpointHost);
        Assert.Equal(["alice", "bob", "Dave's iPhone 15 Pro", "erin"], src.Clients.Select(c => c.Name));
        Assert.Equal([true, false, true, true], src.Clients.Select(c => c.Enabled));
        Assert.Null(src.Clients[2].PresharedKey);
        Assert.Null(src.Clients[3].PrivateKey);
        Assert.Equal(new DateTimeOffset(2024, 3, 1, 9, 15, 0, TimeSpan.Zero), src.Clients[0].CreatedAt);

        // v14 never stored the endpoint: refused without --endpoint, named by file and line.
        var e = Assert.Throws<ImportRefusedException>(() => Service().PlanImport(src, new ImportOptions()));
        Assert.Contains("wg0.json:2", Assert.Single(e.Problems));
        Assert.Contains("--endpoint", e.Problems[0]);

        var plan = Service().PlanImport(src, new ImportOptions { Endpoint = "198.18.1.1" });
        Assert.Equal("198.18.1.1:51820", plan.Server.Endpoint);
        Assert.Equal("Dave-s-iPhone-1", plan.Clients[2].Name);
        Assert.True(plan.Clients[2].PresharedKey.IsZero);
        Assert.Null(plan.Clients[3].PrivateKey);
        Assert.Contains(plan.Notes, n => n.Contains("'erin'", StringComparison.Ordinal) && n.Contains("public key only", StringComparison.Ordinal));
    }

    [Fact]
    public void WgEasy_v15_database_disabled_expired_per_client_settings_and_endpoint()
    {
        var src = WgEasyReader.Read(WgEasyV15Database(_dir.File("wg-easy.db")), Now);
        Assert.Empty(src.Problems);
        var s = src.Server!;
        Assert.Equal(("198.18.1.1", 51820), (s.EndpointHost, s.EndpointPort));
        Assert.Equal(IPNetwork.Parse("fd00:5e:1::/64"), s.Subnet6);
        Assert.Equal(IPAddress.Parse("203.0.113.1"), s.Address4);
        Assert.Empty(s.Dns!);
        Assert.Equal(["alice", "bob", "Expired contractor"], src.Clients.Select(c => c.Name));
        Assert.Equal([true, false, false], src.Clients.Select(c => c.Enabled));
        Assert.Contains("expired", src.Clients[2].DisabledBy);
        Assert.Equal([IPNetwork.Parse("203.0.113.0/24")], src.Clients[2].AllowedIps);
        Assert.Equal(["198.51.100.53"], src.Clients[2].Dns);
        Assert.Equal(25, src.Clients[0].Keepalive);
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 8, 0, 0, TimeSpan.Zero), src.Clients[0].CreatedAt);
        var plan = Service().PlanImport(src, new ImportOptions());
        Assert.Equal([IPNetwork.Parse("198.51.100.0/24")], plan.Server.InternalNetworks);
        Assert.Equal("Expired-contrac", plan.Clients[2].Name);
        Assert.Contains(src.Notes, n => n.Contains("clients_table id 3: the client's MTU 1380", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_clients_with_one_name_keep_the_first_and_map_the_second()
    {
        var text = File.ReadAllText(Fixture("wg-easy", "v14", "wg0.json")).Replace("\"name\": \"bob\"", "\"name\": \"ALICE\"");
        File.WriteAllText(_dir.File("wg0.json"), text);
        var plan = Service().PlanImport(WgEasyReader.Read(_dir.File("wg0.json"), Now), new ImportOptions { Endpoint = "198.18.1.1" });
        Assert.Equal(["alice", "ALICE-2", "Dave-s-iPhone-1", "erin"], plan.Clients.Select(c => c.Name));
        Assert.Contains(("'ALICE'", "ALICE-2"), plan.Renamed);
    }

    [Fact]
    public void WgEasy_broken_json_and_missing_fields_are_named_by_line()
    {
        File.WriteAllText(_dir.File("bad.json"), "{\n  \"server\": {\n    \"privateKey\": \"x\"\n  ,\n}");
        var bad = WgEasyReader.Read(_dir.File("bad.json"), Now);
        Assert.Contains("bad.json:5: not valid JSON", Assert.Single(bad.Problems));

        var text = File.ReadAllText(Fixture("wg-easy", "v14", "wg0.json"));
        var alicePub = System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("clients").EnumerateObject().First().Value.GetProperty("publicKey").GetString()!;
        File.WriteAllText(_dir.File("missing.json"), text.Replace($"\"publicKey\": \"{alicePub}\",", ""));
        var missing = WgEasyReader.Read(_dir.File("missing.json"), Now);
        Assert.Contains("missing.json:8: client 'alice' has no publicKey", Assert.Single(missing.Problems));
    }

    // ---- wg-quick ----------------------------------------------------------

    [Fact]
    public void WgQuick_names_from_markers_then_client_files_then_generated_and_commented_peer_is_disabled()
    {
        var src = WgQuickServerReader.Read(Fixture("wg-quick", "wg0.conf"), Fixture("wg-quick", "clients"));
        Assert.Empty(src.Problems);
        Assert.Equal(["alice", "toms-laptop", null, "oldphone"], src.Clients.Select(c => c.Name));
        Assert.Equal([true, true, true, false], src.Clients.Select(c => c.Enabled));
        Assert.Null(src.Clients[1].PresharedKey);                     // hand-written peer without PSK
        Assert.Null(src.Clients[2].PrivateKey);                       // no client file: public key only
        Assert.NotNull(src.Clients[3].PrivateKey);                    // commented out, its file still matched
        Assert.Equal(("198.18.1.1", 51820), (src.Server!.EndpointHost, src.Server.EndpointPort));   // from the client files
        Assert.Contains(src.Notes, n => n.Contains("wg0.conf:5: PostUp", StringComparison.Ordinal));
        var plan = Service().PlanImport(src, new ImportOptions());
        Assert.Equal(["alice", "toms-laptop", "peer-3", "oldphone"], plan.Clients.Select(c => c.Name));
        Assert.Equal(0, plan.Clients[0].Keepalive);
        Assert.Equal(25, plan.Clients[1].Keepalive);
        Assert.Equal(["198.51.100.53", "198.51.100.54"], plan.Server.Dns);
    }

    [Fact]
    public void WgQuick_without_client_files_needs_an_endpoint_and_imports_public_keys_only()
    {
        var src = WgQuickServerReader.Read(Fixture("wg-quick", "wg0.conf"), null);
        Assert.Equal(["alice", null, null, "oldphone"], src.Clients.Select(c => c.Name));
        var e = Assert.Throws<ImportRefusedException>(() => Service().PlanImport(src, new ImportOptions()));
        Assert.Contains("--endpoint", Assert.Single(e.Problems));
        var plan = Service().PlanImport(src, new ImportOptions { Endpoint = "198.18.1.1:51820", InternalNetworks = ["198.51.100.0/24"] });
        Assert.All(plan.Clients, c => Assert.Null(c.PrivateKey));
        Assert.Equal(["alice", "peer-2", "peer-3", "oldphone"], plan.Clients.Select(c => c.Name));
    }

    [Fact]
    public void WgQuick_every_problem_is_reported_with_file_and_line_and_nothing_is_imported()
    {
        var k1 = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey()).ToBase64();
        var k2 = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey()).ToBase64();
        string conf = _dir.File("wg0.conf");
        File.WriteAllText(conf, string.Join("\r\n",
            "# a comment",
            "[Interface]",
            $"PrivateKey = {WireGuardKeys.NewPrivateKey().ToBase64()}   # inline comment",
            "Address = 203.0.113.1/24",
            "ListenPort = 70000",
            "[Peer]",
            $"PublicKey = {k1}",
            "AllowedIPs = 203.0.113.2/32",
            "[Peer]",
            $"PublicKey = {k2}",
            "AllowedIPs = 203.0.113.2/32",         // the same address twice
            "[Peer]",
            $"PublicKey = {k1}",                   // the same key twice
            "AllowedIPs = 198.51.100.7/32",        // outside the subnet
            "[Peer]",
            "PublicKey = not-a-key",
            "AllowedIPs = 203.0.113.9/32",
            "[Peer]",
            "AllowedIPs = 203.0.113.10/32",        // no PublicKey
            "[Tunnel]",
            "garbage line",
            ""));
        var src = WgQuickServerReader.Read(conf, null);
        var e = Assert.Throws<ImportRefusedException>(() => Service().PlanImport(src, new ImportOptions { Endpoint = "198.18.1.1" }));
        string all = string.Join("\n", e.Problems);
        Assert.Contains("wg0.conf:5: ListenPort '70000' is not a number from 1 to 65535", all);
        Assert.Contains("wg0.conf:16: PublicKey is not a WireGuard key", all);
        Assert.Contains("wg0.conf:18: [Peer] has no PublicKey", all);
        Assert.Contains("wg0.conf:20: unknown section [Tunnel]", all);
        Assert.Contains("wg0.conf:21: expected 'Key = Value'", all);
        Assert.Contains("wg0.conf:9: client 'peer-2': address 203.0.113.2 is also the address of the peer at", all);
        Assert.Contains("wg0.conf:12: the same public key as the peer at", all);
        Assert.Contains("wg0.conf:12: client 'peer-3': 198.51.100.7 is outside 203.0.113.0/24", all);
        Assert.All(e.Problems, Fixtures.AssertOneLine);
        // Through the service too: nothing at all is written.
        var service = Service();
        Assert.Throws<ImportRefusedException>(() => service.Import(src, new ImportOptions { Endpoint = "198.18.1.1" }));
        Assert.False(Directory.Exists(service.Paths.DataDir));
    }

    [Fact]
    public void WgQuick_unreadable_file_is_one_line()
    {
        var src = WgQuickServerReader.Read(_dir.File("nope.conf"), null);
        Assert.Contains("nope.conf: cannot read (no such file)", Assert.Single(src.Problems));
    }

    // ---- the service -------------------------------------------------------

    [Fact]
    public void Import_writes_server_clients_and_configs_dry_run_writes_nothing_and_a_second_import_is_refused()
    {
        var service = Service();
        var src = WgQuickServerReader.Read(Fixture("wg-quick", "wg0.conf"), Fixture("wg-quick", "clients"));
        service.Import(src, new ImportOptions { DryRun = true });
        Assert.False(Directory.Exists(service.Paths.DataDir));

        var plan = service.Import(src, new ImportOptions { Interface = Fixtures.Interface });
        var clients = service.List();
        Assert.Equal(4, clients.Count);
        Assert.False(service.Get("oldphone").Client.Enabled);
        var alice = service.Get("alice").Client;
        Assert.Equal(src.Clients[0].PrivateKey, alice.PrivateKey);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(service.Paths.ClientConfig("alice")));
        // The rendered config is the old one, key for key.
        var old = WgQuickConfig.Parse(File.ReadAllText(Fixture("wg-quick", "clients", "wg0-client-alice.conf")));
        var ours = WgQuickConfig.Parse(service.ConfigText("alice"));
        foreach (var (section, key) in new[] { ("Interface", "PrivateKey"), ("Peer", "PublicKey"), ("Peer", "PresharedKey"), ("Peer", "Endpoint") })
            Assert.Equal(old.Sections.First(s => s.Name == section)[key], ours.Sections.First(s => s.Name == section)[key]);
        // Public key only: the config says so and has no PrivateKey line.
        string keyless = service.ConfigText("peer-3");
        Assert.Contains(ClientConfig.PublicKeyOnlyNote, keyless);
        Assert.Null(WgQuickConfig.Parse(keyless).Interface!["PrivateKey"]);

        var again = Assert.Throws<ImportRefusedException>(() => service.Import(src, new ImportOptions()));
        Assert.Equal(ExitCodes.Conflict, again.ExitCode);
        Assert.Equal(4, service.List().Count);
        Assert.Equal(plan.Server.PrivateKey, service.GetServer().PrivateKey);
    }

    [Fact]
    public void Export_round_trips_through_the_wg_quick_importer()
    {
        var service = Service();
        service.Import(PiVpnReader.Read(Fixture("pivpn", "etc", "wireguard")), new ImportOptions { Interface = Fixtures.Interface });
        File.WriteAllText(_dir.File("wg0.conf"), service.ExportWgQuick());
        var (written, skipped) = service.ExportClients(_dir.File("out"));
        Assert.Equal(3, written.Count);
        Assert.Empty(skipped);
        var back = Service("data2").PlanImport(WgQuickServerReader.Read(_dir.File("wg0.conf"), _dir.File("out")), new ImportOptions());
        var before = service.List();
        Assert.Equal(before.Select(c => (c.Name, c.Enabled, c.PublicKey.ToBase64(), c.PrivateKey!.ToBase64(), c.PresharedKey.ToBase64(), c.AddressText)),
                     back.Clients.Select(c => (c.Name, c.Enabled, c.PublicKey.ToBase64(), c.PrivateKey!.ToBase64(), c.PresharedKey.ToBase64(), c.AddressText)));
        Assert.Equal(service.GetServer().PrivateKey, back.Server.PrivateKey);
    }

    // ---- name mapping ------------------------------------------------------

    [Theory]
    [InlineData("alice", "alice")]
    [InlineData("me@phone", "me-phone")]
    [InlineData("Dave's iPhone 15 Pro", "Dave-s-iPhone-1")]
    [InlineData("..hidden", "hidden")]
    [InlineData("ünïcødé", "n-c-d")]
    [InlineData("@@@", "peer-8")]
    [InlineData(null, "peer-8")]
    [InlineData("a very long laptop name", "a-very-long-lap")]
    public void Names_our_rules_refuse_are_mapped_to_valid_ones(string? original, string expected)
    {
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        string name = ClientNameMapping.Map(original, taken, 7);
        Assert.Equal(expected, name);
        Assert.True(ClientName.IsValid(name));
    }

    [Fact]
    public void Mapped_names_are_unique_without_regard_to_case()
    {
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "me-phone", "a-very-long-lap" };
        Assert.Equal("me-phone-2", ClientNameMapping.Map("me@phone", taken, 0));
        Assert.Equal("ME-PHONE-3", ClientNameMapping.Map("ME@PHONE", taken, 1));
        string cut = ClientNameMapping.Map("a very long laptop name", taken, 2);
        Assert.Equal("a-very-long-l-2", cut);
        Assert.True(ClientName.IsValid(cut));
    }

    private static void CopyDir(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(d.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(f, f.Replace(from, to, StringComparison.Ordinal));
    }
}
