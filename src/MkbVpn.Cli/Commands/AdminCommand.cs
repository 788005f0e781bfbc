using System.CommandLine;
using System.Text;
using MkbVpn.Admin;
using MkbVpn.Configs;
using MkbVpn.Json;

namespace MkbVpn.Cli.Commands;

/// <summary>mkb-vpn admin add|list|remove|passwd|totp: the people who may log in to the web page.</summary>
internal static class AdminCommand
{
    public static AdminService Service(ParseResult p) => new(CliOptions.PathsOf(p));

    public static Command Create()
    {
        var cmd = new Command("admin", "Manage the admins of the web page (see 'mkb-vpn serve').\nExample: mkb-vpn admin add alice");
        cmd.Subcommands.Add(Add());
        cmd.Subcommands.Add(Passwd());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Remove());
        cmd.Subcommands.Add(TotpCommand());
        return cmd;
    }

    private static Argument<string> Name() => new("NAME") { Description = "Admin name (letters, digits, _ . - @)" };

    private static Option<bool> PasswordStdin() => new("--password-stdin") { Description = "Read the password from the first line of standard input instead of asking" };

    private static Command Add()
    {
        var name = Name();
        var stdin = PasswordStdin();
        var cmd = new Command("add", $"Add an admin; the password (at least {Passwords.MinLength} characters) is asked twice, or read with --password-stdin.\n" +
            "Example: mkb-vpn admin add alice    |    printf '%s\\n' \"$PW\" | mkb-vpn admin add alice --password-stdin") { name, stdin };
        cmd.SetHandler(p =>
        {
            var admins = Service(p);
            string password = ReadNewPassword(p.GetValue(stdin));
            admins.AddAdmin(p.GetValue(name)!, password);
            Console.WriteLine($"Added admin {p.GetValue(name)}; log in with 'mkb-vpn serve' running");
            return 0;
        });
        return cmd;
    }

    private static Command Passwd()
    {
        var name = Name();
        var stdin = PasswordStdin();
        var cmd = new Command("passwd", "Set an admin's password.\nExample: mkb-vpn admin passwd alice") { name, stdin };
        cmd.SetHandler(p =>
        {
            Service(p).SetPassword(p.GetValue(name)!, ReadNewPassword(p.GetValue(stdin)));
            Console.WriteLine($"Password of {p.GetValue(name)} changed");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var json = CliOptions.Json();
        var cmd = new Command("list", "List admins.\nExample: mkb-vpn admin list") { json };
        cmd.Aliases.Add("ls");
        cmd.SetHandler(p =>
        {
            var admins = Service(p).ListAdmins();
            if (p.GetValue(json))
            {
                CliOptions.WriteJson([.. admins.Select(a => new AdminDto(a.Name, a.HasTotp, a.CreatedAt))], MkbVpnJson.Default.AdminDtoArray);
                return 0;
            }
            CliOptions.Table(["NAME", "TOTP", "CREATED"], admins.Select(a => (IReadOnlyList<string>)[a.Name, a.HasTotp ? "on" : "off",
                a.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture)]));
            return 0;
        });
        return cmd;
    }

    private static Command Remove()
    {
        var name = Name();
        var cmd = new Command("remove", "Remove an admin (their sessions end at once).\nExample: mkb-vpn admin remove alice") { name };
        cmd.Aliases.Add("rm");
        cmd.SetHandler(p =>
        {
            Service(p).RemoveAdmin(p.GetValue(name)!);
            Console.WriteLine($"Removed admin {p.GetValue(name)}");
            return 0;
        });
        return cmd;
    }

    private static Command TotpCommand()
    {
        var name = Name();
        var disable = new Option<bool>("--disable") { Description = "Turn the second factor off" };
        var cmd = new Command("totp", "Turn on a second factor (TOTP, any authenticator app) for an admin: scan the QR code, then type a code.\n" +
            "API tokens keep working.\nExample: mkb-vpn admin totp alice    |    mkb-vpn admin totp alice --disable") { name, disable };
        cmd.SetHandler(p =>
        {
            var admins = Service(p);
            string admin = p.GetValue(name)!;
            if (p.GetValue(disable))
            {
                admins.DisableTotp(admin);
                Console.WriteLine($"Second factor of {admin} turned off");
                return 0;
            }
            if (admins.ListAdmins().All(a => !a.Name.Equals(admin, StringComparison.OrdinalIgnoreCase)))
                throw new UserInputException($"no admin named '{admin}'", ExitCodes.NotFound);
            string secret = Totp.NewSecret();
            string uri = Totp.Uri(secret, admin);
            Console.WriteLine("Scan with an authenticator app, or enter the secret by hand:");
            Console.Write(QrCodes.Terminal(uri));
            Console.WriteLine($"secret: {secret}");
            Console.Write("Code shown by the app: ");
            string? code = Console.ReadLine();
            admins.EnableTotp(admin, secret, code?.Trim() ?? "");
            Console.WriteLine($"Second factor of {admin} turned on");
            return 0;
        });
        return cmd;
    }

    /// <summary>Reads a password: the first line of stdin, or asked twice without echo on a terminal.</summary>
    private static string ReadNewPassword(bool fromStdin)
    {
        if (fromStdin)
        {
            string? line = Console.In.ReadLine();
            if (string.IsNullOrEmpty(line))
                throw new UserInputException("--password-stdin: standard input gave no password");
            return line;
        }
        if (Console.IsInputRedirected)
            throw new UserInputException("no terminal to ask the password on: pass --password-stdin and pipe it in");
        string first = Ask("Password: ");
        if (Passwords.Validate(first) is { } reason)
            throw new UserInputException(reason);
        string second = Ask("Password again: ");
        if (first != second)
            throw new UserInputException("the two passwords differ");
        return first;
    }

    private static string Ask(string prompt)
    {
        Console.Error.Write(prompt);
        var sb = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
                break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0)
                    sb.Length--;
                continue;
            }
            if (!char.IsControl(key.KeyChar))
                sb.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return sb.ToString();
    }
}
