using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace MkbVpn.WireGuard;

/// <summary>
/// The engine as a program, run like <c>wireguard-go IFACE</c>: by the CLI's <c>mkb-vpn engine</c> verb and by the
/// small native <c>mkb-vpn-engine</c> executable (src/MkbVpn.Engine), which the service prefers because it idles in
/// a third of the memory of the whole CLI. Creates the TUN interface and the UAPI socket /var/run/wireguard/IFACE.sock,
/// then (unless foreground) continues in the background: it re-executes itself with <see cref="DaemonVariable"/> set,
/// the child starts a new session and, once ready, points its stdio at /dev/null; the parent exits 0 as soon as the
/// socket answers (or with the child's code if it fails). Stops cleanly on SIGTERM / SIGINT, when the interface is
/// deleted, or when the socket file is removed. SIGUSR1 writes the drop counters to the log (as does stopping).
/// </summary>
public static partial class EngineProgram
{
    public const string DaemonVariable = "MKB_VPN_ENGINE_DAEMON";

    /// <summary>
    /// batch (the default): the data path's threads run as SCHED_BATCH (their wake-ups do not preempt whoever runs on
    /// the core); normal: the default policy. An environment variable, so that it reaches the engine that
    /// <c>mkb-vpn up</c> starts (for the service: /etc/default/mkb-vpn).
    /// </summary>
    public const string SchedulerVariable = "MKB_VPN_ENGINE_SCHEDULER";

    /// <summary>Exit codes, the same numbers as mkb-vpn's documented ones.</summary>
    public const int Failure = 1, UsageError = 2;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    [GeneratedRegex("^[a-zA-Z0-9_=+.-]{1,15}$")]
    private static partial Regex InterfaceName();

    /// <summary>The usage text of the standalone executable.</summary>
    public const string Usage =
        "Usage: mkb-vpn-engine [-f|--foreground] [-v|--verbose] [--crypto-lanes N] IFACE\n" +
        "mkb-vpn's userspace WireGuard engine, run like wireguard-go: configure it with wg(8).\n" +
        "Without -f (or $WG_PROCESS_FOREGROUND=1) it returns once the UAPI socket answers and runs in the background.\n" +
        "$MKB_VPN_ENGINE_SCHEDULER=normal keeps the packet threads on the default scheduling policy (default: batch).";

    /// <summary>The standalone executable's command line: <c>[-f] [-v] [--crypto-lanes N] IFACE</c>, <c>--version</c>, <c>--help</c>.</summary>
    public static int Main(string[] args, string version)
    {
        bool foreground = false, verbose = false;
        int? lanes = null;
        string? name = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-f" or "--foreground":
                    foreground = true;
                    break;
                case "-v" or "--verbose":
                    verbose = true;
                    break;
                case "--version":
                    Console.Out.WriteLine($"mkb-vpn-engine {version}");
                    return 0;
                case "-h" or "--help":
                    Console.Out.WriteLine(Usage);
                    return 0;
                case "--crypto-lanes" when i + 1 < args.Length && int.TryParse(args[i + 1], out int n) && n > 0:
                    lanes = n;
                    i++;
                    break;
                default:
                    if (name is null && !args[i].StartsWith('-'))
                    {
                        name = args[i];
                        break;
                    }
                    Console.Error.WriteLine($"mkb-vpn-engine: error: unexpected argument '{args[i]}'\n{Usage}");
                    return UsageError;
            }
        }
        if (name is null)
        {
            Console.Error.WriteLine($"mkb-vpn-engine: error: the interface name is missing\n{Usage}");
            return UsageError;
        }
        return Run("mkb-vpn-engine", name, foreground, verbose, lanes);
    }

    /// <summary>Runs the engine for <paramref name="name"/>; <paramref name="program"/> names it in error messages.</summary>
    public static int Run(string program, string name, bool foreground, bool verbose, int? cryptoLanes)
    {
        if (!InterfaceName().IsMatch(name))
        {
            Console.Error.WriteLine($"{program}: error: an interface name is 1 to 15 characters of a-z A-Z 0-9 _ = + . -");
            return UsageError;
        }
        string? scheduler = Environment.GetEnvironmentVariable(SchedulerVariable);
        if (scheduler is { Length: > 0 } and not ("batch" or "normal"))
        {
            Console.Error.WriteLine($"{program}: error: {SchedulerVariable} is batch or normal, not '{scheduler}'");
            return UsageError;
        }
        bool isChild = Environment.GetEnvironmentVariable(DaemonVariable) == "1";
        foreground |= Environment.GetEnvironmentVariable("WG_PROCESS_FOREGROUND") == "1";
        if (!foreground && !isChild)
            return StartInBackground(program, name);
        if (isChild)
            UserspaceEngine.StartNewSession();
        return Serve(program, name, detach: isChild, verbose, cryptoLanes, batchScheduling: scheduler != "normal");
    }

    private static int Serve(string program, string name, bool detach, bool verbose, int? cryptoLanes, bool batchScheduling)
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
            engine = UserspaceEngine.Start(name, Console.Error, verbose, cryptoLanes, batchScheduling);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"{program}: error: {e.Message}");
            return Failure;
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

    private static int StartInBackground(string program, string name)
    {
        string? self = Environment.ProcessPath;
        if (self is null)
        {
            Console.Error.WriteLine($"{program}: error: cannot find my own executable to start in the background");
            return Failure;
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
                return child.ExitCode == 0 ? Failure : child.ExitCode;
            }
            if (Answers(socket))
                return 0;
        }
        Console.Error.WriteLine($"{program}: error: the engine did not answer on {socket} within {StartTimeout.TotalSeconds:0} s");
        try
        {
            child.Kill();
        }
        catch (InvalidOperationException)
        {
        }
        return Failure;
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
