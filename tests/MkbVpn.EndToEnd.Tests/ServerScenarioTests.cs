using System.Text.Json;
using Xunit.Abstractions;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>
/// The end-to-end scenario: mkb-vpn drives a wireguard-go server interface; two real
/// clients (wg-quick + wireguard-go) loaded from the config files 'add' wrote; an internal host
/// behind the server. Block, re-enable, interface loss and remove, each checked from the clients.
/// </summary>
public sealed class ServerScenarioTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData("builtin", "uapi")]        // mkb-vpn's own engine, the default userspace data plane
    [InlineData("wireguard-go", "uapi")]
    [InlineData("wireguard-go", "wg")]     // the kernel path: wg(8) drives the interface (wireguard-go's here, as no module exists)
    public void Clients_reach_server_and_internal_host_and_every_verb_is_live(string engine, string control)
    {
        using var tb = new Testbed { Engine = engine, Control = control };
        tb.InitServer();
        tb.VpnOk("up");
        string a = $"a{tb.Id}", b = $"b{tb.Id}";
        tb.VpnOk("add", a, b, "--no-qr");
        string confA = Path.Combine(tb.DataDir, "clients", a + ".conf");
        string confB = Path.Combine(tb.DataDir, "clients", b + ".conf");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(confA));
        tb.ClientUp(tb.ClientA, confA);
        tb.ClientUp(tb.ClientB, confB);

        // Both clients reach the server's tunnel address (v4 and v6) and the internal host.
        foreach (var ns in new[] { tb.ClientA, tb.ClientB })
        {
            Assert.NotNull(Shell.WaitFor(() => tb.Ping(ns, Testbed.ServerTunnel), Deadline));
            Assert.True(tb.Ping(ns, "fd00:5e:1::1"), $"{ns} cannot ping the server's IPv6 tunnel address");
            Assert.True(tb.Ping(ns, Testbed.InternalHost), $"{ns} cannot reach the internal host");
        }
        Assert.Equal(2, tb.ServerPeers().Count);

        // Block A: A's traffic stops at once; B keeps working on its existing session.
        long hsB = tb.LatestHandshake(tb.ClientB, b);
        Assert.NotEqual(0, hsB);
        tb.VpnOk("block", a);
        Assert.False(tb.Ping(tb.ClientA, Testbed.ServerTunnel, 1), "A still reaches the server after block");
        Assert.False(tb.Ping(tb.ClientA, Testbed.InternalHost, 1), "A still reaches the internal host after block");
        Assert.True(tb.Ping(tb.ClientB, Testbed.InternalHost), "B lost service when A was blocked");
        Assert.Equal(hsB, tb.LatestHandshake(tb.ClientB, b));
        Assert.Single(tb.ServerPeers());
        Assert.Contains("blocked", tb.VpnOk("list"));

        // Re-enable A: its old config works again; the server contacts A at once.
        tb.VpnOk("reenable", a);
        var recovered = Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.ServerTunnel, 0.2), Deadline, TimeSpan.Zero);
        Assert.NotNull(recovered);
        output.WriteLine($"A served again {recovered!.Value.TotalMilliseconds:0} ms after reenable (stock WireGuard: about 12 s)");
        Assert.True(recovered < TimeSpan.FromSeconds(5), $"recovery after reenable took {recovered}");
        Assert.True(tb.Ping(tb.ClientA, Testbed.InternalHost));
        Assert.Equal(hsB, tb.LatestHandshake(tb.ClientB, b));

        // The server's interface dies; 'up' restores it exactly, and both clients are served again.
        var before = tb.Vpn("status", "--json");
        Shell.Check("ip", "-n", tb.Server, "link", "del", tb.ServerInterface);
        Assert.Empty(tb.ServerPeers());
        tb.VpnOk("up");
        var restored = Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.ServerTunnel, 0.2) && tb.Ping(tb.ClientB, Testbed.ServerTunnel, 0.2), Deadline, TimeSpan.Zero);
        Assert.NotNull(restored);
        output.WriteLine($"A and B served again {restored!.Value.TotalMilliseconds:0} ms after up restored the interface (stock WireGuard: about 15 s)");
        Assert.True(restored < TimeSpan.FromSeconds(5), $"recovery after up took {restored}");
        Assert.True(tb.Ping(tb.ClientA, Testbed.InternalHost) && tb.Ping(tb.ClientB, Testbed.InternalHost));
        Assert.Equal(2, tb.ServerPeers().Count);
        using (var doc = JsonDocument.Parse(tb.VpnOk("status", "--json")))
        {
            var clients = doc.RootElement.GetProperty("clients").EnumerateArray().ToList();
            Assert.Equal(2, clients.Count);
            Assert.All(clients, c => Assert.True(c.GetProperty("online").GetBoolean()));
            Assert.All(clients, c => Assert.StartsWith("198.18.", c.GetProperty("endpoint").GetString()));
        }

        // An internal host without a route back to the VPN needs masquerade: 'init --change' turns it on live.
        Shell.Check("ip", "-n", tb.Internal, "route", "del", Testbed.VpnSubnet);
        Assert.False(tb.Ping(tb.ClientB, Testbed.InternalHost, 1), "the internal host answered without a route back");
        tb.VpnOk("init", "--change", "--masquerade");
        Assert.True(tb.Ping(tb.ClientB, Testbed.InternalHost), "masquerade did not let B reach the internal host");

        // Remove A: gone from the interface, its file deleted, and it cannot handshake again.
        string strippedA = Shell.Check("wg-quick", "strip", confA);
        string savedA = Path.Combine(tb.DataDir, "saved-a.conf");
        File.WriteAllText(savedA, strippedA);
        tb.VpnOk("remove", a, "--yes");
        Assert.False(File.Exists(confA));
        Assert.Single(tb.ServerPeers());
        // Give A a fresh session attempt: drop its peer state and load its old config again.
        string serverPub = Shell.Check("ip", "netns", "exec", tb.ClientA, "wg", "show", a, "peers").Trim();
        Shell.Check("ip", "netns", "exec", tb.ClientA, "wg", "set", a, "peer", serverPub, "remove");
        Shell.Check("ip", "netns", "exec", tb.ClientA, "wg", "addconf", a, savedA);
        Assert.Equal(0, tb.LatestHandshake(tb.ClientA, a));
        Assert.Null(Shell.WaitFor(() => tb.Ping(tb.ClientA, Testbed.ServerTunnel, 0.5) || tb.LatestHandshake(tb.ClientA, a) != 0, TimeSpan.FromSeconds(3)));
        Assert.True(tb.Ping(tb.ClientB, Testbed.InternalHost), "B lost service when A was removed");
        Assert.DoesNotContain(a, tb.VpnOk("list"));

        // down removes the interface and the firewall table; the store keeps B.
        tb.VpnOk("down");
        Assert.False(Shell.Run("ip", "-n", tb.Server, "link", "show", tb.ServerInterface).ExitCode == 0);
        Assert.NotEqual(0, Shell.Run("ip", "netns", "exec", tb.Server, "nft", "list", "table", "inet", "mkb_vpn").ExitCode);
        Assert.Contains(b, tb.VpnOk("list"));
    }

    [Fact]
    public void Foreground_up_restores_a_lost_interface_by_itself_and_stops_on_down_or_sigterm()
    {
        using var tb = new Testbed();
        tb.InitServer();
        string b = $"b{tb.Id}";
        tb.VpnOk("add", b, "--no-qr");
        using (var daemon = StartDaemon(tb))
        {
            Assert.NotNull(Shell.WaitFor(() => tb.ServerPeers().Count == 1, Deadline));
            tb.ClientUp(tb.ClientB, Path.Combine(tb.DataDir, "clients", b + ".conf"));
            Assert.NotNull(Shell.WaitFor(() => tb.Ping(tb.ClientB, Testbed.InternalHost), Deadline));
            // Once the supervisor has recorded B's endpoint in the store, take the interface away.
            Assert.NotNull(Shell.WaitFor(() => EndpointRecorded(tb, b), Deadline));
            Shell.Check("ip", "-n", tb.Server, "link", "del", tb.ServerInterface);
            var healed = Shell.WaitFor(() => tb.Ping(tb.ClientB, Testbed.ServerTunnel, 0.2), Deadline, TimeSpan.Zero);
            Assert.NotNull(healed);
            output.WriteLine($"B served again {healed!.Value.TotalMilliseconds:0} ms after the interface was deleted, with no command run");

            // An admin's 'down' is respected: the supervisor stops instead of restoring.
            tb.VpnOk("down");
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(20)), "up --foreground kept running after down");
            Assert.Equal(0, daemon.ExitCode);
            Assert.NotEqual(0, Shell.Run("ip", "-n", tb.Server, "link", "show", tb.ServerInterface).ExitCode);
        }

        using (var daemon = StartDaemon(tb))
        {
            Assert.NotNull(Shell.WaitFor(() => tb.ServerPeers().Count == 1, Deadline));
            // 'ip netns exec' execs mkb-vpn, so the pid is mkb-vpn's own.
            Shell.Check("kill", "-TERM", daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(20)), "up --foreground did not stop on SIGTERM");
            Assert.Equal(0, daemon.ExitCode);
            Assert.NotEqual(0, Shell.Run("ip", "-n", tb.Server, "link", "show", tb.ServerInterface).ExitCode);
            Assert.NotEqual(0, Shell.Run("ip", "netns", "exec", tb.Server, "nft", "list", "table", "inet", "mkb_vpn").ExitCode);
        }
    }

    private sealed class Daemon(System.Diagnostics.Process process) : IDisposable
    {
        public int Id => process.Id;
        public int ExitCode => process.ExitCode;
        // With a timeout, WaitForExit returns before the redirected output is all delivered; the second call waits for it.
        public bool WaitForExit(TimeSpan t)
        {
            if (!process.WaitForExit(t))
                return false;
            process.WaitForExit();
            return true;
        }

        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.Dispose();
        }
    }

    private Daemon StartDaemon(Testbed tb)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip")
        {
            ArgumentList = { "netns", "exec", tb.Server, Testbed.MkbVpn, "--data-dir", tb.DataDir, "up", "--foreground" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var p = System.Diagnostics.Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) output.WriteLine($"[daemon] {e.Data}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.WriteLine($"[daemon] {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Daemon(p);
    }

    /// <summary>The store (not the live interface) knows the client's endpoint: 'show --json' reads only the store (its endpoint is the last recorded one).</summary>
    private static bool EndpointRecorded(Testbed tb, string name)
    {
        var r = tb.Vpn("show", name, "--json");
        if (r.ExitCode != 0)
            return false;
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement.GetProperty("endpoint").GetString() is { } ep && ep.StartsWith("198.18.", StringComparison.Ordinal);
    }
}
