using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Configs.Importers;

/// <summary>
/// A wg-quick server config (wg0.conf) read line by line, keeping line numbers and the comment
/// markers other tools put around peers:
///   PiVPN:   "### begin NAME ###" ... "### end NAME ###"; a disabled client has every line of its
///            block prefixed with "#[disabled] " (scripts/wireguard/disableCONF.sh).
///   angristan/wireguard-install: "### Client NAME" before the [Peer]; no disabled state.
///   wg-easy v14/v15: "# Client: NAME (ID)" before the [Peer]; disabled clients are left out.
///   by hand: a [Peer] commented out line by line ("#[Peer]", "#PublicKey = ...") is a disabled peer.
/// Client configs in a folder are matched to peers by the public key of their PrivateKey.
/// </summary>
public static partial class WgQuickServerReader
{
    internal sealed class Block(string section, int line)
    {
        public string Section { get; } = section;
        public int Line { get; } = line;
        public string? Name { get; set; }
        public string? DisabledBy { get; set; }
        public List<(int Line, string Key, string Value)> Entries { get; } = [];

        public (int Line, string Value)? Get(string key) =>
            Entries.Where(e => e.Key.Equals(key, StringComparison.OrdinalIgnoreCase)).Select(e => ((int, string)?)(e.Line, e.Value)).FirstOrDefault();

        public IEnumerable<string> All(string key) =>
            Entries.Where(e => e.Key.Equals(key, StringComparison.OrdinalIgnoreCase))
                   .SelectMany(e => e.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [GeneratedRegex(@"^###\s*begin\s+(\S+)\s*###\s*$")]
    private static partial Regex PiVpnBegin();
    [GeneratedRegex(@"^###\s*Client\s+(\S.*?)\s*$")]
    private static partial Regex AngristanClient();
    [GeneratedRegex(@"^#\s*Client:\s*(.+?)\s*\(([^()]*)\)\s*$")]
    private static partial Regex WgEasyClient();
    [GeneratedRegex(@"^###\s*end\s+\S+\s*###\s*$")]
    private static partial Regex PiVpnEnd();
    [GeneratedRegex(@"^#\s*\[\s*Peer\s*\]\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex CommentedPeer();

    private const string PiVpnDisabled = "#[disabled]";

    /// <summary>Splits the text into [Interface] and [Peer] blocks; problems go to <paramref name="src"/> as FILE:LINE.</summary>
    internal static List<Block> Scan(string text, string file, ImportSource src)
    {
        var blocks = new List<Block>();
        Block? current = null;
        bool inCommented = false;     // inside a peer commented out by hand
        string? pendingName = null;
        int lineNo = 0;
        foreach (string raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            lineNo++;
            string line = raw.Trim();
            string? disabledBy = null;
            if (line.StartsWith(PiVpnDisabled, StringComparison.Ordinal))
            {
                line = line[PiVpnDisabled.Length..].Trim();
                disabledBy = "disabled in PiVPN (#[disabled])";
            }
            if (line.Length == 0)
            {
                inCommented = false;
                continue;
            }
            if (line.StartsWith('#'))
            {
                Match m;
                if ((m = PiVpnBegin().Match(line)).Success || (m = AngristanClient().Match(line)).Success || (m = WgEasyClient().Match(line)).Success)
                {
                    pendingName = m.Groups[1].Value;
                    inCommented = false;
                    continue;
                }
                if (PiVpnEnd().IsMatch(line))
                {
                    pendingName = null;   // a marker never names a later peer
                    inCommented = false;
                    continue;
                }
                if (CommentedPeer().IsMatch(line))
                {
                    current = new Block("Peer", lineNo) { Name = pendingName, DisabledBy = "commented out in the server config" };
                    pendingName = null;
                    blocks.Add(current);
                    inCommented = true;
                    continue;
                }
                if (inCommented && current is not null)
                {
                    string body = line.TrimStart('#').Trim();
                    int eq = body.IndexOf('=');
                    if (eq > 0)
                    {
                        string value = body[(eq + 1)..];
                        int hash = value.IndexOf('#');
                        current.Entries.Add((lineNo, body[..eq].Trim(), (hash >= 0 ? value[..hash] : value).Trim()));
                        continue;
                    }
                }
                inCommented = false;
                continue;   // any other comment
            }
            inCommented = false;
            int comment = line.IndexOf('#');
            if (comment >= 0)
                line = line[..comment].Trim();
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                string name = line[1..^1].Trim();
                if (name.Equals("Peer", StringComparison.OrdinalIgnoreCase))
                {
                    current = new Block("Peer", lineNo) { Name = pendingName, DisabledBy = disabledBy };
                    pendingName = null;
                }
                else if (name.Equals("Interface", StringComparison.OrdinalIgnoreCase))
                    current = new Block("Interface", lineNo);
                else
                {
                    src.Problems.Add($"{file}:{lineNo}: unknown section [{UserInputException.Shown(name)}]");
                    current = null;
                    continue;
                }
                blocks.Add(current);
                continue;
            }
            int eqAt = line.IndexOf('=');
            if (eqAt <= 0)
            {
                src.Problems.Add($"{file}:{lineNo}: expected 'Key = Value'");
                continue;
            }
            if (current is null)
            {
                src.Problems.Add($"{file}:{lineNo}: '{UserInputException.Shown(line[..eqAt].Trim())}' outside of a section");
                continue;
            }
            current.Entries.Add((lineNo, line[..eqAt].Trim(), line[(eqAt + 1)..].Trim()));
        }
        return blocks;
    }

    /// <summary>Reads a wg-quick server config, and client configs from a folder when given.</summary>
    public static ImportSource Read(string serverConf, string? clientsDir, string tool = "wg-quick")
    {
        var src = new ImportSource(tool);
        Read(src, serverConf, clientsDir);
        return src;
    }

    internal static void Read(ImportSource src, string serverConf, string? clientsDir)
    {
        string? text = ReadText(serverConf, src);
        if (text is null)
            return;
        var blocks = Scan(text, serverConf, src);
        var iface = blocks.Where(b => b.Section == "Interface").ToList();
        if (iface.Count != 1)
        {
            src.Problems.Add(iface.Count == 0 ? $"{serverConf}: no [Interface] section: not a wg-quick server config" : $"{serverConf}:{iface[1].Line}: a second [Interface] section");
            return;
        }
        src.Server = ReadInterface(iface[0], serverConf, src);
        foreach (var b in blocks.Where(b => b.Section == "Peer"))
        {
            if (ReadPeer(b, serverConf, src) is { } c)
                src.Clients.Add(c);
        }
        if (clientsDir is not null)
            MatchClientFiles(src, clientsDir, Path.GetFileNameWithoutExtension(serverConf));
    }

    internal static string? ReadText(string path, ImportSource src)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            src.Problems.Add($"{path}: cannot read ({(e is UnauthorizedAccessException ? "permission denied; run as root" : e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)})");
            return null;
        }
    }

    private static ImportedServer? ReadInterface(Block b, string file, ImportSource src)
    {
        string at(int line) => $"{file}:{line}";
        if (b.Get("PrivateKey") is not { } pk)
        {
            src.Problems.Add($"{file}:{b.Line}: [Interface] has no PrivateKey");
            return null;
        }
        var key = src.Key(pk.Value, at(pk.Line), "PrivateKey");
        if (key is null)
            return null;
        IPNetwork? s4 = null, s6 = null;
        IPAddress? a4 = null, a6 = null;
        var addressLine = b.Get("Address")?.Line ?? b.Line;
        foreach (var text in b.All("Address"))
        {
            if (src.Network(text, at(addressLine), "Address") is not { } n)
                continue;
            var address = IPAddress.Parse(text.Split('/')[0]);
            if (n.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
            {
                if (s4 is null) { s4 = n; a4 = address; }
            }
            else if (s6 is null) { s6 = n; a6 = address; }
        }
        foreach (var (line, k, _) in b.Entries)
        {
            if (k.ToLowerInvariant() is "preup" or "postup" or "predown" or "postdown")
            {
                src.Notes.Add($"{file}:{line}: {k} is not imported (mkb-vpn sets up forwarding and nftables itself)");
            }
        }
        return new ImportedServer
        {
            Origin = at(b.Line),
            PrivateKey = key,
            ListenPort = b.Get("ListenPort") is { } lp ? src.Number(lp.Value, at(lp.Line), "ListenPort", 1, 65535) : null,
            Subnet4 = s4,
            Subnet6 = s6,
            Address4 = a4,
            Address6 = a6,
            Mtu = b.Get("MTU") is { } mtu ? src.Number(mtu.Value, at(mtu.Line), "MTU", 1280, 9000) : null,
        };
    }

    private static ImportedClient? ReadPeer(Block b, string file, ImportSource src)
    {
        if (b.Get("PublicKey") is not { } pk)
        {
            src.Problems.Add($"{file}:{b.Line}: [Peer] has no PublicKey");
            return null;
        }
        var pub = src.Key(pk.Value, $"{file}:{pk.Line}", "PublicKey");
        if (pub is null)
            return null;
        var psk = b.Get("PresharedKey") is { } ps ? src.Key(ps.Value, $"{file}:{ps.Line}", "PresharedKey") : null;
        var (v4, v6) = src.TunnelAddresses(b.All("AllowedIPs"), $"{file}:{b.Get("AllowedIPs")?.Line ?? b.Line}");
        return new ImportedClient
        {
            Origin = $"{file}:{b.Line}",
            Name = b.Name,
            PublicKey = pub,
            PresharedKey = psk,
            Address4 = v4,
            Address6 = v6,
            Enabled = b.DisabledBy is null,
            DisabledBy = b.DisabledBy,
        };
    }

    /// <summary>
    /// Client configs matched to peers by the public key of their PrivateKey: the private key,
    /// DNS, AllowedIPs, keepalive and the endpoint they dial. The file name names a peer that
    /// had no marker (angristan's "wg0-client-NAME.conf" gives NAME).
    /// </summary>
    internal static void MatchClientFiles(ImportSource src, string dir, string iface, Func<string, string?>? nameOf = null)
    {
        string[] files;
        try
        {
            files = [.. Directory.GetFiles(dir, "*.conf").Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            src.Problems.Add($"{dir}: cannot read the client folder ({(e is DirectoryNotFoundException ? "no such folder" : e.Message)})");
            return;
        }
        var byKey = new Dictionary<WireGuardKey, int>();
        for (int i = 0; i < src.Clients.Count; i++)
            byKey.TryAdd(src.Clients[i].PublicKey, i);
        var serverPub = src.Server is { } s ? WireGuardKeys.PublicKeyOf(s.PrivateKey) : null;
        foreach (var file in files)
        {
            string? text = ReadText(file, src);
            if (text is null)
                continue;
            var local = new ImportSource(src.Tool);
            var blocks = Scan(text, file, local);
            var iface2 = blocks.FirstOrDefault(b => b.Section == "Interface");
            var peer = blocks.FirstOrDefault(b => b.Section == "Peer");
            if (iface2?.Get("PrivateKey") is not { } pk || peer is null)
                continue;   // not a client config (e.g. another server's)
            src.Problems.AddRange(local.Problems);
            var priv = src.Key(pk.Value, $"{file}:{pk.Line}", "PrivateKey");
            if (priv is null)
                continue;
            var pub = WireGuardKeys.PublicKeyOf(priv);
            if (pub.Equals(serverPub))
                continue;   // the server's own config in the same folder
            if (!byKey.TryGetValue(pub, out int index))
            {
                src.Notes.Add($"{file}: its key belongs to no peer of the server config: skipped");
                continue;
            }
            if (peer.Get("PublicKey") is { } sp && serverPub is not null && src.Key(sp.Value, $"{file}:{sp.Line}", "PublicKey") is { } filePub && !filePub.Equals(serverPub))
            {
                src.Problems.Add($"{file}:{sp.Line}: [Peer] PublicKey is not this server's key");
                continue;
            }
            var c = src.Clients[index];
            string stem = Path.GetFileNameWithoutExtension(file);
            string prefix = iface + "-client-";
            string fileName = nameOf?.Invoke(stem) ?? (stem.StartsWith(prefix, StringComparison.Ordinal) ? stem[prefix.Length..] : stem);
            var allowed = new List<IPNetwork>();
            foreach (var a in peer.All("AllowedIPs"))
                if (src.Network(a, $"{file}:{peer.Get("AllowedIPs")!.Value.Line}", "AllowedIPs entry") is { } n)
                    allowed.Add(n);
            var filePsk = peer.Get("PresharedKey") is { } ps ? src.Key(ps.Value, $"{file}:{ps.Line}", "PresharedKey") : null;
            if (!Equals(filePsk, c.PresharedKey))
                src.Problems.Add($"{file}:{peer.Get("PresharedKey")?.Line ?? peer.Line}: PresharedKey differs from the server config's for this peer ({c.Origin})");
            src.Clients[index] = c with
            {
                Name = c.Name ?? fileName,
                PrivateKey = priv,
                AllowedIps = allowed.Count > 0 ? allowed : c.AllowedIps,
                Dns = iface2.Get("DNS") is not null ? [.. iface2.All("DNS")] : c.Dns,
                Keepalive = peer.Get("PersistentKeepalive") is { } ka ? src.Number(ka.Value, $"{file}:{ka.Line}", "PersistentKeepalive", 0, 65535) : 0,
            };
            if (src.Server is { } server)
            {
                if (server.EndpointHost is null && peer.Get("Endpoint") is { } ep)
                {
                    try
                    {
                        var (host, port) = Addressing.Cidr.ParseEndpoint(ep.Value, server.ListenPort ?? 51820);
                        src.Server = server with { EndpointHost = host, EndpointPort = port };
                    }
                    catch (UserInputException)
                    {
                        src.Problems.Add($"{file}:{ep.Line}: Endpoint '{UserInputException.Shown(ep.Value)}' is not HOST:PORT");
                    }
                }
                if (server.ClientAllowedIps is null && allowed.Count > 0 && c.Enabled)
                    src.Server = src.Server with { ClientAllowedIps = allowed };
                if (server.Dns is null && iface2.Get("DNS") is not null && c.Enabled)
                    src.Server = src.Server with { Dns = [.. iface2.All("DNS")] };
            }
        }
    }
}
