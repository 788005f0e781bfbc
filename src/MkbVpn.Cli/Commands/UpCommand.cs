using System.CommandLine;
using System.Runtime.InteropServices;
using MkbVpn.Clients;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

internal static class UpCommand
{
    public static Command Create()
    {
        var engine = new Option<string?>("--engine") { Description = "Data plane: auto (kernel if present, else the built-in engine), kernel, builtin, wireguard-go, or a path to a userspace engine (also $MKB_VPN_ENGINE)", HelpName = "ENGINE" };
        var foreground = new Option<bool>("--foreground") { Description = "Stay running: watch the interface, restore it if lost, remember client endpoints, apply changes made on other hosts (PostgreSQL registry); SIGTERM brings it down" };
        var gateway = new Option<string?>("--gateway") { Description = "With --foreground and the registry in PostgreSQL: run this gateway, following the registry's changes (LISTEN/NOTIFY)", HelpName = "NAME" };
        var json = CliOptions.Json();
        var cmd = new Command("up", "Bring the VPN interface up from the store, or reconcile a running one (safe to repeat).\n" +
            "Example: sudo mkb-vpn up    |    sudo mkb-vpn up --foreground --gateway berlin") { engine, foreground, gateway, json };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            if (p.GetValue(gateway) is { } gatewayName)
                return FollowGateway(p, service, gatewayName, p.GetValue(engine), p.GetValue(foreground), p.GetValue(json));
            // In the foreground, a SIGTERM that arrives while coming up still ends in a clean down.
            using var stop = new CancellationTokenSource();
            using var term = p.GetValue(foreground) ? PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); }) : null;
            using var intr = p.GetValue(foreground) ? PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); }) : null;
            var r = service.Up(p.GetValue(engine));
            if (r.Warning is not null)
                Console.Error.WriteLine($"mkb-vpn: warning: {r.Warning}");
            if (p.GetValue(json))
                CliOptions.WriteJson(new UpDto(r.Server.Interface, r.Engine, r.EngineReason, r.Warning, r.Created, r.PeersAdded, r.PeersRemoved, r.PeersUpdated, r.Kicked), MkbVpnJson.Default.UpDto);
            else
                Console.WriteLine($"{r.Server.Interface} is up ({DataPlaneText(r.Engine, r.EngineReason)}, UDP {r.Server.ListenPort}){(r.Created ? "" : ", reconciled")}: " +
                    $"{r.PeersAdded} peers added, {r.PeersRemoved} removed, {r.PeersUpdated} updated{(r.Kicked > 0 ? $", {r.Kicked} recent clients contacted" : "")}");
            if (!p.GetValue(foreground))
                return 0;
            if (service.Supervise(TimeSpan.FromSeconds(1), stop.Token, msg => Console.Error.WriteLine($"mkb-vpn: {msg}"), p.GetValue(engine)))
                return 0;
            service.Down();
            Console.WriteLine($"{r.Server.Interface} is down");
            return 0;
        });
        return cmd;
    }

    /// <summary>'up --foreground --gateway NAME': one line when up, one per change applied, until SIGTERM/SIGINT.</summary>
    private static int FollowGateway(System.CommandLine.ParseResult p, ClientService service, string name, string? engine, bool foreground, bool json)
    {
        if (!foreground)
            throw new FieldException("gateway", "gateway: a gateway follows the registry while it runs: use 'mkb-vpn up --foreground --gateway NAME' (the systemd unit)");
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        service.Follow(name, TimeSpan.FromSeconds(2), stop.Token, msg => Console.Error.WriteLine($"mkb-vpn: {msg}"), engine, r =>
        {
            if (json)
                CliOptions.WriteJson(new GatewayUpDto(r.Gateway.Name, r.Server.Interface, r.Engine, r.EngineReason, r.Created, r.Served, r.PeersAdded, r.PeersRemoved, r.PeersUpdated), MkbVpnJson.Default.GatewayUpDto);
            else
                Console.WriteLine($"gateway {r.Gateway.Name}: {r.Server.Interface} is up ({DataPlaneText(r.Engine, r.EngineReason)}, UDP {r.Server.ListenPort}): " +
                    $"{r.Served} clients; {r.PeersAdded} peers added, {r.PeersRemoved} removed, {r.PeersUpdated} updated{(r.Kicked > 0 ? $", {r.Kicked} recent clients contacted" : "")}; following the registry");
            Console.Out.Flush();
        });
        _ = p;
        return 0;
    }

    /// <summary>"kernel WireGuard: the wireguard kernel module is loaded", "built-in engine: chosen with --engine".</summary>
    internal static string DataPlaneText(string engine, string reason) =>
        (engine switch { "kernel" => "kernel WireGuard", "builtin" => "built-in engine", _ => engine }) + (reason.Length > 0 ? $": {reason}" : "");
}

internal static class DownCommand
{
    public static Command Create()
    {
        var cmd = new Command("down", "Remove the VPN interface and its firewall rules; clients and keys are kept.\nExample: sudo mkb-vpn down");
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            bool wasUp = service.Down();
            Console.WriteLine(wasUp ? $"{service.GetServer().Interface} is down" : $"{service.GetServer().Interface} was not up; firewall rules removed");
            return 0;
        });
        return cmd;
    }
}
