using System.CommandLine;
using MkbVpn.Access;
using MkbVpn.Clients;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

/// <summary>'group add|remove|list'.</summary>
internal static class GroupCommand
{
    public static Command Create()
    {
        var cmd = new Command("group", "Groups of clients that access rules can name.\n" +
            "Example: mkb-vpn group add staff --description 'Office staff' && mkb-vpn set alice --group staff");

        var addName = new Argument<string>("NAME") { Description = "Group name (1-32 of a-z A-Z 0-9 _ . -)" };
        var description = new Option<string?>("--description") { Description = "What the group is for", HelpName = "TEXT" };
        var add = new Command("add", "Create a group.\nExample: mkb-vpn group add accounting --description 'Bookkeeping'") { addName, description };
        add.SetHandler(p =>
        {
            var g = CliOptions.Service(p).AddGroup(p.GetValue(addName)!, p.GetValue(description));
            Console.WriteLine($"Added group {g.Name}");
            return 0;
        });

        var removeName = new Argument<string>("NAME") { Description = "Group name" };
        var force = new Option<bool>("--force") { Description = "Also remove the access rules that name the group" };
        var remove = new Command("remove", "Remove a group (its members stay; refused while rules name it, unless --force).\nExample: mkb-vpn group remove contractors --force") { removeName, force };
        remove.Aliases.Add("rm");
        remove.SetHandler(p =>
        {
            var (g, rules) = CliOptions.Service(p).RemoveGroup(p.GetValue(removeName)!, p.GetValue(force));
            Console.WriteLine($"Removed group {g.Name} ({g.Members} member(s) left the group)");
            foreach (var r in rules)
                Console.WriteLine($"Removed rule #{r.Id}: {r}");
            return 0;
        });

        var json = CliOptions.Json();
        var list = new Command("list", "List groups with their members and rules.\nExample: mkb-vpn group list --json") { json };
        list.Aliases.Add("ls");
        list.SetHandler(p =>
        {
            var groups = CliOptions.Service(p).ListGroups();
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. groups.Select(GroupDto.Of)], MkbVpnJson.Default.GroupDtoArray);
                return 0;
            }
            CliOptions.Table(["NAME", "MEMBERS", "RULES", "DESCRIPTION"],
                groups.Select(g => (IReadOnlyList<string>)[g.Name, g.Members.ToString(System.Globalization.CultureInfo.InvariantCulture), g.Rules.ToString(System.Globalization.CultureInfo.InvariantCulture), g.Description]));
            return 0;
        });
        cmd.Subcommands.Add(add);
        cmd.Subcommands.Add(remove);
        cmd.Subcommands.Add(list);
        return cmd;
    }
}

/// <summary>'access allow|revoke|list|check'.</summary>
internal static class AccessCommand
{
    public static Command Create()
    {
        var cmd = new Command("access", "Who may reach which internal service. Rules only allow; a client reaches the union of the rules\n" +
            "that name it, its groups, or everyone. 'init' creates 'everyone -> internal' and 'everyone -> server';\n" +
            "revoke them to make the server least-privilege.\n" +
            "Example: mkb-vpn access allow group:accounting 198.51.100.20 --port 443 --proto tcp");

        var who = new Argument<string>("WHO") { Description = "everyone, group:NAME or client:NAME" };
        var to = new Argument<string>("TO") { Description = "An address or CIDR inside the internal networks, 'internal' (all of them) or 'server' (the server's tunnel address)" };
        var port = new Option<string?>("--port") { Description = "A port or a range (tcp and udp only)", HelpName = "N|N-M" };
        var proto = new Option<string?>("--proto") { Description = "tcp, udp, icmp or any (default any)", HelpName = "PROTO" };
        var allowJson = CliOptions.Json();
        var allow = new Command("allow", "Allow WHO to reach TO; live at once, nobody else's traffic is touched.\n" +
            "Example: mkb-vpn access allow client:carol 198.51.100.30 --port 443 --proto tcp") { who, to, port, proto, allowJson };
        allow.SetHandler(p =>
        {
            var r = CliOptions.Service(p).Allow(new AllowRequest(p.GetValue(who)!, p.GetValue(to)!) { Port = p.GetValue(port), Protocol = p.GetValue(proto) });
            if (p.GetValue(allowJson))
                CliOptions.WriteJson(new RuleResultDto(RuleDto.Of(r.Rule), r.Created), MkbVpnJson.Default.RuleResultDto);
            else
                Console.WriteLine(r.Created ? $"Added rule #{r.Rule.Id}: {r.Rule}" : $"Rule #{r.Rule.Id} already says this: {r.Rule} (nothing changed)");
            return 0;
        });

        var id = new Argument<long>("ID") { Description = "The rule's id (see 'mkb-vpn access list')" };
        var revoke = new Command("revoke", "Revoke a rule; live at once.\nExample: mkb-vpn access revoke 1") { id };
        revoke.SetHandler(p =>
        {
            var r = CliOptions.Service(p).Revoke(p.GetValue(id));
            Console.WriteLine($"Revoked rule #{r.Id}: {r}");
            return 0;
        });

        var listJson = CliOptions.Json();
        var list = new Command("list", "List the rules with their ids.\nExample: mkb-vpn access list --json") { listJson };
        list.Aliases.Add("ls");
        list.SetHandler(p =>
        {
            var rules = CliOptions.Service(p).ListRules();
            if (p.GetValue(listJson))
            {
                CliOptions.WriteJson([.. rules.Select(RuleDto.Of)], MkbVpnJson.Default.RuleDtoArray);
                return 0;
            }
            if (rules.Count == 0)
            {
                Console.WriteLine("No access rules: clients reach nothing behind the server (add one with 'mkb-vpn access allow')");
                return 0;
            }
            CliOptions.Table(["ID", "WHO", "TO", "SERVICE"],
                rules.Select(r => (IReadOnlyList<string>)[r.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Who, r.Target, r.ServiceText]));
            return 0;
        });

        var client = new Argument<string>("CLIENT") { Description = "Client name" };
        var dest = new Argument<string>("DEST") { Description = "ADDRESS[:PORT][/PROTO], e.g. 198.51.100.20:443/tcp, [fd00::20]:53/udp, 198.51.100.20/icmp" };
        var checkJson = CliOptions.Json();
        var check = new Command("check", "May CLIENT reach DEST? Answers allow or deny and names the rule(s) that decide.\n" +
            "Exit code 0 when allowed, 10 when denied (or only partly allowed).\n" +
            "Example: mkb-vpn access check bob 198.51.100.20:443/tcp") { client, dest, checkJson };
        check.SetHandler(p =>
        {
            var c = CliOptions.Service(p).Check(p.GetValue(client)!, p.GetValue(dest)!);
            var r = c.Result;
            if (p.GetValue(checkJson))
            {
                CliOptions.WriteJson(CheckDto.Of(c), MkbVpnJson.Default.CheckDto);
            }
            else
            {
                string what = $"{c.Client.Name} -> {c.Destination}{(c.Port is { } pt ? $":{pt}" : "")}{(c.Protocol is { } pr2 ? $"/{AccessRule.ProtocolName(pr2)}" : "")}";
                Console.WriteLine($"{r.Verdict.ToString().ToLowerInvariant()}: {what}");
                foreach (var rule in r.Deciding)
                    Console.WriteLine($"  by rule #{rule.Id}: {rule}");
                foreach (var rule in r.Partial)
                    Console.WriteLine($"  partly, rule #{rule.Id}: {rule}");
                if (r.Reason is not null)
                    Console.WriteLine($"  {r.Reason}");
            }
            return r.Verdict == Verdict.Allow ? 0 : ExitCodes.Denied;
        });

        cmd.Subcommands.Add(allow);
        cmd.Subcommands.Add(revoke);
        cmd.Subcommands.Add(list);
        cmd.Subcommands.Add(check);
        return cmd;
    }
}

/// <summary>'set NAME ...': edit a client in place.</summary>
internal static class SetCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = "Client name" };
        var group = new Option<string[]>("--group") { Description = "The client's groups (repeat; replaces its groups)", HelpName = "GROUP" };
        var noGroups = new Option<bool>("--no-groups") { Description = "Take the client out of every group" };
        var expires = new Option<string?>("--expires") { Description = "When the client stops working: 2026-12-31 (through that day), 2026-12-31T18:00Z, 14d, 12h, or never", HelpName = "WHEN" };
        var dns = new Option<string[]>("--dns") { Description = "DNS server(s) in its config, 'none', or 'default' (the server's)", HelpName = "IP" };
        var allowed = new Option<string[]>("--allowed-ips") { Description = "AllowedIPs in its config, or 'default' (what the server and its rules give)", HelpName = "CIDR" };
        var keepalive = new Option<string?>("--keepalive") { Description = "PersistentKeepalive in its config (seconds, 0 = off) or 'default'", HelpName = "SECONDS" };
        var rename = new Option<string?>("--rename") { Description = "A new name (keys, address and config stay the same)", HelpName = "NEW" };
        var gateway = new Option<string[]>("--gateway") { Description = "The gateways that serve the client (repeat or comma list; replaces its list), or 'all'", HelpName = "GATEWAY" };
        var json = CliOptions.Json();
        var cmd = new Command("set", "Edit a client in place: groups, expiry, DNS, AllowedIPs, keepalive, name. Keys and address stay;\n" +
            "the firewall follows at once, and the config file is rewritten when its text changes.\n" +
            "Example: mkb-vpn set carol --group contractors --expires 14d    |    mkb-vpn set bob --rename robert")
        {
            name, group, noGroups, expires, dns, allowed, keepalive, rename, gateway, json,
        };
        cmd.SetHandler(p =>
        {
            var groups = p.GetValue(group) is { Length: > 0 } g ? g.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList() : null;
            if (p.GetValue(noGroups))
            {
                if (groups is not null)
                    throw new UserInputException("--group and --no-groups contradict each other");
                groups = [];
            }
            var request = new SetRequest(p.GetValue(name)!)
            {
                Groups = groups,
                Expires = p.GetValue(expires),
                Dns = p.GetValue(dns) is { Length: > 0 } d ? d : null,
                AllowedIps = p.GetValue(allowed) is { Length: > 0 } a ? a : null,
                Keepalive = p.GetValue(keepalive),
                Rename = p.GetValue(rename),
                Gateways = p.GetValue(gateway) is { Length: > 0 } gw ? gw : null,
            };
            if (request is { Groups: null, Expires: null, Dns: null, AllowedIps: null, Keepalive: null, Rename: null, Gateways: null })
                throw new UserInputException("set: nothing to change; give at least one option (see 'mkb-vpn set --help')");
            var service = CliOptions.Service(p);
            var c = service.Set(request);
            var now = DateTimeOffset.UtcNow;
            if (p.GetValue(json))
            {
                CliOptions.WriteJson(ClientDto.Of(c, now), MkbVpnJson.Default.ClientDto);
                return 0;
            }
            Console.WriteLine($"Updated {c.Name}: state {c.StateAt(now)}, groups {(c.Groups.Count == 0 ? "none" : string.Join(",", c.Groups))}, expires {(c.ExpiresAt is { } e ? Access.When.Format(e) : "never")}");
            if (!c.Enabled)
                Console.WriteLine($"Note: {c.Name} is blocked; run 'mkb-vpn reenable {c.Name}' to let it connect again");
            return 0;
        });
        return cmd;
    }
}

/// <summary>'log': the audit log.</summary>
internal static class LogCommand
{
    public static Command Create()
    {
        var client = new Option<string?>("--client") { Description = "Only entries about this client", HelpName = "NAME" };
        var since = new Option<string?>("--since") { Description = "Only entries from then on: 2026-11-01, 2026-11-01T08:00Z, 24h, 7d", HelpName = "WHEN" };
        var limit = new Option<int>("--limit") { Description = "At most this many entries, newest first (default 100)", HelpName = "N", DefaultValueFactory = _ => 100 };
        var json = CliOptions.Json();
        var cmd = new Command("log", "The audit log: every change, when, who, through what, and the outcome. Newest first.\n" +
            "Example: mkb-vpn log --client carol --since 7d") { client, since, limit, json };
        cmd.SetHandler(p =>
        {
            var (items, total) = CliOptions.Service(p).AuditLog(p.GetValue(client), p.GetValue(since), 0, p.GetValue(limit));
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. items.Select(AuditDto.Of)], MkbVpnJson.Default.AuditDtoArray);
                return 0;
            }
            CliOptions.Table(["WHEN", "WHO", "VIA", "ACTION", "TARGET", "OUTCOME", "DETAIL"],
                items.Select(e => (IReadOnlyList<string>)[When.Format(e.At), e.Actor, e.Via, e.Action, e.Target ?? "-", e.Outcome, e.Detail ?? ""]));
            if (total > items.Count)
                Console.WriteLine($"({items.Count} of {total} entries; --limit for more)");
            return 0;
        });
        return cmd;
    }
}
