using System.CommandLine;
using MkbVpn.Admin;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

/// <summary>mkb-vpn token add|list|revoke: API tokens for automation (Authorization: Bearer TOKEN).</summary>
internal static class TokenCommand
{
    public static Command Create()
    {
        var cmd = new Command("token", "Manage API tokens for automation: 'Authorization: Bearer TOKEN' on /api/v1.\nExample: mkb-vpn token add backup-script");
        cmd.Subcommands.Add(Add());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Revoke());
        return cmd;
    }

    private static Argument<string> Name() => new("NAME") { Description = "Token name (letters, digits, _ . - @)" };

    private static Command Add()
    {
        var name = Name();
        var json = CliOptions.Json();
        var cmd = new Command("add", "Create a token and print it once: only a hash of it is kept, so store it now.\n" +
            "Example: TOKEN=$(mkb-vpn token add ci)") { name, json };
        cmd.SetHandler(p =>
        {
            string token = AdminCommand.Service(p).AddToken(p.GetValue(name)!);
            if (p.GetValue(json))
                CliOptions.WriteJson(new NewTokenDto(p.GetValue(name)!, token), MkbVpnJson.Default.NewTokenDto);
            else
            {
                Console.Out.WriteLine(token);
                if (!Console.IsOutputRedirected)
                    Console.Error.WriteLine("This token is shown only now: store it safely (it cannot be shown again).");
            }
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var json = CliOptions.Json();
        var cmd = new Command("list", "List tokens (names and dates; never the tokens).\nExample: mkb-vpn token list") { json };
        cmd.Aliases.Add("ls");
        cmd.SetHandler(p =>
        {
            var tokens = AdminCommand.Service(p).ListTokens();
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. tokens.Select(t => new TokenDto(t.Name, t.CreatedAt, t.LastUsedAt))], MkbVpnJson.Default.TokenDtoArray);
                return 0;
            }
            var now = DateTimeOffset.UtcNow;
            CliOptions.Table(["NAME", "CREATED", "LAST USED"], tokens.Select(t => (IReadOnlyList<string>)[t.Name,
                t.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture), CliOptions.Ago(t.LastUsedAt, now)]));
            return 0;
        });
        return cmd;
    }

    private static Command Revoke()
    {
        var name = Name();
        var cmd = new Command("revoke", "Revoke a token: requests with it are refused at once.\nExample: mkb-vpn token revoke ci") { name };
        cmd.SetHandler(p =>
        {
            AdminCommand.Service(p).RevokeToken(p.GetValue(name)!);
            Console.WriteLine($"Revoked token {p.GetValue(name)}");
            return 0;
        });
        return cmd;
    }
}
