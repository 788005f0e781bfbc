using System.Globalization;
using System.Net;

namespace MkbVpn.Configs.Importers;

/// <summary>
/// A PiVPN (WireGuard) installation, as its scripts write it (auto_install/install.sh,
/// scripts/wireguard/makeCONF.sh, disableCONF.sh):
///   /etc/wireguard/wg0.conf                 the server; each client between "### begin NAME ###" and
///                                           "### end NAME ###"; a disabled client's lines start with "#[disabled] "
///   /etc/wireguard/keys/NAME_priv, _pub, _psk and server_priv, server_pub
///   /etc/wireguard/configs/NAME.conf        each client's own config (private key, DNS, AllowedIPs, endpoint)
///   /etc/wireguard/configs/clients.txt      "NAME PUBKEY UNIXTIME IPDEC" per client (creation time)
///   /etc/pivpn/wireguard/setupVars.conf     pivpnHOST, pivpnPORT, pivpnDNS1/2, pivpnNET/subnetClass,
///                                           pivpnNETv6/subnetClassv6, pivpnMTU, ALLOWED_IPS, pivpnPERSISTENTKEEPALIVE
/// </summary>
public static class PiVpnReader
{
    public const string DefaultDir = "/etc/wireguard";
    public const string DefaultSetupVars = "/etc/pivpn/wireguard/setupVars.conf";

    /// <summary>Reads DIR (the WireGuard folder); setupVars.conf from DIR, DIR/../pivpn/wireguard, or /etc/pivpn/wireguard.</summary>
    public static ImportSource Read(string? dir)
    {
        dir ??= DefaultDir;
        var src = new ImportSource("pivpn");
        string? varsFile = new[]
        {
            Path.Combine(dir, "setupVars.conf"),
            Path.GetFullPath(Path.Combine(dir, "..", "pivpn", "wireguard", "setupVars.conf")),
            DefaultSetupVars,
        }.FirstOrDefault(File.Exists);
        var vars = varsFile is null ? [] : ReadVars(varsFile, src);
        if (varsFile is null)
            src.Problems.Add($"{dir}: no PiVPN setupVars.conf found here, in ../pivpn/wireguard or {DefaultSetupVars}");
        string iface = vars.TryGetValue("pivpnDEV", out var dev) && dev.Value.Length > 0 ? dev.Value : "wg0";
        string serverConf = Path.Combine(dir, iface + ".conf");
        string configs = Path.Combine(dir, "configs");
        WgQuickServerReader.Read(src, serverConf, null);
        if (src.Server is null)
            return src;

        // setupVars first, so the client files fill in only what it lacks.
        string V(string key) => vars.TryGetValue(key, out var v) ? v.Value : "";
        string At(string key) => vars.TryGetValue(key, out var v) ? $"{varsFile}:{v.Line}" : varsFile ?? dir;
        var server = src.Server;
        int? port = src.Number(V("pivpnPORT"), At("pivpnPORT"), "pivpnPORT", 1, 65535);
        var dns = new[] { V("pivpnDNS1"), V("pivpnDNS2") }.Where(d => d.Length > 0).ToList();
        foreach (var d in dns)
            if (!IPAddress.TryParse(d, out _))
                src.Problems.Add($"{At(d == V("pivpnDNS1") ? "pivpnDNS1" : "pivpnDNS2")}: DNS '{UserInputException.Shown(d)}' is not an address");
        List<IPNetwork>? allowed = null;
        if (V("ALLOWED_IPS").Length > 0)
        {
            allowed = [];
            foreach (var a in V("ALLOWED_IPS").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                if (src.Network(a, At("ALLOWED_IPS"), "ALLOWED_IPS entry") is { } n)
                    allowed.Add(n);
        }
        server = server with
        {
            ListenPort = server.ListenPort ?? port,
            EndpointHost = V("pivpnHOST") is { Length: > 0 } host ? host : null,
            EndpointPort = port,
            Dns = dns,
            Mtu = server.Mtu ?? src.Number(V("pivpnMTU"), At("pivpnMTU"), "pivpnMTU", 1280, 9000),
            Keepalive = src.Number(V("pivpnPERSISTENTKEEPALIVE"), At("pivpnPERSISTENTKEEPALIVE"), "pivpnPERSISTENTKEEPALIVE", 0, 65535),
            ClientAllowedIps = allowed,
        };
        if (V("pivpnNET").Length > 0 && V("subnetClass").Length > 0)
            server = server with { Subnet4 = src.Network($"{V("pivpnNET")}/{V("subnetClass")}", At("pivpnNET"), "pivpnNET/subnetClass") ?? server.Subnet4 };
        if (V("pivpnenableipv6") == "1" && V("pivpnNETv6").Length > 0 && V("subnetClassv6").Length > 0)
            server = server with { Subnet6 = src.Network($"{V("pivpnNETv6")}/{V("subnetClassv6")}", At("pivpnNETv6"), "pivpnNETv6/subnetClassv6") ?? server.Subnet6 };
        var pub = Path.Combine(dir, "keys", "server_pub");
        if (File.Exists(pub))
            server = server with { PublicKey = src.Key(File.ReadAllText(pub).Trim(), pub, "server public key") };
        src.Server = server;

        // Each client's own config (configs/NAME.conf), then its key files, then clients.txt.
        if (Directory.Exists(configs))
            WgQuickServerReader.MatchClientFiles(src, configs, iface);
        var created = ReadClientsTxt(Path.Combine(configs, "clients.txt"), src);
        for (int i = 0; i < src.Clients.Count; i++)
        {
            var c = src.Clients[i];
            if (c.Name is { } name)
            {
                string privFile = Path.Combine(dir, "keys", name + "_priv");
                if (c.PrivateKey is null && IsPlainName(name) && File.Exists(privFile))
                    c = c with { PrivateKey = src.Key(File.ReadAllText(privFile).Trim(), privFile, "private key") };
                if (created.TryGetValue(name, out var t))
                    c = c with { CreatedAt = t };
            }
            src.Clients[i] = c;
        }
        return src;
    }

    private static bool IsPlainName(string name) => !name.Contains('/') && !name.Contains("..", StringComparison.Ordinal);

    /// <summary>setupVars.conf: KEY=VALUE lines, values optionally in double quotes.</summary>
    internal static Dictionary<string, (string Value, int Line)> ReadVars(string file, ImportSource src)
    {
        var vars = new Dictionary<string, (string, int)>(StringComparer.Ordinal);
        string? text = WgQuickServerReader.ReadText(file, src);
        if (text is null)
            return vars;
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            int eq = line.IndexOf('=');
            if (eq <= 0)
                continue;
            var value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && (value[0] == '"' && value[^1] == '"' || value[0] == '\'' && value[^1] == '\''))
                value = value[1..^1];
            vars[line[..eq].Trim()] = (value, lineNo);
        }
        return vars;
    }

    private static Dictionary<string, DateTimeOffset> ReadClientsTxt(string file, ImportSource src)
    {
        var result = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        if (!File.Exists(file))
            return result;
        string? text = WgQuickServerReader.ReadText(file, src);
        foreach (var line in (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && long.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out long unix))
                result[f[0]] = DateTimeOffset.FromUnixTimeSeconds(unix);
        }
        return result;
    }
}
