using MkbVpn.Json;
using System.CommandLine;
using System.Globalization;
using MkbVpn.Clients;

namespace MkbVpn.Cli.Commands;

/// <summary>'gateway add|list|remove': the WireGuard servers of one registry (docs/gateways.md).</summary>
internal static class GatewayCommand
{
    public static Command Create()
    {
        var cmd = new Command("gateway", "The gateways of the registry: each is a WireGuard server with its own key, endpoint and internal networks;\n" +
            "each gateway host runs 'mkb-vpn up --foreground --gateway NAME'. See docs/gateways.md.\n" +
            "Example: mkb-vpn gateway add berlin --endpoint vpn-berlin.example.com --internal-network 198.51.100.0/24");

        var addName = new Argument<string>("NAME") { Description = "Gateway name (1-32 of a-z A-Z 0-9 _ . -)" };
        var endpoint = new Option<string?>("--endpoint") { Description = "HOST[:PORT] clients dial for this gateway (required)", HelpName = "HOST[:PORT]" };
        var listenPort = new Option<int?>("--listen-port") { Description = "UDP port the gateway listens on (default 51820)", HelpName = "PORT" };
        var iface = new Option<string?>("--interface") { Description = "Interface name on the gateway's host (default mkbvpn0)", HelpName = "NAME" };
        var internals = new Option<string[]>("--internal-network") { Description = "A network behind this gateway its clients reach (repeat or comma list)", HelpName = "CIDR" };
        var subnet = new Option<string?>("--subnet") { Description = "The gateway's own IPv4 slice (of the registry's subnet, or a subnet of its own): its clients' addresses come from it", HelpName = "CIDR" };
        var subnet6 = new Option<string?>("--subnet6") { Description = "The gateway's own IPv6 slice", HelpName = "CIDR" };
        var add = new Command("add", "Add a gateway with a key of its own; clients served by all gateways get a config for it ('show NAME --gateway G').\n" +
            "Example: mkb-vpn gateway add berlin --endpoint vpn-berlin.example.com:51820 --internal-network 198.51.100.0/24 [--subnet 203.0.113.128/25]") { addName, endpoint, listenPort, iface, internals, subnet, subnet6 };
        add.SetHandler(p =>
        {
            var g = CliOptions.Service(p).AddGateway(new GatewayRequest(p.GetValue(addName)!)
            {
                Endpoint = p.GetValue(endpoint),
                ListenPort = p.GetValue(listenPort),
                Interface = p.GetValue(iface),
                InternalNetworks = p.GetValue(internals) is { Length: > 0 } n ? n : null,
                Subnet4 = p.GetValue(subnet),
                Subnet6 = p.GetValue(subnet6),
            });
            string slices = string.Join(", ", new[] { g.Subnet4, g.Subnet6 }.OfType<System.Net.IPNetwork>());
            Console.WriteLine($"Added gateway {g.Name}: endpoint {g.Endpoint}, interface {g.Interface}, {(slices.Length == 0 ? "" : $"subnets {slices}, ")}public key {g.PublicKey.ToBase64()}");
            Console.WriteLine($"On its host, run: mkb-vpn up --foreground --gateway {g.Name}");
            return 0;
        });

        var json = CliOptions.Json();
        var list = new Command("list", "List gateways with their state: last seen, engine, peers, clients served.\nExample: mkb-vpn gateway list --json") { json };
        list.Aliases.Add("ls");
        list.SetHandler(p =>
        {
            var gateways = CliOptions.Service(p).ListGateways();
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. gateways.Select(GatewayDto.Of)], MkbVpnJson.Default.GatewayDtoArray);
                return 0;
            }
            CliOptions.Table(["NAME", "ENDPOINT", "INTERFACE", "CLIENTS", "STATE", "LAST SEEN", "ENGINE", "PEERS"],
                gateways.Select(v => (IReadOnlyList<string>)[
                    v.Gateway.Name, v.Gateway.Endpoint, v.Gateway.Interface, v.Served.ToString(CultureInfo.InvariantCulture),
                    v.Online ? "online" : v.Gateway.LastSeen is null ? "never seen" : "offline",
                    v.Gateway.LastSeen?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-",
                    v.Gateway.Engine ?? "-", v.Gateway.PeerCount?.ToString(CultureInfo.InvariantCulture) ?? "-"]));
            return 0;
        });

        var removeName = new Argument<string>("NAME") { Description = "Gateway name" };
        var force = new Option<bool>("--force") { Description = "Remove it even if it is the last one, runs on this host, or reported within 30 s" };
        var remove = new Command("remove", "Remove a gateway (refused for the last one or a running one unless --force); its clients stay.\n" +
            "Example: mkb-vpn gateway remove berlin") { removeName, force };
        remove.Aliases.Add("rm");
        remove.SetHandler(p =>
        {
            var g = CliOptions.Service(p).RemoveGateway(p.GetValue(removeName)!, p.GetValue(force));
            Console.WriteLine($"Removed gateway {g.Name}");
            return 0;
        });

        cmd.Subcommands.Add(add);
        cmd.Subcommands.Add(list);
        cmd.Subcommands.Add(remove);
        return cmd;
    }
}
