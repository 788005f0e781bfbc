using System.CommandLine;
using MkbVpn.Json;
using MkbVpn.Storage;

namespace MkbVpn.Cli.Commands;

internal static class BackupCommand
{
    public static Command Create()
    {
        var target = new Argument<string>("FILE") { Description = "The backup file to write (with --keep: a folder for dated backups)" };
        var passphrase = new Option<string?>("--passphrase-file") { Description = "Encrypt with the passphrase in this file's first line (Argon2id + XChaCha20-Poly1305)", HelpName = "FILE" };
        var keep = new Option<int?>("--keep") { Description = "FILE is a folder: write mkb-vpn-DATE-TIME.mkbbak there and keep only the newest N (for a timer or cron)", HelpName = "N" };
        var json = CliOptions.Json();
        var cmd = new Command("backup", "Write everything (settings, keys, clients, groups, rules, audit log, admins, tokens) to one file (0600), consistent while the server runs.\n" +
            "Example: mkb-vpn backup /root/mkb-vpn.mkbbak    |    mkb-vpn backup --keep 14 /var/backups/mkb-vpn --passphrase-file /root/.mkb-vpn-pass")
        {
            target, passphrase, keep, json,
        };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            string? pass = p.GetValue(passphrase) is { } f ? BackupFile.ReadPassphrase(f) : null;
            var result = p.GetValue(keep) is { } n
                ? service.BackupRotate(p.GetValue(target)!, n, pass)
                : service.Backup(p.GetValue(target)!, pass);
            if (p.GetValue(json))
            {
                CliOptions.WriteJson(BackupDto.Of(result), MkbVpnJson.Default.BackupDto);
                return 0;
            }
            Console.WriteLine($"Backup written to {result.Path} ({CliOptions.Bytes(result.Bytes)}{(result.Encrypted ? ", encrypted" : "")})");
            foreach (var r in result.Removed)
                Console.WriteLine($"Removed old backup {r}");
            return 0;
        });
        return cmd;
    }
}

internal static class RestoreCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "A file written by 'mkb-vpn backup'" };
        var passphrase = new Option<string?>("--passphrase-file") { Description = "The passphrase of an encrypted backup (first line of this file)", HelpName = "FILE" };
        var force = new Option<bool>("--force") { Description = "Replace the server already initialised in the data directory" };
        var cmd = new Command("restore", "Restore a backup into the data directory (checked in full first; an initialised server only with --force), then run 'mkb-vpn up'.\n" +
            "Example: mkb-vpn restore /root/mkb-vpn.mkbbak && mkb-vpn up")
        {
            file, passphrase, force,
        };
        cmd.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            string? pass = p.GetValue(passphrase) is { } f ? BackupFile.ReadPassphrase(f) : null;
            var r = service.Restore(p.GetValue(file)!, pass, p.GetValue(force));
            Console.WriteLine($"Restored {r.Clients} clients and the server's settings from a backup of {r.Created.UtcDateTime:yyyy-MM-dd HH:mm} UTC into {service.Paths.DataDir}");
            Console.WriteLine(r.Registry ? "The gateways following the registry apply it now ('mkb-vpn gateway list' shows them)"
                : r.Live ? "Next: 'mkb-vpn up' applies the restored clients to the running interface" : "Next: mkb-vpn up");
            return 0;
        });
        return cmd;
    }
}

internal static class ExportCommand
{
    public static Command Create()
    {
        var clients = new Option<string?>("--clients") { Description = "Also write every client's config (0600) into this folder", HelpName = "DIR" };
        var wgQuick = new Command("wg-quick", "Print the server as a plain wg-quick config (wg0.conf, with its private key); blocked clients commented out.\n" +
            "Example: mkb-vpn export wg-quick > /etc/wireguard/wg0.conf    |    mkb-vpn export wg-quick --clients ./clients > wg0.conf")
        {
            clients,
        };
        wgQuick.SetHandler(p =>
        {
            var service = CliOptions.Service(p);
            Console.Write(service.ExportWgQuick());
            if (p.GetValue(clients) is { } dir)
            {
                var (written, skipped) = service.ExportClients(dir);
                Console.Error.WriteLine($"mkb-vpn: wrote {written.Count} client configs to {dir}");
                foreach (var s in skipped)
                    Console.Error.WriteLine($"mkb-vpn: note: '{s}' has no private key here (imported public key only): no config written");
            }
            return 0;
        });
        return new Command("export", "Export the server and its clients in another format (nobody is locked in).") { wgQuick };
    }
}
