using System.CommandLine;
using MkbVpn.WireGuard;

namespace MkbVpn.Cli.Commands;

/// <summary>
/// <c>mkb-vpn engine [-f] IFACE</c>: mkb-vpn's own userspace WireGuard, run like <c>wireguard-go IFACE</c>
/// (<see cref="EngineProgram"/>, which the small native <c>mkb-vpn-engine</c> executable runs too).
/// </summary>
internal static class EngineCommand
{
    public static Command Create()
    {
        var foreground = new Option<bool>("--foreground", "-f") { Description = "Stay in the foreground (also $WG_PROCESS_FOREGROUND=1); log to stderr" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log debug events too (never keys)" };
        var lanes = new Option<int?>("--crypto-lanes") { Description = "Threads that share the encryption of a large batch (default: one per core from 4 cores on, else 1)" };
        var name = new Argument<string>("IFACE") { Description = "The interface to create (at most 15 characters)" };
        var cmd = new Command("engine", "Run mkb-vpn's userspace WireGuard engine for IFACE, like wireguard-go: configure it with wg(8).\n" +
            "Usable as WG_QUICK_USERSPACE_IMPLEMENTATION and as MKB_VPN_ENGINE (through scripts/mkb-vpn-engine).\n" +
            "$MKB_VPN_ENGINE_SCHEDULER=normal keeps the packet threads on the default scheduling policy (default: batch).\n" +
            "Example: sudo mkb-vpn engine wg0 && sudo wg setconf wg0 wg0.conf") { foreground, verbose, lanes, name };
        cmd.SetHandler(p => Run(p.GetValue(name)!, p.GetValue(foreground), p.GetValue(verbose), p.GetValue(lanes)));
        return cmd;
    }

    private static int Run(string name, bool foreground, bool verbose, int? cryptoLanes) =>
        EngineProgram.Run("mkb-vpn engine", name, foreground, verbose, cryptoLanes);
}
