using MkbVpn.Json;
using System.CommandLine;
using MkbVpn.Clients;
using MkbVpn.Storage;

namespace MkbVpn.Cli.Commands;

/// <summary>mkb-vpn migrate-store --to postgresql://...: the SQLite store moved into an empty PostgreSQL database, all or nothing.</summary>
internal static class MigrateStoreCommand
{
    public static Command Create()
    {
        var to = new Option<string>("--to")
        {
            Description = "The empty PostgreSQL database: postgresql://USER@HOST[:PORT]/DATABASE[?passfile=FILE&sslmode=verify-full] or key=value words; never a password (passfile, ~/.pgpass or $PGPASSWORD)",
            HelpName = "LOCATION",
            Required = true,
        };
        var json = CliOptions.Json();
        var cmd = new Command("migrate-store", "Move this server's store (settings, keys, clients, groups, rules, admins, tokens, sessions, audit log) from its SQLite file into an empty PostgreSQL database, in one transaction.\n" +
            "The SQLite file is kept and refuses further use; then set MKB_VPN_STORE for every mkb-vpn command and the services. A database that is not empty is refused (exit 4).\n" +
            "Example: mkb-vpn migrate-store --to 'postgresql://mkbvpn@db.example.com/mkbvpn?passfile=/etc/mkb-vpn/pgpass'")
        {
            to, json,
        };
        cmd.SetHandler(p =>
        {
            var paths = new Paths(p.GetValue(CliOptions.DataDir));
            string target = p.GetValue(to)!;
            var r = StoreMove.Run(paths, target, FileLock.Instance, ClientService.LockTimeout);
            if (p.GetValue(json))
            {
                CliOptions.WriteJson(new MigrateStoreDto(r.From, r.To, r.Rows.Rows, target), MkbVpnJson.Default.MigrateStoreDto);
                return 0;
            }
            Console.WriteLine($"Moved the store of {r.From} into {r.To}: {r.Rows["clients"]} clients, {r.Rows["groups"]} groups, {r.Rows["access_rules"]} access rules, " +
                $"{r.Rows["admins"]} admins, {r.Rows["api_tokens"]} API tokens, {r.Rows["sessions"]} sessions, {r.Rows["audit_log"]} audit entries.");
            Console.WriteLine($"The SQLite file {paths.Database} is kept as it was (a backup) and refuses further use.");
            Console.WriteLine("Now point every mkb-vpn command and service at PostgreSQL:");
            Console.WriteLine($"  shell:   export {StoreLocation.Variable}='{target}'");
            Console.WriteLine($"  systemd: systemctl edit mkb-vpn (and mkb-vpn-web), add  [Service]  Environment=\"{StoreLocation.Variable}={target}\"");
            Console.WriteLine("           then: systemctl restart mkb-vpn mkb-vpn-web");
            return 0;
        });
        return cmd;
    }
}
