using System.CommandLine;
using MkbVpn.Clients;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

internal static class InitCommand
{
    public static Command Create()
    {
        var endpoint = new Option<string?>("--endpoint") { Description = "Public host name or address clients dial, with optional :PORT (asked for when omitted on a terminal)", HelpName = "HOST[:PORT]" };
        var subnet = new Option<string?>("--subnet") { Description = $"IPv4 VPN subnet, any prefix length (default {ClientService.DefaultSubnet4})", HelpName = "CIDR" };
        var subnet6 = new Option<string?>("--subnet6") { Description = "IPv6 VPN subnet (default: a random unique-local /64)", HelpName = "CIDR" };
        var noIpv6 = new Option<bool>("--no-ipv6") { Description = "No IPv6 inside the tunnel" };
        var internalNet = new Option<string[]>("--internal-network") { Description = "A network behind the server clients may reach; repeat for more (default: the host's private bridges, e.g. Incus)", HelpName = "CIDR", AllowMultipleArgumentsPerToken = false };
        var dns = new Option<string[]>("--dns") { Description = "DNS server(s) pushed to clients, or 'none' (default: the host's address on the internal bridge)", HelpName = "IP" };
        var port = new Option<int?>("--port") { Description = "UDP listen port (default 51820)", HelpName = "N" };
        var mtu = new Option<int?>("--mtu") { Description = "Interface MTU (default 1420)", HelpName = "N" };
        var full = new Option<bool>("--full-tunnel") { Description = "Clients send all traffic through the VPN (default: split tunnel, only the VPN and internal networks)" };
        var split = new Option<bool>("--split-tunnel") { Description = "Clients send only VPN and internal-network traffic through the VPN" };
        var masq = new Option<bool?>("--masquerade") { Description = "Masquerade client traffic to internal networks (hosts there see the server's address); default off" };
        var c2c = new Option<bool?>("--client-to-client") { Description = "Let clients reach each other (default off)" };
        var keepalive = new Option<int?>("--keepalive") { Description = "PersistentKeepalive in client configs, seconds, 0 = off (default 25)", HelpName = "SECONDS" };
        var iface = new Option<string?>("--interface") { Description = "WireGuard interface name (default mkbvpn0)", HelpName = "NAME" };
        var historyMinutes = new Option<string?>("--history-minutes") { Description = "Keep traffic history per minute this long (default 48h; 1h to 14d)", HelpName = "DURATION" };
        var historyHours = new Option<string?>("--history-hours") { Description = "Keep traffic history per hour this long (default 90d; 1d to 3 years)", HelpName = "DURATION" };
        var change = new Option<bool>("--change") { Description = "Change the given settings of an initialised server (keys and clients are kept)" };
        var json = CliOptions.Json();
        var cmd = new Command("init", "Set up the server once: keys, subnets, port, endpoint, DNS, internal networks.\n" +
            "Example: mkb-vpn init --endpoint vpn.example.com:51820 --subnet 10.99.0.0/24 --internal-network 10.1.0.0/24")
        {
            endpoint, subnet, subnet6, noIpv6, internalNet, dns, port, mtu, full, split, masq, c2c, keepalive, iface, historyMinutes, historyHours, change, json,
        };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            if (p.GetValue(full) && p.GetValue(split))
                throw new UserInputException("--full-tunnel and --split-tunnel contradict each other");
            string? ep = p.GetValue(endpoint);
            if (ep is null && !Console.IsInputRedirected && !p.GetValue(json) && !service.IsInitialised())
            {
                Console.Write("Public host name or address that clients dial (HOST[:PORT]): ");
                ep = Console.ReadLine()?.Trim();
                if (string.IsNullOrEmpty(ep))
                    throw new UserInputException("init: an endpoint is required");
            }
            // Validate the history options before anything changes (the cross-check with the stored values follows).
            if (p.GetValue(historyMinutes) is not null || p.GetValue(historyHours) is not null)
                MkbVpn.Traffic.TrafficRetention.Parse(p.GetValue(historyMinutes), p.GetValue(historyHours),
                    new MkbVpn.Traffic.TrafficRetention(MkbVpn.Traffic.TrafficRetention.MinMinuteHours, MkbVpn.Traffic.TrafficRetention.MaxHourDays));
            var internals = p.GetValue(internalNet);
            var dnsValues = p.GetValue(dns);
            var result = service.Init(new InitOptions
            {
                Endpoint = ep,
                Subnet4 = p.GetValue(subnet),
                Subnet6 = p.GetValue(subnet6),
                NoIpv6 = p.GetValue(noIpv6),
                InternalNetworks = internals is { Length: > 0 } ? internals : null,
                Dns = dnsValues is { Length: > 0 } ? dnsValues : null,
                Port = p.GetValue(port),
                Mtu = p.GetValue(mtu),
                FullTunnel = p.GetValue(full) ? true : p.GetValue(split) ? false : null,
                Masquerade = p.GetValue(masq),
                ClientToClient = p.GetValue(c2c),
                Keepalive = p.GetValue(keepalive),
                Interface = p.GetValue(iface),
                Change = p.GetValue(change),
            });
            var notes = result.Notes.ToList();
            if (p.GetValue(historyMinutes) is not null || p.GetValue(historyHours) is not null)
            {
                var before = service.GetTrafficRetention();
                var retention = service.SetTrafficRetention(p.GetValue(historyMinutes), p.GetValue(historyHours));
                if (retention != before)
                {
                    notes.Remove("nothing changed");
                    notes.Add($"traffic history kept per minute for {retention.MinuteHours}h, per hour for {retention.HourDays}d");
                }
            }
            if (p.GetValue(json))
            {
                CliOptions.WriteJson(ServerDto.Of(result.Server), MkbVpnJson.Default.ServerDto);
                return 0;
            }
            Console.WriteLine(result.Created ? $"Initialised mkb-vpn in {service.Paths.DataDir}" : "Settings updated");
            ServerView.Print(result.Server);
            foreach (var note in notes)
                Console.WriteLine($"Note: {note}");
            if (result.Created)
                Console.WriteLine("Next: mkb-vpn up, then mkb-vpn add NAME");
            return 0;
        });
        return cmd;
    }
}

/// <summary>The server's settings as init and import print them (their --json is the API's <see cref="ServerDto"/>).</summary>
internal static class ServerView
{
    public static void Print(ServerSettings s)
    {
        Console.WriteLine($"  interface         {s.Interface} (UDP port {s.ListenPort})");
        Console.WriteLine($"  endpoint          {s.Endpoint}");
        Console.WriteLine($"  public key        {s.PublicKey.ToBase64()}");
        Console.WriteLine($"  VPN subnets       {string.Join(", ", new[] { s.Subnet4?.ToString(), s.Subnet6?.ToString() }.Where(x => x is not null))} (server {string.Join(", ", new[] { s.ServerAddress4?.ToString(), s.ServerAddress6?.ToString() }.Where(x => x is not null))})");
        Console.WriteLine($"  internal networks {(s.InternalNetworks.Count == 0 ? "(none)" : string.Join(", ", s.InternalNetworks))}{(s.Masquerade ? " (masquerade)" : "")}");
        Console.WriteLine($"  routing           {(s.FullTunnel ? "full tunnel (all traffic)" : "split tunnel (VPN and internal networks only)")}");
        Console.WriteLine($"  DNS               {(s.Dns.Count == 0 ? "(none)" : string.Join(", ", s.Dns))}");
        Console.WriteLine($"  MTU               {s.Mtu}");
    }
}
