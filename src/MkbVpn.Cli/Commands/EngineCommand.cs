using System.CommandLine;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using MkbVpn.WireGuard;

namespace MkbVpn.Cli.Commands;

/// <summary>
/// <c>mkb-vpn engine [-f] IFACE</c>: mkb-vpn's own userspace WireGuard, run like <c>wireguard-go IFACE</c>.
/// Creates the TUN interface and the UAPI socket /var/run/wireguard/IFACE.sock, then (unless -f or
/// WG_PROCESS_FOREGROUND=1) continues in the background: it re-executes itself with
/// <see cref="DaemonVariable"/> set, the child starts a new session and, once ready, points its stdio
/// at /dev/null; the parent exits 0 as soon as the socket answers (or with the child's code if it fails).
/// Stops cleanly on SIGTERM / SIGINT, when the interface is deleted, or when the socket file is removed.
/// SIGUSR1 writes the drop counters to the log (as does stopping); <c>get=stats</c> on the UAPI socket returns them.
/// </summary>
internal static partial class EngineCommand
{
    public const string DaemonVariable = "MKB_VPN_ENGINE_DAEMON";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    public static Command Create()
    {
        var foreground = new Option<bool>("--foreground", "-f") { Description = "Stay in the foreground (also $WG_PROCESS_FOREGROUND=1); log to stderr" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log debug events too (never keys)" };
        var lanes = new Option<int?>("--crypto-lanes") { Description = "Threads that share the encryption of a large batch (default: one per core from 4 cores on, else 1)" };
        var name = new Argument<string>("IFACE") { Description = "The interface to create (at most 15 characters)" };
        var cmd = new Command("engine", "Run mkb-vpn's userspace WireGuard engine for IFACE, like wireguard-go: configure it with wg(8).\n" +
            "Usable as WG_QUICK_USERSPACE_IMPLEMENTATION and as MKB_VPN_ENGINE (through scripts/mkb-vpn-engine).\n" +
            "Example: sudo mkb-vpn engine wg0 && sudo wg setconf wg0 wg0.conf") { foreground, verbose, lanes, name };
        cmd.SetHandler(p => Run(p.GetValue(name)!, p.GetValue(foreground), p.GetValue(verbose), p.GetValue(lanes)));
        return cmd;
    }

    [GeneratedRegex("^[a-zA-Z0-9_=+.-]{1,15}$")]
    private static partial Regex InterfaceName();

    private static int Run(string name, bool foreground, bool verbose, int? cryptoLanes)
    {
        if (!InterfaceName().IsMatch(name))
        {
            Console.Error.WriteLine("mkb-vpn engine: error: an interface name is 1 to 15 characters of a-z A-Z 0-9 _ = + . -");
            return ExitCodes.UserError;
        }
        bool isChild = Environment.GetEnvironmentVariable(DaemonVariable) == "1";
        foreground |= Environment.GetEnvironmentVariable("WG_PROCESS_FOREGROUND") == "1";
        if (!foreground && !isChild)
            return StartInBackground(name);
        if (isChild)
            UserspaceEngine.StartNewSession();
        return Serve(name, detach: isChild, verbose, cryptoLanes);
    }

    private static int Serve(string name, bool detach, bool verbose, int? cryptoLanes)
    {
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true); // a lost terminal is no reason to stop
        UserspaceEngine? running = null;
        // SIGUSR1 (raw number 10 on Linux): the drop counters go to the log, where an admin looks.
        using var usr1 = PosixSignalRegistration.Create((PosixSignal)10, c => { c.Cancel = true; Volatile.Read(ref running)?.LogCounters("SIGUSR1"); });

        UserspaceEngine engine;
        try
        {
            engine = UserspaceEngine.Start(name, Console.Error, verbose, cryptoLanes);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"mkb-vpn engine: error: {e.Message}");
            return ExitCodes.Failure;
        }
        Volatile.Write(ref running, engine);
        using (engine)
        {
            if (detach)
                engine.DetachStdio();
            engine.WaitForExit(stop.Token);
        }
        return 0;
    }

    private static int StartInBackground(string name)
    {
        string? self = Environment.ProcessPath;
        if (self is null)
        {
            Console.Error.WriteLine("mkb-vpn engine: error: cannot find my own executable to start in the background");
            return ExitCodes.Failure;
        }
        // The child gets pipes to us, not our stdio: the runtime in the child keeps duplicates of its standard
        // descriptors, so inherited stdio would stay open and whoever waits for our output would wait forever.
        // We relay what it says until it is ready, then exit; it stops writing once detached.
        var psi = new ProcessStartInfo(self)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        string[] args = Environment.GetCommandLineArgs();
        // Run through 'dotnet mkb-vpn.dll'? Then the first argument is the assembly to run.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            psi.ArgumentList.Add(args[0]);
        foreach (string a in args.Skip(1))
            psi.ArgumentList.Add(a);
        psi.Environment[DaemonVariable] = "1";
        using Process child = Process.Start(psi) ?? throw new IOException("cannot start the engine process");
        child.StandardInput.Close();
        child.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Out.WriteLine(e.Data); };
        child.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(e.Data); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        string socket = UserspaceEngine.SocketPathFor(name);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < StartTimeout)
        {
            if (child.WaitForExit(20))
            {
                child.WaitForExit(); // the rest of its output
                return child.ExitCode == 0 ? ExitCodes.Failure : child.ExitCode;
            }
            if (Answers(socket))
                return 0;
        }
        Console.Error.WriteLine($"mkb-vpn engine: error: the engine did not answer on {socket} within {StartTimeout.TotalSeconds:0} s");
        try
        {
            child.Kill();
        }
        catch (InvalidOperationException)
        {
        }
        return ExitCodes.Failure;
    }

    private static bool Answers(string socketPath)
    {
        if (!File.Exists(socketPath))
            return false;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.ReceiveTimeout = 2000;
            s.Connect(new UnixDomainSocketEndPoint(socketPath));
            s.Send("set=1\n\n"u8); // an empty set: answers errno=0 and moves no key
            var reply = new StringBuilder();
            var buffer = new byte[4096];
            int n;
            while ((n = s.Receive(buffer)) > 0)
            {
                reply.Append(Encoding.UTF8.GetString(buffer, 0, n));
                if (reply.ToString().EndsWith("\n\n", StringComparison.Ordinal))
                    return reply.ToString() == "errno=0\n\n";
            }
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
