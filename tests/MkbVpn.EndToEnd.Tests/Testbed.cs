using System.Globalization;
using System.Security.Cryptography;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// The office in network namespaces (docs/testing.md addresses only):
///   server   — mkb-vpn's WireGuard interface; underlay 198.18.1.1 (to A) and 198.18.2.1 (to B);
///              internal network 198.51.100.1/24 (like the host's Incus bridge)
///   client A — 198.18.1.2, a real wireguard-go + wg peer loaded with wg-quick from its config
///   client B — 198.18.2.2, the same
///   internal — 198.51.100.2, a host on the internal network, routing back via the server
/// Every namespace, link, process and socket is removed on Dispose, also after a failure.
/// </summary>
internal sealed class Testbed : IDisposable
{
    public const string VpnSubnet = "203.0.113.0/24";
    public const string VpnSubnet6 = "fd00:5e:1::/64";
    public const string InternalNetwork = "198.51.100.0/24";
    public const string InternalHost = "198.51.100.2";
    public const string ServerTunnel = "203.0.113.1";

    public string Id { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))[..5];
    public string Server => $"mkbS{Id}";
    public string ClientA => $"mkbA{Id}";
    public string ClientB => $"mkbB{Id}";
    public string Internal => $"mkbI{Id}";
    public string ServerInterface => $"mkbs{Id}";
    public string DataDir { get; }

    private readonly List<string> _namespaces = [];
    private readonly List<string> _wgInterfaces = [];
    private readonly List<System.Diagnostics.Process> _processes = [];

    public string ClientC => $"mkbC{Id}";

    /// <summary>A third client host: 198.18.3.2, linked to the server's 198.18.3.1.</summary>
    public void AddClientC()
    {
        AddNamespace(ClientC);
        Link(Server, "uc0", "198.18.3.1/24", ClientC, "uc1", "198.18.3.2/24");
        Shell.Check("ip", "-n", ClientC, "route", "add", "default", "via", "198.18.3.1");
    }

    /// <summary>Starts a long-running command inside a namespace; it is killed on Dispose.</summary>
    public System.Diagnostics.Process Spawn(string ns, IReadOnlyList<string> command, IDictionary<string, string>? env = null)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns }.Concat(command))
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        var p = System.Diagnostics.Process.Start(psi)!;
        _processes.Add(p);
        return p;
    }

    public Testbed(bool withClients = true)
    {
        if (Environment.UserName != "root" && !string.Equals(Shell.Run("id", "-u").StdOut.Trim(), "0", StringComparison.Ordinal))
            throw new InvalidOperationException("the end-to-end tests need root (network namespaces, TUN devices): run scripts/test.sh as root");
        DataDir = Path.Combine(Path.GetTempPath(), $"mkb-vpn-e2e-{Id}");
        _wgInterfaces.Add(ServerInterface);
        try
        {
            AddNamespace(Server);
            AddNamespace(Internal);
            Link(Server, "i0", "198.51.100.1/24", Internal, "i1", $"{InternalHost}/24");
            Shell.Check("ip", "-n", Internal, "route", "add", VpnSubnet, "via", "198.51.100.1");
            if (withClients)
            {
                AddNamespace(ClientA);
                AddNamespace(ClientB);
                Link(Server, "ua0", "198.18.1.1/24", ClientA, "ua1", "198.18.1.2/24");
                Link(Server, "ub0", "198.18.2.1/24", ClientB, "ub1", "198.18.2.2/24");
                // Each client reaches any server address (the endpoint is 198.18.1.1) through its link.
                Shell.Check("ip", "-n", ClientA, "route", "add", "default", "via", "198.18.1.1");
                Shell.Check("ip", "-n", ClientB, "route", "add", "default", "via", "198.18.2.1");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    internal void AddNamespace(string ns)
    {
        Shell.Check("ip", "netns", "add", ns);
        _namespaces.Add(ns);
        Shell.Check("ip", "-n", ns, "link", "set", "lo", "up");
    }

    internal static void Link(string ns1, string if1, string addr1, string ns2, string if2, string addr2)
    {
        Shell.Check("ip", "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2);
        Shell.Check("ip", "-n", ns1, "address", "add", addr1, "dev", if1);
        Shell.Check("ip", "-n", ns2, "address", "add", addr2, "dev", if2);
        Shell.Check("ip", "-n", ns1, "link", "set", if1, "up");
        Shell.Check("ip", "-n", ns2, "link", "set", if2, "up");
    }

    /// <summary>The mkb-vpn executable built next to the tests.</summary>
    public static string MkbVpn
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "mkb-vpn");
            return File.Exists(path) ? path : throw new FileNotFoundException("mkb-vpn apphost not found next to the tests", path);
        }
    }

    /// <summary>Runs mkb-vpn inside the server namespace with this testbed's data directory.</summary>
    public Shell.Result Vpn(params string[] args) =>
        Shell.Run("ip", ["netns", "exec", Server, MkbVpn, "--data-dir", DataDir, .. args], TimeSpan.FromSeconds(120),
            new Dictionary<string, string> { ["MKB_VPN_ENGINE"] = Engine, ["MKB_VPN_CONTROL"] = Control });

    /// <summary>The server's userspace data plane: "wireguard-go" or "builtin" (mkb-vpn's own engine).</summary>
    public string Engine { get; init; } = "builtin";

    /// <summary>How mkb-vpn drives the interface: "uapi" (its own socket client) or "wg" (the kernel path, through wg(8)).</summary>
    public string Control { get; init; } = "uapi";

    public string VpnOk(params string[] args)
    {
        var r = Vpn(args);
        Assert.True(r.ExitCode == 0, $"mkb-vpn {string.Join(' ', args)}: {r}");
        return r.StdOut;
    }

    public void InitServer(params string[] extra) =>
        VpnOk(["init", "--endpoint", "198.18.1.1:51820", "--subnet", VpnSubnet, "--subnet6", VpnSubnet6,
               "--internal-network", InternalNetwork, "--dns", "none", "--interface", ServerInterface, .. extra]);

    /// <summary>
    /// Brings a client up from the config file mkb-vpn wrote, with the real wg-quick (which runs
    /// wireguard-go, as on a laptop without the kernel module). The file name is the interface name.
    /// </summary>
    public void ClientUp(string ns, string configPath)
    {
        _wgInterfaces.Add(Path.GetFileNameWithoutExtension(configPath));
        var r = Shell.Run("ip", ["netns", "exec", ns, "wg-quick", "up", configPath], TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go" });
        Assert.True(r.ExitCode == 0, $"wg-quick up {configPath}: {r}");
    }

    /// <summary>Removes this WireGuard interface's process and socket on Dispose too (a peer brought up by hand).</summary>
    public void Track(string iface) => _wgInterfaces.Add(iface);

    public bool Ping(string ns, string address, double waitSeconds = 1) =>
        Shell.Run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", waitSeconds.ToString(CultureInfo.InvariantCulture), address).ExitCode == 0;

    /// <summary>Latest handshake (unix seconds) a WireGuard interface in a namespace reports for its only/first peer.</summary>
    public long LatestHandshake(string ns, string iface)
    {
        var r = Shell.Run("ip", "netns", "exec", ns, "wg", "show", iface, "latest-handshakes");
        var line = r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return line is null ? 0 : long.Parse(line.Split('\t')[1], CultureInfo.InvariantCulture);
    }

    public IReadOnlyList<string> ServerPeers()
    {
        var r = Shell.Run("ip", "netns", "exec", Server, "wg", "show", ServerInterface, "peers");
        return r.ExitCode == 0 ? r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries) : [];
    }

    public void Dispose()
    {
        Shell.TearDown(_processes, _namespaces, _wgInterfaces);
        if (Directory.Exists(DataDir))
            Directory.Delete(DataDir, recursive: true);
    }
}
