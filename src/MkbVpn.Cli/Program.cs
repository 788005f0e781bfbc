using System.CommandLine;
using MkbVpn;
using MkbVpn.Cli;
using MkbVpn.Cli.Commands;

Sys.RestrictUmask();

var root = new RootCommand("mkb-vpn: the WireGuard VPN server of the mkb-stack.\n" +
    "Quick start: mkb-vpn init --endpoint vpn.example.com && mkb-vpn up && mkb-vpn add alice");
root.Options.Add(CliOptions.DataDir);
root.Options.Add(CliOptions.Store);
foreach (var command in new[]
{
    InitCommand.Create(), UpCommand.Create(), DownCommand.Create(),
    AddCommand.Create(), RemoveCommand.Create(), BlockCommand.Create(blocking: true), BlockCommand.Create(blocking: false),
    SetCommand.Create(), ListCommand.Create(), StatusCommand.Create(), ShowCommand.Create(), QrCommand.Create(),
    GroupCommand.Create(), AccessCommand.Create(), LogCommand.Create(),
    AdminCommand.Create(), TokenCommand.Create(), ServeCommand.Create(), EngineCommand.Create(),
    ImportCommand.Create(), ExportCommand.Create(), BackupCommand.Create(), RestoreCommand.Create(),
    MigrateStoreCommand.Create(), GatewayCommand.Create(),
})
{
    root.Subcommands.Add(command);
}

if (args.Length == 0)
{
    root.Parse(["--help"]).Invoke();
    return ExitCodes.UserError;
}
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
{
    // The most specific error first: an unknown word says more than "command missing".
    var error = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
    string message = System.Text.RegularExpressions.Regex.Replace(error.Message, @" as expected type '[^']*(Int32|Int64)[^']*'", ": expected a whole number");
    Console.Error.WriteLine($"mkb-vpn: error: {message} (see 'mkb-vpn {string.Join(' ', CliOptions.CommandPath(parsed))} --help')".Replace("  ", " "));
    return ExitCodes.UserError;
}
return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
