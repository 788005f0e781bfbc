namespace MkbVpn.Devices;

/// <summary>Finds and creates the live WireGuard interface (a seam: the service never looks it up by itself).</summary>
public interface IDeviceLocator
{
    /// <summary>The running interface, or null when it is down.</summary>
    IWireGuardDevice? Find(string name);

    /// <summary>Creates the interface with the data plane asked for (null: $MKB_VPN_ENGINE, else auto).</summary>
    DataPlane Create(string name, string? engine);

    /// <summary>Whether a running interface is a kernel WireGuard link (else a userspace engine's).</summary>
    bool IsKernelLink(string name);

    /// <summary>After the link was deleted: waits (briefly) until a userspace engine has removed its socket.</summary>
    void AwaitEngineExit(string name);
}

/// <summary>The real interfaces of this host: kernel links through wg(8), userspace engines through their UAPI socket.</summary>
/// <param name="userspaceThroughWg">Drive a userspace interface with wg(8) as a kernel one is (lets end-to-end tests run the kernel code path without the module).</param>
public sealed class LiveDevices(bool userspaceThroughWg = false) : IDeviceLocator
{
    /// <summary>The locator as the environment asks for it (<see cref="LiveInterface.ControlVariable"/>); read once, at the entry points.</summary>
    public static LiveDevices FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(LiveInterface.ControlVariable) == "wg");

    public IWireGuardDevice? Find(string name) => LiveInterface.Find(name, userspaceThroughWg);

    public DataPlane Create(string name, string? engine) => LiveInterface.Create(name, engine);

    public bool IsKernelLink(string name) => LiveInterface.IsKernelLink(name);

    public void AwaitEngineExit(string name)
    {
        var sock = Path.Combine(LiveInterface.SocketDirectory, name + ".sock");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (File.Exists(sock) && DateTime.UtcNow < deadline)
            Thread.Sleep(10);   // the engine removes its socket as it exits
    }
}
