using System.Diagnostics;

namespace MkbVpn.Devices;

/// <summary>Finds and creates the live WireGuard interface: kernel module, else a userspace engine.</summary>
public static class LiveInterface
{
    /// <summary>Environment variable choosing the data plane: "auto", "kernel", "builtin" (mkb-vpn's own engine), "wireguard-go", or a path to a userspace engine.</summary>
    public const string EngineVariable = "MKB_VPN_ENGINE";

    /// <summary>The userspace engine used when the kernel has no WireGuard module.</summary>
    public const string DefaultUserspaceEngine = "builtin";

    public static string SocketDirectory =>
        Environment.GetEnvironmentVariable("MKB_VPN_UAPI_DIR") is { Length: > 0 } d ? d : UapiDevice.DefaultSocketDirectory;

    /// <summary>
    /// Environment variable choosing how a userspace interface is driven: "uapi" (default: our own
    /// client of the socket) or "wg" (through wg(8), exactly as a kernel interface is driven, which
    /// lets the kernel code path be tested where no kernel module exists).
    /// </summary>
    public const string ControlVariable = "MKB_VPN_CONTROL";

    /// <summary>The running interface, or null when it is down.</summary>
    public static IWireGuardDevice? Find(string name)
    {
        var uapi = new UapiDevice(name, SocketDirectory);
        if (uapi.Exists && Network.NetworkSetup.LinkExists(name))
            return Environment.GetEnvironmentVariable(ControlVariable) == "wg" ? new WgToolDevice(name) : uapi;
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

    /// <summary>Creates the interface; returns the device and a word for what runs it.</summary>
    public static (IWireGuardDevice Device, string Engine) Create(string name, string? engine)
    {
        engine ??= Environment.GetEnvironmentVariable(EngineVariable);
        if (string.IsNullOrEmpty(engine) || engine == "auto")
        {
            if (KernelModuleAvailable() || TryKernel(name))
                return (FinishKernel(name), "kernel");
            engine = DefaultUserspaceEngine;
        }
        else if (engine == "kernel")
        {
            if (!TryKernel(name))
                throw new UserInputException("the WireGuard kernel module is not available here (unset MKB_VPN_ENGINE to use a userspace engine)", ExitCodes.MissingTool);
            return (FinishKernel(name), "kernel");
        }
        if (engine is "builtin" or "mkb-vpn")
            return (StartUserspace(name, SelfEngineCommand(name)), "builtin");
        return (StartUserspace(name, (engine, [name])), engine);
    }

    /// <summary>This very program's 'engine IFACE' verb (through dotnet when run as a dll).</summary>
    private static (string File, string[] Args) SelfEngineCommand(string name)
    {
        string self = Environment.ProcessPath ?? throw new UserInputException("cannot find the mkb-vpn executable to run its engine", ExitCodes.MissingTool);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            return (self, [Environment.GetCommandLineArgs()[0], "engine", name]);
        return (self, ["engine", name]);
    }

    private static IWireGuardDevice FinishKernel(string name)
    {
        if (!Network.NetworkSetup.LinkExists(name))
            Sys.Check("ip", ["link", "add", "dev", name, "type", "wireguard"]);
        return new WgToolDevice(name);
    }

    private static bool TryKernel(string name)
    {
        if (Network.NetworkSetup.LinkExists(name))
            return IsWireGuardLink(name);
        var r = Sys.Run("ip", ["link", "add", "dev", name, "type", "wireguard"]);
        return r.ExitCode == 0;
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
        var deadline = Stopwatch.StartNew();
        while (!(device.Exists && Network.NetworkSetup.LinkExists(name)))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                throw new IOException($"{Path.GetFileName(engine.File)} did not create interface {name} within 10 s");
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
            catch (IOException) when (deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(10);
            }
        }
    }
}
