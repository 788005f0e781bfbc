using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using MkbVpn.Tests;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// What the gateway end-to-end tests share: a scratch directory, the admin's verbs against a registry
/// (--store), gateways run as 'mkb-vpn up --foreground --gateway NAME' in a namespace with their output
/// collected in one log, and the namespaces, interfaces and processes made on the way. Everything is
/// removed on Dispose, also after a failure.
/// </summary>
internal sealed class GatewayBed : IDisposable
{
    private readonly List<string> _namespaces = [];
    private readonly List<string> _interfaces = [];
    private readonly List<Process> _processes = [];
    private readonly System.Text.StringBuilder _log = new();

    /// <param name="rootPrefix">The scratch directory's name before its random part (e.g. "mkb-vpn-gw-").</param>
    public GatewayBed(string rootPrefix)
    {
        Root = Path.Combine(Path.GetTempPath(), rootPrefix + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
    }

    /// <summary>A random part for this bed's namespace and interface names.</summary>
    public string Id { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))[..5];

    /// <summary>The scratch directory: the admin's and each gateway's data directory, client configs.</summary>
    public string Root { get; }

    /// <summary>The data directory of the admin's verbs (<see cref="Vpn"/>).</summary>
    public string AdminDir => Path.Combine(Root, "admin");

    /// <summary>
    /// A new registry database: its location as the admins give it (TCP on loopback, the password in a passfile),
    /// and the same database over PostgreSQL's Unix socket for the gateways (a path reaches across network
    /// namespaces; the test server trusts local logins).
    /// </summary>
    public static (string Location, string SocketStore) NewRegistry(PostgresServer pg)
    {
        string location = pg.NewDatabase();
        string dbname = location[(location.LastIndexOf('/') + 1)..location.IndexOf('?', StringComparison.Ordinal)];
        return (location, $"host={Path.GetDirectoryName(pg.PassFile)} port={pg.Port.ToString(CultureInfo.InvariantCulture)} dbname={dbname} user=mkbtest");
    }

    public void AddNamespace(string ns)
    {
        Shell.Check("ip", "netns", "add", ns);
        _namespaces.Add(ns);
        Shell.Check("ip", "-n", ns, "link", "set", "lo", "up");
    }

    /// <summary>Removes these WireGuard interfaces' engines and sockets on Dispose too.</summary>
    public void Track(params string[] ifaces) => _interfaces.AddRange(ifaces);

    /// <summary>Runs an admin's verb on the host against the registry.</summary>
    public Shell.Result Vpn(string store, params string[] args) =>
        Shell.Run(Testbed.MkbVpn, ["--store", store, "--data-dir", AdminDir, .. args], TimeSpan.FromSeconds(120));

    public string VpnOk(string store, params string[] args)
    {
        var r = Vpn(store, args);
        Assert.True(r.ExitCode == 0, $"mkb-vpn {string.Join(' ', args)}: {r}");
        return r.StdOut;
    }

    /// <summary>Starts 'mkb-vpn up --foreground --gateway NAME' (built-in engine) in a namespace; its lines go to <see cref="Log"/>.</summary>
    public Process StartGateway(string ns, string store, string gateway) =>
        Start(ns, store, gateway, ["--data-dir", Path.Combine(Root, gateway), "up", "--foreground", "--gateway", gateway]);

    /// <summary>
    /// Starts the registry host's 'mkb-vpn up --foreground' without --gateway (built-in engine) in a namespace, with
    /// its own data directory <see cref="Root"/>/<paramref name="name"/>; its lines go to <see cref="Log"/>.
    /// </summary>
    public Process StartServer(string ns, string store, string name)
    {
        Directory.CreateDirectory(Path.Combine(Root, name));
        return Start(ns, store, name, ["--data-dir", Path.Combine(Root, name), "up", "--foreground"]);
    }

    private Process Start(string ns, string store, string gateway, string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns, Testbed.MkbVpn, "--store", store }.Concat(args))
            psi.ArgumentList.Add(a);
        psi.Environment["MKB_VPN_ENGINE"] = "builtin";
        var p = Process.Start(psi)!;
        _processes.Add(p);
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine($"{gateway}: {e.Data}"); };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine($"{gateway}: {e.Data}"); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    /// <summary>What the gateways printed so far, each line after its gateway's name.</summary>
    public string Log()
    {
        lock (_log)
            return _log.ToString();
    }

    /// <summary>The public keys of the peers a WireGuard interface in a namespace has (none if it is not there).</summary>
    public static HashSet<string> Peers(string ns, string iface)
    {
        var r = Shell.Run("ip", "netns", "exec", ns, "wg", "show", iface, "peers");
        return r.ExitCode == 0 ? [.. r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)] : [];
    }

    /// <summary>
    /// Brings a client up in a namespace from the config the registry gives it for a gateway, with the real
    /// wg-quick (wireguard-go); the interface is named <paramref name="iface"/>.
    /// </summary>
    public void ClientUp(string ns, string store, string client, string gateway, string iface)
    {
        string conf = Path.Combine(Root, iface + ".conf");
        File.WriteAllText(conf, VpnOk(store, "show", client, "--gateway", gateway));
        File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _interfaces.Add(iface);
        var r = Shell.Run("ip", ["netns", "exec", ns, "wg-quick", "up", conf], TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go" });
        Assert.True(r.ExitCode == 0, $"wg-quick up {conf}: {r}");
    }

    public void Dispose()
    {
        Shell.TearDown(_processes, _namespaces, _interfaces);
        if (Directory.Exists(Root))
            Directory.Delete(Root, recursive: true);
    }
}
