using System.CommandLine;

namespace MkbVpn.Cli.Commands;

internal static class RemoveCommand
{
    public static Command Create()
    {
        var names = CliOptions.Names("remove");
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation" };
        var cmd = new Command("remove", "Revoke client(s) for good: off the live interface at once, keys and config deleted.\n" +
            "Example: mkb-vpn remove alice --yes") { names, yes };
        cmd.Aliases.Add("rm");
        cmd.SetHandler(p =>
        {
            var list = p.GetValue(names)!;
            var service = CliOptions.Service(p);
            if (!p.GetValue(yes))
            {
                foreach (var n in list)
                    service.Get(n);   // unknown names fail before the question
                if (Console.IsInputRedirected)
                    throw new UserInputException("remove: confirmation needed; pass --yes to remove without asking");
                Console.Write($"Remove {string.Join(", ", list)} for good? Keys and config files are deleted. [y/N] ");
                var answer = Console.ReadLine()?.Trim();
                if (!string.Equals(answer, "y", StringComparison.OrdinalIgnoreCase) && !string.Equals(answer, "yes", StringComparison.OrdinalIgnoreCase))
                {
                    Console.Error.WriteLine("mkb-vpn: nothing removed");
                    return ExitCodes.UserError;
                }
            }
            var result = service.Remove(list);
            foreach (var c in result.Clients)
                Console.WriteLine($"Removed {c.Name} ({c.AddressText})");
            return 0;
        });
        return cmd;
    }
}

internal static class BlockCommand
{
    public static Command Create(bool blocking)
    {
        string verb = blocking ? "block" : "reenable";
        var names = CliOptions.Names(verb);
        var cmd = blocking
            ? new Command("block", "Block client(s) for now: off the live interface at once; keys, address and config are kept.\nExample: mkb-vpn block alice") { names }
            : new Command("reenable", "Re-enable blocked client(s) with the same keys and address; their old config works again.\nExample: mkb-vpn reenable alice") { names };
        if (!blocking)
            cmd.Aliases.Add("enable");
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            var list = p.GetValue(names)!;
            var result = blocking ? service.Block(list) : service.Reenable(list);
            foreach (var c in result.Clients)
                Console.WriteLine($"{(blocking ? "Blocked" : "Re-enabled")} {c.Name} ({c.AddressText})");
            foreach (var n in result.Unchanged)
                Console.WriteLine($"{n} is already {(blocking ? "blocked" : "enabled")}");
            return 0;
        });
        return cmd;
    }
}
