using System.CommandLine;
using MkbVpn.Clients;
using MkbVpn.Configs.Importers;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

/// <summary>mkb-vpn import pivpn|wg-easy|wg-quick: move in from another WireGuard tool, every client's config unchanged.</summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var cmd = new Command("import", "Import a server and its clients from PiVPN, wg-easy or a wg-quick config, into a fresh data directory.\n" +
            "Every client keeps its config file; all or nothing. Example: mkb-vpn import pivpn --dry-run");

        var dir = new Argument<string?>("DIR") { Description = $"PiVPN's WireGuard folder (default {PiVpnReader.DefaultDir}; setupVars.conf from there, ../pivpn/wireguard or {PiVpnReader.DefaultSetupVars})", Arity = ArgumentArity.ZeroOrOne };
        var pivpn = new Command("pivpn", "Import a PiVPN (WireGuard) installation.\nExample: mkb-vpn import pivpn    |    mkb-vpn import pivpn /mnt/old/etc/wireguard --dry-run") { dir };
        Common(pivpn, (p, o) => PiVpnReader.Read(p.GetValue(dir)));
        cmd.Subcommands.Add(pivpn);

        var file = new Argument<string>("FILE") { Description = "wg-easy v14's wg0.json, or v15's SQLite database (wg-easy.db)" };
        var wgEasy = new Command("wg-easy", "Import wg-easy (v14 wg0.json or v15 database). v14 does not store the endpoint: give --endpoint.\n" +
            "Example: mkb-vpn import wg-easy /srv/wg-easy/wg0.json --endpoint vpn.example.com:51820") { file };
        Common(wgEasy, (p, o) => WgEasyReader.Read(p.GetValue(file)!, DateTimeOffset.UtcNow));
        cmd.Subcommands.Add(wgEasy);

        var conf = new Argument<string>("SERVER.conf") { Description = "The wg-quick server config (e.g. /etc/wireguard/wg0.conf)" };
        var clients = new Option<string?>("--clients") { Description = "Folder of client configs, matched to peers by public key (names, private keys, DNS, endpoint)", HelpName = "DIR" };
        var wgQuick = new Command("wg-quick", "Import any wg-quick server config; peer names from '### begin NAME ###' (PiVPN) and '### Client NAME'\n" +
            "(angristan) markers, else from client files, else generated.\nExample: mkb-vpn import wg-quick /etc/wireguard/wg0.conf --clients /root") { conf, clients };
        Common(wgQuick, (p, o) => WgQuickServerReader.Read(p.GetValue(conf)!, p.GetValue(clients)));
        cmd.Subcommands.Add(wgQuick);
        return cmd;
    }

    private static void Common(Command cmd, Func<ParseResult, ImportOptions, ImportSource> read)
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be imported and every problem; change nothing" };
        var endpoint = new Option<string?>("--endpoint") { Description = "HOST[:PORT] clients dial, where the old tool did not store it (or to change it)", HelpName = "HOST[:PORT]" };
        var port = new Option<int?>("--port") { Description = "UDP listen port, where the old tool did not store it", HelpName = "N" };
        var internalNet = new Option<string[]>("--internal-network") { Description = "A network behind the server clients may reach; repeat (default: the non-VPN networks of the clients' AllowedIPs)", HelpName = "CIDR" };
        var iface = new Option<string?>("--interface") { Description = $"WireGuard interface name (default {ServerSettings.DefaultInterface})", HelpName = "NAME" };
        var json = CliOptions.Json();
        cmd.Options.Add(dryRun);
        cmd.Options.Add(endpoint);
        cmd.Options.Add(port);
        cmd.Options.Add(internalNet);
        cmd.Options.Add(iface);
        cmd.Options.Add(json);
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            var o = new ImportOptions
            {
                DryRun = p.GetValue(dryRun),
                Endpoint = p.GetValue(endpoint),
                Port = p.GetValue(port),
                InternalNetworks = p.GetValue(internalNet) is { Length: > 0 } n ? n : null,
                Interface = p.GetValue(iface),
            };
            ImportPlan plan;
            var src = read(p, o);
            try
            {
                plan = service.Import(src, o);
            }
            catch (ImportRefusedException e)
            {
                if (o.DryRun && !p.GetValue(json))
                    PrintFound(src);
                foreach (var problem in e.Problems)
                    Console.Error.WriteLine($"mkb-vpn: error: {problem}");
                Console.Error.WriteLine($"mkb-vpn: error: {e.Message}");
                return e.ExitCode;
            }
            if (p.GetValue(json))
            {
                var now = DateTimeOffset.UtcNow;
                CliOptions.WriteJson(new ImportDto(o.DryRun, plan.Tool, ServerDto.Of(plan.Server), [.. plan.Clients.Select(c => ClientDto.Of(c, now))],
                    [.. plan.Renamed.Select(r => new RenameDto(r.From, r.To))], plan.Notes), MkbVpnJson.Default.ImportDto);
                return 0;
            }
            Print(plan, o.DryRun, service);
            return 0;
        });
    }

    /// <summary>A dry run that found problems still shows what it read, before the problems.</summary>
    private static void PrintFound(ImportSource src)
    {
        Console.WriteLine($"Dry run: found in {src.Tool}'s files (nothing was changed):");
        if (src.Server is { } s)
            Console.WriteLine($"  server: port {s.ListenPort?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}, subnets {string.Join(", ", new[] { s.Subnet4?.ToString(), s.Subnet6?.ToString() }.Where(x => x is not null))}, endpoint {(s.EndpointHost is null ? "?" : Addressing.Cidr.FormatEndpoint(s.EndpointHost, s.EndpointPort ?? 0))}");
        CliOptions.Table(["NAME", "ADDRESS", "STATE", "KEYS", "FROM"], src.Clients.Select(c => (IReadOnlyList<string>)
            [c.Name ?? "(unnamed)", string.Join(", ", new[] { c.Address4?.ToString(), c.Address6?.ToString() }.Where(x => x is not null)),
             c.Enabled ? "enabled" : "disabled", c.PrivateKey is null ? "public key only" : "full", c.Origin]));
        foreach (var note in src.Notes)
            Console.WriteLine($"Note: {note}");
    }

    private static void Print(ImportPlan plan, bool dryRun, ClientService service)
    {
        var s = plan.Server;
        Console.WriteLine(dryRun ? $"Dry run: would import from {plan.Tool} (nothing was changed)" : $"Imported from {plan.Tool} into {service.Paths.DataDir}");
        ServerView.Print(s);
        CliOptions.Table(["NAME", "ADDRESS", "STATE", "KEYS", "CREATED"], plan.Clients.Select(c => (IReadOnlyList<string>)
            [c.Name, c.AddressText, c.Enabled ? "enabled" : "blocked", c.PrivateKey is null ? "public key only" : "full",
             c.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)]));
        foreach (var (from, to) in plan.Renamed)
            Console.WriteLine($"Renamed {from} -> {to}");
        foreach (var note in plan.Notes)
            Console.WriteLine($"Note: {note}");
        if (!dryRun)
            Console.WriteLine($"Next: stop the old {plan.Tool} server (e.g. systemctl disable --now wg-quick@wg0), then 'mkb-vpn up'");
    }
}
