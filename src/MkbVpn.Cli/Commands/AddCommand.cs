using System.CommandLine;
using MkbVpn.Clients;
using MkbVpn.Configs;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

internal static class AddCommand
{
    public static Command Create()
    {
        var names = CliOptions.Names("add");
        var address = new Option<string[]>("--address") { Description = "Explicit address (IPv4 and/or IPv6) instead of the next free one; one client only", HelpName = "IP" };
        var dns = new Option<string[]>("--dns") { Description = "DNS server(s) for this client instead of the server's, or 'none'", HelpName = "IP" };
        var allowed = new Option<string[]>("--allowed-ips") { Description = "AllowedIPs in this client's config instead of the server's split/full default", HelpName = "CIDR" };
        var full = new Option<bool>("--full-tunnel") { Description = "This client sends all traffic through the VPN" };
        var keepalive = new Option<int?>("--keepalive") { Description = "PersistentKeepalive for this client, seconds (0 = off)", HelpName = "SECONDS" };
        var group = new Option<string[]>("--group") { Description = "Put the client(s) in this group (repeat for several)", HelpName = "GROUP" };
        var expires = new Option<string?>("--expires") { Description = "When the client stops working: 2026-12-31 (through that day), 2026-12-31T18:00Z, 14d, 12h, or never", HelpName = "WHEN" };
        var qrPng = new Option<string?>("--qr-png") { Description = "Also write the QR code as a PNG file (one client only)", HelpName = "FILE" };
        var noQr = new Option<bool>("--no-qr") { Description = "Do not print the QR code" };
        var gateway = new Option<string[]>("--gateway") { Description = "Only these gateways serve the client(s) (repeat or comma list; default: all)", HelpName = "GATEWAY" };
        var json = CliOptions.Json();
        var cmd = new Command("add", "Add client(s): fresh keys, the next free address, a config file and a QR code; live at once.\n" +
            "Example: mkb-vpn add alice bob    |    mkb-vpn add carol --address 10.99.0.50 --full-tunnel --qr-png carol.png\n" +
            "         mkb-vpn add dora --group contractors --expires 14d")
        {
            names, address, dns, allowed, full, keepalive, group, expires, gateway, qrPng, noQr, json,
        };
        cmd.SetHandler(p =>
        {
            var list = p.GetValue(names)!;
            if (p.GetValue(address) is { Length: > 0 } && list.Length > 1)
                throw new UserInputException("--address: only with a single client name");
            if (p.GetValue(qrPng) is not null && list.Length > 1)
                throw new UserInputException("--qr-png: only with a single client name");
            // The service's parsers (the API's and set's): "none", commas, limits, field-named errors.
            var (a4, a6) = ClientService.ParseClientAddresses(p.GetValue(address) ?? []);
            var dnsValues = p.GetValue(dns) is { Length: > 0 } d ? ClientService.ParseDns(d, allowDefault: false) : null;
            var allowedValues = ClientService.ParseAllowedIps(p.GetValue(allowed) is { Length: > 0 } al ? al : null, p.GetValue(full));
            var service = CliOptions.Service(p);
            // The PNG's path is checked by opening it before anything is added: a bad path must not
            // fail after the client was committed.
            FileStream? pngFile = null;
            if (p.GetValue(qrPng) is { } pngPath)
            {
                try
                {
                    pngFile = new FileStream(pngPath, FileMode.Create, FileAccess.Write);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new UserInputException($"--qr-png: cannot write {pngPath}: {e.Message}; nothing was added");
                }
            }
            VerbResult result;
            try
            {
                result = service.Add([.. list.Select(n => new AddRequest(n)
            {
                Address4 = a4,
                Address6 = a6,
                Dns = dnsValues,
                AllowedIps = allowedValues,
                Keepalive = p.GetValue(keepalive),
                Groups = p.GetValue(group) is { Length: > 0 } g ? [.. g.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))] : null,
                Expires = p.GetValue(expires),
                Gateways = p.GetValue(gateway) is { Length: > 0 } gw ? gw : null,
            })]);
            }
            catch
            {
                if (pngFile is not null)
                {
                    pngFile.Dispose();
                    File.Delete(p.GetValue(qrPng)!);
                }
                throw;
            }
            if (pngFile is not null)
            {
                using (pngFile)
                    pngFile.Write(QrCodes.Png(service.QrConfigText(result.Clients[0].Name)));
            }
            if (p.GetValue(json))
            {
                var now = DateTimeOffset.UtcNow;
                CliOptions.WriteJson([.. result.Clients.Select(c => ClientDto.Of(c, now) with { ConfigPath = service.Paths.ClientConfig(c.Name) })],
                    MkbVpnJson.Default.ClientDtoArray);
                return 0;
            }
            foreach (var c in result.Clients)
                Console.WriteLine($"Added {c.Name} ({c.AddressText}): config {service.Paths.ClientConfig(c.Name)}" +
                    (result.HomeGateways.TryGetValue(c.Name, out var home) ? $" for gateway {home.Name} ({home.Endpoint})" : ""));
            if (!result.Live && !result.OtherInterfaceHere)
                Console.WriteLine("Note: the VPN interface is not up; run 'mkb-vpn up' to serve these clients");
            if (result.Clients.Count == 1 && !p.GetValue(noQr))
            {
                Console.WriteLine("Scan with the WireGuard app (+ > Scan from QR code):");
                Console.Write(QrCodes.Terminal(service.ConfigText(result.Clients[0].Name)));
            }
            if (p.GetValue(qrPng) is { } written)
                Console.WriteLine($"QR code written to {written}");
            return 0;
        });
        return cmd;
    }
}
