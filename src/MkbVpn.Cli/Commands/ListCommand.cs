using System.CommandLine;
using MkbVpn.Configs;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

internal static class ListCommand
{
    public static Command Create()
    {
        var json = CliOptions.Json();
        var group = new Option<string?>("--group") { Description = "Only the members of this group", HelpName = "GROUP" };
        var cmd = new Command("list", "List clients: name, addresses, enabled, blocked or expired, groups, expiry, created, last seen.\nExample: mkb-vpn list --group staff --json") { group, json };
        cmd.Aliases.Add("ls");
        cmd.SetHandler(p =>
        {
            var damaged = new List<string>();
            var clients = CliOptions.Service(p).List(p.GetValue(group), damaged);
            var now = DateTimeOffset.UtcNow;
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. clients.Select(c => ClientDto.Of(c, now))], MkbVpnJson.Default.ClientDtoArray);
                return CliOptions.ReportDamaged(damaged);
            }
            // LAST SEEN: the latest handshake the service recorded ('online' within the online window), kept after a client goes offline.
            CliOptions.Table(["NAME", "ADDRESS", "STATE", "GROUPS", "EXPIRES", "CREATED", "LAST SEEN"],
                clients.Select(c => (IReadOnlyList<string>)[c.Name, c.AddressText, c.StateAt(now), c.Groups.Count == 0 ? "-" : string.Join(",", c.Groups),
                    c.ExpiresAt is { } e ? Access.When.Format(e) : "never",
                    c.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture),
                    c.Enabled && c.LastHandshake is { } hs && now - hs < Clients.ClientService.OnlineWindow ? "online" : CliOptions.Ago(c.LastHandshake, now)]));
            return CliOptions.ReportDamaged(damaged);
        });
        return cmd;
    }
}

internal static class StatusCommand
{
    public static Command Create()
    {
        var json = CliOptions.Json();
        var name = new Argument<string?>("NAME") { Description = "Only this client (with --history: its history; without NAME: all clients together)", Arity = ArgumentArity.ZeroOrOne };
        var history = new Option<bool>("--history") { Description = "Traffic history as the running service (up --foreground) sampled it once a minute: received, sent and online per interval, totals last" };
        var since = new Option<string?>("--since") { Description = "With --history: from when (24h, 7d, 2026-11-01, 2026-11-01T08:00Z; default 24h)", HelpName = "WHEN" };
        var until = new Option<string?>("--until") { Description = "With --history: up to when (default now)", HelpName = "WHEN" };
        var step = new Option<string?>("--step") { Description = "With --history: minute, hour, day or seconds (default: the finest giving at most 60 lines)", HelpName = "STEP" };
        var gateway = new Option<string?>("--gateway") { Description = "Only this gateway, as it reported to the registry (default: every gateway once one has reported; docs/gateways.md)", HelpName = "GATEWAY" };
        var cmd = new Command("status", "Live status: endpoint, latest handshake, online (handshake within 3 minutes), received and sent bytes; --history: traffic over time.\n" +
            "On a registry of gateways: every gateway's reports, one line per client and gateway.\n" +
            "Example: sudo mkb-vpn status    |    mkb-vpn status --gateway berlin    |    mkb-vpn status alice --history --since 7d") { name, history, since, until, step, gateway, json };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            if (p.GetValue(history))
            {
                if (p.GetValue(gateway) is not null)
                    throw new UserInputException("--gateway does not go with --history (the history is per client, over all gateways)");
                return PrintHistory(service, p.GetValue(name), p.GetValue(since), p.GetValue(until), p.GetValue(step), p.GetValue(json));
            }
            if (p.GetValue(since) is not null || p.GetValue(until) is not null || p.GetValue(step) is not null)
                throw new UserInputException("--since, --until and --step go with --history");
            if (service.GatewayStatus(p.GetValue(gateway), p.GetValue(name)) is { } gateways)
                return PrintGateways(gateways, p.GetValue(json));
            var report = service.Status();
            if (p.GetValue(name) is { } only)
            {
                var one = report.Clients.Where(c => string.Equals(c.Client.Name, only, StringComparison.OrdinalIgnoreCase)).ToList();
                if (one.Count == 0)
                    throw new UserInputException($"no client named '{only}'", ExitCodes.NotFound);
                report = report with { Clients = one };
            }
            var plane = report.InterfaceUp ? service.DataPlane() : null;
            var now = DateTimeOffset.UtcNow;
            if (report.OtherGatewayHere is { } hint)
                Console.Error.WriteLine($"mkb-vpn: note: {hint}");
            if (p.GetValue(json))
            {
                // The API's /status shape, with the engine and every client (the API's client shape) added.
                CliOptions.WriteJson(new StatusDto(report.Server.Interface, report.InterfaceUp, report.Clients.Count,
                    report.Clients.Count(s => s.Client.Enabled), report.Clients.Count(s => s.Online))
                {
                    Engine = plane?.Engine,
                    EngineReason = plane?.Reason,
                    Drops = report.Drops,
                    Clients = [.. report.Clients.Select(s => ClientDto.Of(s, now))],
                }, MkbVpnJson.Default.StatusDto);
                return CliOptions.ReportDamaged(report.Damaged);
            }
            int elsewhere = report.Clients.Count(c => c.Elsewhere is not null);
            Console.WriteLine($"{report.Server.Interface}: {(report.InterfaceUp ? "up" : report.OtherGatewayHere is not null ? "not on this host" : "DOWN (run 'mkb-vpn up')")}{(plane is null ? "" : $" ({UpCommand.DataPlaneText(plane.Engine, plane.Reason)})")}, {report.Clients.Count(c => c.Online)} of {report.Clients.Count - elsewhere} clients online" +
                (elsewhere == 0 ? "" : $" ({elsewhere} more served by other gateways only: 'mkb-vpn status --gateway NAME')"));
            if (report.Drops is { } drops && drops.GetValueOrDefault("dropped") > 0)
                Console.WriteLine($"engine dropped {drops["dropped"]} packets: {string.Join(", ", drops.Where(d => d.Key != "dropped" && d.Value > 0).Select(d => $"{d.Key} {d.Value}"))}");
            CliOptions.Table(["NAME", "ADDRESS", "STATE", "ENDPOINT", "HANDSHAKE", "RX", "TX"],
                report.Clients.Select(s => (IReadOnlyList<string>)[
                    s.Client.Name, s.Client.AddressText,
                    s.Client.IsExpired(now) ? "expired" : !s.Client.Enabled ? "blocked" : s.Elsewhere is { } g ? $"on {string.Join(",", g)}" : s.Online ? "online" : "offline",
                    s.Live?.Endpoint ?? s.Client.LastEndpoint ?? "-",
                    CliOptions.Ago(s.Live?.LastHandshake ?? s.Client.LastHandshake, now),
                    CliOptions.Bytes(s.Live?.RxBytes ?? 0), CliOptions.Bytes(s.Live?.TxBytes ?? 0)]));
            return CliOptions.ReportDamaged(report.Damaged);
        });
        return cmd;
    }

    /// <summary>'status' on a registry of gateways: a line per gateway, then one row per client and gateway that serves it.</summary>
    private static int PrintGateways(Clients.GatewayStatusReport report, bool json)
    {
        var now = DateTimeOffset.UtcNow;
        if (json)
        {
            CliOptions.WriteJson(new StatusDto(report.Registry.Interface, report.Gateways.Any(g => g.Online), report.Clients.Count,
                report.Clients.Count(s => s.Client.Enabled), report.Clients.Count(s => s.Online))
            {
                Gateways = [.. report.Gateways.Select(GatewayDto.Of)],
                Clients = [.. report.Clients.Select(s => ClientDto.Of(s, now))],
            }, MkbVpnJson.Default.StatusDto);
            return 0;
        }
        foreach (var v in report.Gateways)
        {
            var g = v.Gateway;
            int online = report.Clients.Count(c => c.Gateways.Any(x => x.Gateway.Id == g.Id && x.Online));
            string state = v.Online ? $"online, last report {CliOptions.Ago(g.LastSeen, now)}"
                : g.LastSeen is null ? $"never seen (run 'mkb-vpn up --foreground --gateway {g.Name}' on its host)"
                : $"STALE: last report {CliOptions.Ago(g.LastSeen, now)}, more than {(int)Clients.ClientService.GatewayStaleAfter.TotalSeconds} s ago (its figures below are old)";
            Console.WriteLine($"{g.Name}: {state}{(g.Engine is null ? "" : $", engine {g.Engine}")}{(g.PeerCount is { } pc ? $", {pc} peers" : "")}, {online} of {v.Served} clients online");
        }
        var rows = new List<IReadOnlyList<string>>();
        foreach (var s in report.Clients)
        {
            string stateOf(Clients.GatewayPeerStatus? x) => s.Client.IsExpired(now) ? "expired" : !s.Client.Enabled ? "blocked"
                : x is null ? "offline" : x.Stale ? "stale" : x.Online ? "online" : "offline";
            if (s.Gateways.Count == 0)
                rows.Add([s.Client.Name, "-", s.Client.AddressText, stateOf(null), s.Client.LastEndpoint ?? "-", CliOptions.Ago(s.Client.LastHandshake, now), "-", "-"]);
            foreach (var x in s.Gateways)
                rows.Add([s.Client.Name, x.Gateway.Name, s.Client.AddressText, stateOf(x), x.Report?.Endpoint ?? "-",
                    CliOptions.Ago(x.Report?.LastHandshake, now), CliOptions.Bytes(x.Report?.RxBytes ?? 0), CliOptions.Bytes(x.Report?.TxBytes ?? 0)]);
        }
        CliOptions.Table(["NAME", "GATEWAY", "ADDRESS", "STATE", "ENDPOINT", "HANDSHAKE", "RX", "TX"], rows);
        return 0;
    }

    /// <summary>'status [NAME] --history': one line per interval (UTC), totals last; --json prints the API's shape.</summary>
    private static int PrintHistory(Clients.ClientService service, string? name, string? since, string? until, string? step, bool json)
    {
        var range = service.ParseTrafficRange(since, until, step, autoPoints: 60, fromField: "since", toField: "until");
        var h = service.TrafficOf(name, range);
        if (json)
        {
            CliOptions.WriteJson(h, MkbVpnJson.Default.TrafficHistory);
            return 0;
        }
        int stepMinutes = h.StepSeconds / 60;
        string Online(long minutes) => h.Client is not null
            ? (minutes == 0 ? "-" : minutes >= stepMinutes ? "online" : $"{minutes} min")
            : (minutes == 0 ? "-" : $"{(minutes + stepMinutes - 1) / stepMinutes} clients");
        string format = stepMinutes >= 1440 ? "yyyy-MM-dd" : "yyyy-MM-dd HH:mm";
        Console.WriteLine($"{h.Client ?? "all clients"}: traffic from {Access.When.Format(h.From)} to {Access.When.Format(h.To)}, per {(stepMinutes % 60 == 0 ? $"{stepMinutes / 60} h" : $"{stepMinutes} min")} (UTC; RX: received by the server, TX: sent)");
        var rows = h.Points.Select(pt => (IReadOnlyList<string>)[pt.At.UtcDateTime.ToString(format, System.Globalization.CultureInfo.InvariantCulture),
            CliOptions.Bytes(pt.RxBytes), CliOptions.Bytes(pt.TxBytes), Online(pt.OnlineMinutes)]).ToList();
        long online = h.Points.Sum(pt => pt.OnlineMinutes);
        rows.Add(["total", CliOptions.Bytes(h.RxBytes), CliOptions.Bytes(h.TxBytes),
            h.Client is null ? "-" : online == 0 ? "-" : $"{online / 60} h {online % 60} min"]);
        CliOptions.Table(["TIME", "RX", "TX", "ONLINE"], rows);
        if (h.Client is not null)
            Console.WriteLine($"last seen: {(h.LastHandshake is { } hs ? $"{Access.When.Format(hs)} ({CliOptions.Ago(hs, DateTimeOffset.UtcNow)})" : "never")}");
        return 0;
    }
}

internal static class ShowCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = "Client name" };
        var json = CliOptions.Json();
        var gateway = new Option<string?>("--gateway") { Description = "The config for this gateway (its key, endpoint and internal networks); default: its home gateway (the registry's server, unless that does not serve the client: then its first gateway by name)", HelpName = "GATEWAY" };
        var cmd = new Command("show", "Print a client's wg-quick config (contains its private key).\nExample: mkb-vpn show alice > alice.conf    |    mkb-vpn show alice --gateway berlin > alice-berlin.conf") { name, gateway, json };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            var (_, c) = service.Get(p.GetValue(name)!);
            string config = service.ConfigText(c.Name, p.GetValue(gateway));
            if (p.GetValue(json))
            {
                CliOptions.WriteJson(ClientDto.Of(c, DateTimeOffset.UtcNow) with { ConfigPath = service.Paths.ClientConfig(c.Name), Config = config }, MkbVpnJson.Default.ClientDto);
                return 0;
            }
            Console.Write(config);
            if (c.PrivateKey is null)
                Console.Error.WriteLine($"mkb-vpn: note: '{c.Name}' was {ClientConfig.PublicKeyOnlyNote}");
            if (p.GetValue(gateway) is null)
                HomeNote(service, c.Name);
            return 0;
        });
        return cmd;
    }

    /// <summary>On stderr, when the default config is not the registry server's: which gateway it is for.</summary>
    internal static void HomeNote(Clients.ClientService service, string name)
    {
        if (service.HomeGateway(name) is { } home)
            Console.Error.WriteLine($"mkb-vpn: note: the registry's server does not serve '{name}': this config is for gateway {home.Name} ({home.Endpoint}), " +
                $"the first of its gateways by name (another one's: 'mkb-vpn show {name} --gateway NAME')");
    }
}

internal static class QrCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = "Client name" };
        var png = new Option<string?>("--png") { Description = "Write a PNG file instead of printing", HelpName = "FILE" };
        var svg = new Option<string?>("--svg") { Description = "Write an SVG file instead of printing", HelpName = "FILE" };
        var json = CliOptions.Json();
        var cmd = new Command("qr", "Show a client's config as a QR code for the WireGuard app.\nExample: mkb-vpn qr alice    |    mkb-vpn qr alice --png alice.png") { name, png, svg, json };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            string config = service.QrConfigText(p.GetValue(name)!);
            if (p.GetValue(png) is { } file)
                File.WriteAllBytes(file, QrCodes.Png(config));
            if (p.GetValue(svg) is { } svgFile)
                File.WriteAllText(svgFile, QrCodes.Svg(config));
            if (p.GetValue(json))
                CliOptions.WriteJson(new QrDto(p.GetValue(name)!, Convert.ToBase64String(QrCodes.Png(config))), MkbVpnJson.Default.QrDto);
            else if (p.GetValue(png) is null && p.GetValue(svg) is null)
                Console.Write(QrCodes.Terminal(config));
            if (!p.GetValue(json))
                ShowCommand.HomeNote(service, p.GetValue(name)!);
            return 0;
        });
        return cmd;
    }
}
