using System.Diagnostics;

namespace MkbVpn.Devices;

/// <summary>The live interface as created: what drives it, the data plane's name, why it was chosen, and a warning if any.</summary>
public sealed record DataPlane(IWireGuardDevice Device, string Engine, string Reason, string? Warning = null);

/// <summary>Finds and creates the live WireGuard interface: kernel module, else a userspace engine.</summary>
public static class LiveInterface
{
    /// <summary>Environment variable choosing the data plane: "auto", "kernel", "builtin" (mkb-vpn's own engine), "wireguard-go", or a path to a userspace engine.</summary>
    public const string EngineVariable = "MKB_VPN_ENGINE";

    /// <summary>The userspace engine used when the kernel has no WireGuard module.</summary>
    public const string DefaultUserspaceEngine = "builtin";

    /// <summary>Where userspace engines (ours and wireguard-go) put their UAPI sockets.</summary>
    public const string SocketDirectory = UapiDevice.DefaultSocketDirectory;

    /// <summary>
    /// Environment variable choosing how a userspace interface is driven: "uapi" (default: our own
    /// client of the socket) or "wg" (through wg(8), exactly as a kernel interface is driven, which
    /// lets the kernel code path be tested where no kernel module exists).
    /// </summary>
    public const string ControlVariable = "MKB_VPN_CONTROL";

    /// <summary>The running interface, or null when it is down; <paramref name="userspaceThroughWg"/>: drive a userspace one with wg(8) (see <see cref="ControlVariable"/>).</summary>
    public static IWireGuardDevice? Find(string name, bool userspaceThroughWg = false)
    {
        var uapi = new UapiDevice(name, SocketDirectory);
        if (uapi.Exists && Network.NetworkSetup.LinkExists(name))
            return userspaceThroughWg ? new WgToolDevice(name) : uapi;
        if (Network.NetworkSetup.LinkExists(name) && IsWireGuardLink(name))
            return new WgToolDevice(name);
        return null;
    }

    private static bool IsWireGuardLink(string name)
    {
        var r = Sys.Run("ip", ["-d", "link", "show", "dev", name]);
        return r.ExitCode == 0 && r.StdOut.Contains("wireguard", StringComparison.Ordinal);
    }

    public static bool KernelModuleAvailable() => Directory.Exists("/sys/module/wireguard");

    /// <summary>Whether a running interface is a kernel WireGuard link (else a userspace engine's TUN device).</summary>
    public static bool IsKernelLink(string name) => IsWireGuardLink(name);

    /// <summary>
    /// Creates the interface and says which data plane runs it and why. Without a choice
    /// (<paramref name="engine"/>, else $MKB_VPN_ENGINE, else "auto"): kernel WireGuard when a
    /// wireguard link can be made, else the built-in engine. When the module is loaded but the
    /// link cannot be made (a locked-down host or container), the built-in engine takes over with
    /// a warning; nothing of the failed attempt is left behind.
    /// </summary>
    public static DataPlane Create(string name, string? engine)
    {
        string source = engine is not null ? "--engine" : "$" + EngineVariable;
        engine ??= Environment.GetEnvironmentVariable(EngineVariable);
        if (string.IsNullOrEmpty(engine) || engine == "auto")
        {
            bool loaded = KernelModuleAvailable();
            string? error = TryKernel(name);
            if (error is null)
                return new(new WgToolDevice(name), "kernel", loaded ? "the wireguard kernel module is loaded" : "the wireguard kernel module loaded on demand");
            if (loaded)
                return new(StartUserspace(name, SelfEngineCommand(name)), "builtin", "kernel WireGuard refused",
                    $"the wireguard kernel module is loaded but 'ip link add {name} type wireguard' failed ({error}): using mkb-vpn's built-in engine instead");
            return new(StartUserspace(name, SelfEngineCommand(name)), "builtin", "this kernel has no wireguard module");
        }
        string reason = $"chosen with {source}";
        if (engine == "kernel")
        {
            string? error = TryKernel(name);
            if (error is not null)
                throw new UserInputException(KernelModuleAvailable()
                    ? $"kernel WireGuard was asked for ({source}) but 'ip link add {name} type wireguard' failed: {error}"
                    : $"the WireGuard kernel module is not available here ({error}); unset {source} to use a userspace engine", ExitCodes.MissingTool);
            return new(new WgToolDevice(name), "kernel", reason);
        }
        if (engine is "builtin" or "mkb-vpn")
            return new(StartUserspace(name, SelfEngineCommand(name)), "builtin", reason);
        return new(StartUserspace(name, (engine, [name])), engine, reason);
    }

    /// <summary>The name of the small native engine executable that ships next to mkb-vpn.</summary>
    public const string EngineExecutable = "mkb-vpn-engine";

    private static (string File, string[] Args) SelfEngineCommand(string name) =>
        EngineCommandFor(Environment.ProcessPath ?? throw new UserInputException("cannot find the mkb-vpn executable to run its engine", ExitCodes.MissingTool),
            Environment.GetCommandLineArgs()[0], name);

    /// <summary>
    /// The built-in engine's command line for this program at <paramref name="self"/>: the native
    /// <c>mkb-vpn-engine</c> beside it when there is one (the package and install.sh put it there; it idles in
    /// far less memory than the whole CLI), else this very program's 'engine IFACE' verb (through dotnet when run as a dll).
    /// </summary>
    internal static (string File, string[] Args) EngineCommandFor(string self, string firstArg, string name)
    {
        string beside = Path.Combine(Path.GetDirectoryName(self) ?? ".", EngineExecutable);
        if (IsNativeExecutable(beside))
            return (beside, [name]);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            return (self, [firstArg, "engine", name]);
        return (self, ["engine", name]);
    }

    /// <summary>An executable ELF file (not a script wrapper, which would only come back to us).</summary>
    private static bool IsNativeExecutable(string path)
    {
        try
        {
            if (!File.Exists(path) || (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) == 0)
                return false;
            Span<byte> magic = stackalloc byte[4];
            using var f = File.OpenRead(path);
            return f.Read(magic) == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F']);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Makes (or finds) the kernel wireguard link; null on success, else why it failed.</summary>
    private static string? TryKernel(string name)
    {
        if (Network.NetworkSetup.LinkExists(name))
            return IsWireGuardLink(name) ? null : $"a link named {name} exists and is not WireGuard";
        var r = Sys.Run("ip", ["link", "add", "dev", name, "type", "wireguard"]);
        if (r.ExitCode == 0)
            return null;
        // 'ip link add' makes the whole link or none, but be sure nothing is left half made.
        if (Network.NetworkSetup.LinkExists(name))
            Sys.Run("ip", ["link", "del", "dev", name]);
        return r.FirstErrorLine;
    }

    private static UapiDevice StartUserspace(string name, (string File, string[] Args) engine)
    {
        var device = new UapiDevice(name, SocketDirectory);
        if (device.Exists && !Network.NetworkSetup.LinkExists(name))
            File.Delete(device.SocketPath);   // left over by a crashed engine
        // The engine daemonizes itself (like wireguard-go) and returns.
        var r = Sys.Run(engine.File, engine.Args);
        if (r.ExitCode != 0)
            throw new IOException($"{Path.GetFileName(engine.File)} {string.Join(' ', engine.Args)}: {r.FirstErrorLine}");
        // A normal host answers within milliseconds; a slow one (an emulated VM, a small board
        // under load) may need many seconds to start the engine's runtime: wait up to 30 s, and
        // if it never answers, take its interface away again rather than leave it half made.
        var limit = TimeSpan.FromSeconds(30);
        var deadline = Stopwatch.StartNew();
        while (!(device.Exists && Network.NetworkSetup.LinkExists(name)))
        {
            if (deadline.Elapsed > limit)
            {
                Network.NetworkSetup.DeleteLink(name);
                throw new IOException($"{Path.GetFileName(engine.File)} did not create interface {name} within {limit.TotalSeconds:0} s");
            }
            Thread.Sleep(10);
        }
        // The socket file appears just before the listener accepts; wait until it answers.
        while (true)
        {
            try
            {
                device.Read();
                return device;
            }
            catch (IOException e)
            {
                if (deadline.Elapsed > limit)
                {
                    Network.NetworkSetup.DeleteLink(name);   // the engine exits when its interface goes
                    throw new IOException($"{Path.GetFileName(engine.File)} created {name} but did not answer within {limit.TotalSeconds:0} s ({e.Message}); the interface was removed");
                }
                Thread.Sleep(10);
            }
        }
    }
}
