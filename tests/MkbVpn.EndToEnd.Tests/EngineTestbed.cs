using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// Two network namespaces joined by a veth (docs/testing.md addresses only):
///   ours   — mkb-vpn's engine, interface mkbeoXXXXX; underlay 198.18.7.1 and fd00:18:7::1; tunnel 203.0.113.1, fd00:113::1
///   theirs — Debian's wireguard-go + wg, mkbetXXXXX; underlay 198.18.7.2 and fd00:18:7::2; tunnel 203.0.113.2, fd00:113::2
/// (fd00::/8 serves as IPv6 underlay too.) Names are unique per run: the UAPI sockets in /var/run/wireguard
/// are shared by every namespace. Dispose kills every process left in both namespaces (only ours run
/// there), deletes the namespaces (and so the links), the sockets and the key files, also after a failure.
/// </summary>
internal sealed class EngineTestbed : IDisposable
{
    public const string OursUnderlay = "198.18.7.1";
    public const string TheirsUnderlay = "198.18.7.2";
    public const string OursUnderlay6 = "fd00:18:7::1";
    public const string TheirsUnderlay6 = "fd00:18:7::2";
    public const string OursTunnel = "203.0.113.1";
    public const string TheirsTunnel = "203.0.113.2";
    public const string OursTunnel6 = "fd00:113::1";
    public const string TheirsTunnel6 = "fd00:113::2";
    public const int OursPort = 51820;
    public const int TheirsPort = 51821;

    public string Id { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))[..5];
    public string NsOurs => $"mkbEo{Id}";
    public string NsTheirs => $"mkbEt{Id}";
    public string IfOurs => $"mkbeo{Id}";
    public string IfTheirs => $"mkbet{Id}";
    public string OursPrivate { get; } = WireGuardKeys.NewPrivateKey().ToBase64();
    public string TheirsPrivate { get; } = WireGuardKeys.NewPrivateKey().ToBase64();
    public string OursPublic => WireGuardKeys.PublicKeyOf(WireGuardKey.ParseBase64(OursPrivate)).ToBase64();
    public string TheirsPublic => WireGuardKeys.PublicKeyOf(WireGuardKey.ParseBase64(TheirsPrivate)).ToBase64();

    private readonly string _dir;
    private readonly List<string> _namespaces = [];

    /// <summary>The wireguard-go binary on the far side: Debian's by default, or the upstream one a test was given.</summary>
    public string TheirsBinary { get; }

    /// <summary>Set to the upstream wireguard-go binary's path to run the interop theories against it too (never a path in the repository).</summary>
    public const string UpstreamVariable = "MKB_VPN_UPSTREAM_WG_GO";

    /// <summary>Debian's wireguard-go always; the upstream binary as well when <see cref="UpstreamVariable"/> names one.</summary>
    public static TheoryData<string> WireguardGoBinaries()
    {
        var binaries = new TheoryData<string> { "wireguard-go" };
        if (Environment.GetEnvironmentVariable(UpstreamVariable) is { Length: > 0 } upstream && File.Exists(upstream))
            binaries.Add(upstream);
        return binaries;
    }

    public EngineTestbed(string theirsBinary = "wireguard-go")
    {
        TheirsBinary = theirsBinary;
        if (!string.Equals(Shell.Run("id", "-u").StdOut.Trim(), "0", StringComparison.Ordinal))
            throw new InvalidOperationException("the engine interop tests need root (network namespaces, TUN devices): run scripts/test.sh as root");
        _dir = Directory.CreateTempSubdirectory($"mkb-engine-e2e-{Id}-").FullName;
        try
        {
            foreach (string ns in new[] { NsOurs, NsTheirs })
            {
                Shell.Check("ip", "netns", "add", ns);
                _namespaces.Add(ns);
                Shell.Check("ip", "-n", ns, "link", "set", "lo", "up");
            }
            Shell.Check("ip", "link", "add", "veo" + Id, "netns", NsOurs, "type", "veth", "peer", "name", "vet" + Id, "netns", NsTheirs);
            Shell.Check("ip", "-n", NsOurs, "addr", "add", OursUnderlay + "/24", "dev", "veo" + Id);
            Shell.Check("ip", "-n", NsTheirs, "addr", "add", TheirsUnderlay + "/24", "dev", "vet" + Id);
            Shell.Check("ip", "-n", NsOurs, "addr", "add", OursUnderlay6 + "/64", "dev", "veo" + Id, "nodad");
            Shell.Check("ip", "-n", NsTheirs, "addr", "add", TheirsUnderlay6 + "/64", "dev", "vet" + Id, "nodad");
            Shell.Check("ip", "-n", NsOurs, "link", "set", "veo" + Id, "up");
            Shell.Check("ip", "-n", NsTheirs, "link", "set", "vet" + Id, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static string MkbVpn
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "mkb-vpn");
            return File.Exists(path) ? path : throw new FileNotFoundException("mkb-vpn apphost not found next to the tests", path);
        }
    }

    public static string SocketOf(string iface) => $"/var/run/wireguard/{iface}.sock";

    public Shell.Result In(string ns, params string[] command) =>
        Shell.Run("ip", new[] { "netns", "exec", ns }.Concat(command), TimeSpan.FromSeconds(60));

    public string InOk(string ns, params string[] command)
    {
        var r = In(ns, command);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', command)} in {ns}: {r}");
        return r.StdOut;
    }

    /// <summary>Starts mkb-vpn's engine the way the service and wg-quick do: 'ENGINE IFACE', which daemonizes.</summary>
    /// <param name="environment">NAME=VALUE settings for the engine's environment.</param>
    public void StartOurs(params string[] environment)
    {
        var r = In(NsOurs, ["env", .. environment, MkbVpn, "engine", IfOurs]);
        Assert.True(r.ExitCode == 0, $"mkb-vpn engine {IfOurs}: {r}");
        Assert.True(File.Exists(SocketOf(IfOurs)), "the engine returned before its UAPI socket existed");
        Assert.Equal(0, In(NsOurs, "wg", "show", IfOurs).ExitCode);
    }

    public void StartTheirs()
    {
        var r = In(NsTheirs, TheirsBinary, IfTheirs);
        Assert.True(r.ExitCode == 0, $"{TheirsBinary} {IfTheirs}: {r}");
        Assert.NotNull(Shell.WaitFor(() => In(NsTheirs, "wg", "show", IfTheirs).ExitCode == 0, TimeSpan.FromSeconds(10)));
    }

    /// <summary>Loads a wg(8) config with 'wg setconf' (as wg-quick does), then addresses and link up.</summary>
    public void Configure(string ns, string iface, string config, string tunnel4, string tunnel6)
    {
        string file = Path.Combine(_dir, iface + ".conf");
        File.WriteAllText(file, config);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        InOk(ns, "wg", "setconf", iface, file);
        InOk(ns, "ip", "addr", "add", tunnel4 + "/24", "dev", iface);
        InOk(ns, "ip", "addr", "add", tunnel6 + "/64", "dev", iface, "nodad");
        InOk(ns, "ip", "link", "set", iface, "up");
    }

    /// <summary>Both ends configured; <paramref name="oursInitiates"/> decides who knows the other's endpoint.</summary>
    public void ConfigureBoth(bool oursInitiates, bool ipv6Underlay = false)
    {
        string theirsEndpoint = ipv6Underlay ? $"[{TheirsUnderlay6}]:{TheirsPort}" : $"{TheirsUnderlay}:{TheirsPort}";
        string oursEndpoint = ipv6Underlay ? $"[{OursUnderlay6}]:{OursPort}" : $"{OursUnderlay}:{OursPort}";
        Configure(NsOurs, IfOurs,
            $"[Interface]\nPrivateKey = {OursPrivate}\nListenPort = {OursPort}\n\n[Peer]\nPublicKey = {TheirsPublic}\n" +
            $"AllowedIPs = {TheirsTunnel}/32, {TheirsTunnel6}/128\n" + (oursInitiates ? $"Endpoint = {theirsEndpoint}\n" : ""),
            OursTunnel, OursTunnel6);
        Configure(NsTheirs, IfTheirs,
            $"[Interface]\nPrivateKey = {TheirsPrivate}\nListenPort = {TheirsPort}\n\n[Peer]\nPublicKey = {OursPublic}\n" +
            $"AllowedIPs = {OursTunnel}/32, {OursTunnel6}/128\n" + (oursInitiates ? "" : $"Endpoint = {oursEndpoint}\n"),
            TheirsTunnel, TheirsTunnel6);
    }

    /// <summary>One ping with a one-second wait (bounded).</summary>
    public bool Ping(string ns, string address) =>
        In(ns, "ping", "-n", "-c", "1", "-W", "1", address).ExitCode == 0;

    /// <summary>Pings until one answers (the first ones may wait for the handshake), within a deadline.</summary>
    /// <summary>
    /// One iperf3 TCP run through the tunnel from our side to theirs (reverse: theirs sends), retried until it
    /// succeeds or the deadline passes. A one-off server (-1) exits after one client, also after a client that failed
    /// half-way on a loaded host: each attempt starts one when none listens. iperf3 -J can exit 0 with an "error"
    /// member (a server of the round before was still closing its port): that counts as a failed attempt.
    /// </summary>
    public Shell.Result? Iperf3(bool reverse, int seconds, TimeSpan deadline)
    {
        bool Listening() => In(NsTheirs, "ss", "-Hltn", "sport", "=", ":5201").StdOut.Trim().Length > 0;
        Shell.Result? result = null;
        var took = Shell.WaitFor(() =>
        {
            if (!Listening())
            {
                Assert.Equal(0, In(NsTheirs, "iperf3", "-s", "-D", "-1", "-B", TheirsTunnel).ExitCode);
                Shell.WaitFor(Listening, TimeSpan.FromSeconds(5));
            }
            result = In(NsOurs, "iperf3", "-c", TheirsTunnel, "-t", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-J", reverse ? "-R" : "-4");
            return result.ExitCode == 0 && !result.StdOut.Contains("\"error\"", StringComparison.Ordinal);
        }, deadline, TimeSpan.FromMilliseconds(200));
        return took is null ? null : result;
    }

    public bool PingEventually(string ns, string address, double seconds = 15) =>
        Shell.WaitFor(() => Ping(ns, address), TimeSpan.FromSeconds(seconds), TimeSpan.FromMilliseconds(10)) is not null;

    /// <summary>wg show IFACE DUMP-style field for the only peer: (latest handshake, rx, tx, endpoint).</summary>
    public (long Handshake, long Rx, long Tx, string Endpoint) PeerState(string ns, string iface)
    {
        string dump = InOk(ns, "wg", "show", iface, "dump");
        string[] lines = dump.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 2, $"expected one peer in wg show {iface} dump:\n{dump}");
        string[] f = lines[1].Split('\t');
        // public-key preshared-key endpoint allowed-ips latest-handshake transfer-rx transfer-tx persistent-keepalive
        return (long.Parse(f[4], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture),
            long.Parse(f[6], CultureInfo.InvariantCulture), f[2]);
    }

    public int PeerCount(string ns, string iface) =>
        InOk(ns, "wg", "show", iface, "dump").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1;

    /// <summary>The pid of our engine (the only mkb-vpn in its namespace), or null.</summary>
    public int? OursPid()
    {
        foreach (string line in Shell.Run("ip", "netns", "pids", NsOurs).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int pid = int.Parse(line, CultureInfo.InvariantCulture);
            try
            {
                string cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
                if (cmdline.Contains("engine", StringComparison.Ordinal) && cmdline.Contains(IfOurs, StringComparison.Ordinal))
                    return pid;
            }
            catch (IOException)
            {
            }
        }
        return null;
    }

    public static long RssKiB(int pid)
    {
        foreach (string line in File.ReadAllLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return -1;
    }

    /// <summary>Runs <paramref name="action"/> on a thread that joined namespace <paramref name="ns"/> (sockets it opens live there).</summary>
    public static void InNamespace(string ns, Action action)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{ns}");
                if (SetNs((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new IOException($"setns {ns}: errno {Marshal.GetLastPInvokeError()}");
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
            throw new InvalidOperationException($"in namespace {ns}: {failure.Message}", failure);
    }

    /// <summary>One UAPI request to an interface's socket (as wg does); returns the whole answer.</summary>
    public static string Uapi(string iface, string request)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.ReceiveTimeout = 5000;
        s.Connect(new UnixDomainSocketEndPoint(SocketOf(iface)));
        s.Send(System.Text.Encoding.UTF8.GetBytes(request));
        var reply = new System.Text.StringBuilder();
        var buffer = new byte[4096];
        int n;
        while (!reply.ToString().EndsWith("\n\n", StringComparison.Ordinal) && (n = s.Receive(buffer)) > 0)
            reply.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        return reply.ToString();
    }

    /// <summary>Our engine's drop counters (UAPI get=stats, the extension the service reads).</summary>
    public Dictionary<string, long> OursStats()
    {
        var stats = new Dictionary<string, long>();
        foreach (string line in Uapi(IfOurs, "get=stats\n\n").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && long.TryParse(line[(eq + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
                stats[line[..eq]] = v;
        }
        Assert.True(stats.TryGetValue("errno", out long errno) && errno == 0, "get=stats failed");
        return stats;
    }

    /// <summary>The IPv6 statistics of a namespace (/proc/net/snmp6), e.g. Ip6FragCreates, Ip6ReasmReqds.</summary>
    public Dictionary<string, long> Snmp6(string ns)
    {
        var values = new Dictionary<string, long>();
        foreach (string line in InOk(ns, "cat", "/proc/net/snmp6").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                values[f[0]] = v;
        }
        return values;
    }

    /// <summary>
    /// Sends up to <paramref name="total"/> datagrams from a fresh UDP socket in namespace <paramref name="ns"/> to
    /// <paramref name="target"/>, in sendmmsg batches of 64 (UDP GSO where sizes allow), at most
    /// <paramref name="perSecond"/> per second (0: as fast as the socket takes them), for at most
    /// <paramref name="maxTime"/>; with <paramref name="burst"/>, that many back to back before each pause.
    /// <paramref name="fill"/> writes datagram number i into a buffer and returns its length. Returns how many the
    /// system accepted. Bounded in count and time.
    /// </summary>
    public static long SendFrom(string ns, IPEndPoint target, long total, int perSecond, TimeSpan maxTime, Func<long, byte[], int> fill,
        CancellationToken stop = default, int burst = 64)
    {
        long accepted = 0;
        InNamespace(ns, () =>
        {
            using var bind = global::MkbVpn.WireGuard.Udp.SocketBind.Open(0);
            System.Net.SocketAddress destination = bind.ToSocketAddress(target);
            var batch = new global::MkbVpn.WireGuard.OutgoingDatagram[64];
            var buffers = new byte[batch.Length][];
            for (int k = 0; k < buffers.Length; k++)
                buffers[k] = GC.AllocateArray<byte>(2048, pinned: true);
            var sw = Stopwatch.StartNew();
            long sent = 0;
            while (sent < total && sw.Elapsed < maxTime && !stop.IsCancellationRequested)
            {
                int n = (int)Math.Min(batch.Length, total - sent);
                for (int k = 0; k < n; k++)
                    batch[k] = new global::MkbVpn.WireGuard.OutgoingDatagram { Buffer = buffers[k], Length = fill(sent + k, buffers[k]), Destination = destination };
                int failed = bind.SendBatch(batch.AsSpan(0, n));
                sent += n;
                accepted += n - failed;
                if (perSecond > 0 && sent % burst < batch.Length)
                {
                    TimeSpan due = TimeSpan.FromSeconds((double)sent / perSecond);
                    if (due > sw.Elapsed)
                        Thread.Sleep(due - sw.Elapsed);
                }
            }
        });
        return accepted;
    }

    private const int CloneNewNet = 0x40000000;

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNs(int fd, int nstype);

    public void Dispose()
    {
        foreach (string ns in _namespaces)
        {
            // Only the processes this testbed started run in its namespaces: the engines (and iperf3).
            foreach (string line in Shell.Run("ip", "netns", "pids", ns).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                    try
                    {
                        using var p = Process.GetProcessById(pid);
                        p.Kill();
                        p.WaitForExit(5000);
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                    {
                    }
            Shell.Run("ip", "netns", "del", ns);
        }
        foreach (string iface in new[] { IfOurs, IfTheirs })
            try
            {
                File.Delete(SocketOf(iface));
            }
            catch (IOException)
            {
            }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
