using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using MkbVpn.Storage;

namespace MkbVpn.Configs.Importers;

/// <summary>
/// wg-easy, learned from its source (v14.0.0 src/lib/WireGuard.js; v15 src/server/database and utils/wgHelper.ts):
///   v14: /etc/wireguard/wg0.json = { server: { privateKey, publicKey, address }, clients: { ID: { name, address,
///        privateKey?, publicKey, preSharedKey?, createdAt, updatedAt, enabled } } }. The subnet is address/24;
///        port, host, DNS, MTU, keepalive and client AllowedIPs come from environment variables, not the file
///        (WG_PORT default 51820; the rendered wg0.conf beside it holds ListenPort). A disabled client has
///        "enabled": false and is left out of wg0.conf. A client without privateKey gets "REPLACE_ME" configs.
///   v15: SQLite (wg-easy.db): interfaces_table (port, keys, ipv4_cidr, ipv6_cidr, mtu), user_configs_table
///        (host, port = the endpoint; default DNS / AllowedIPs / keepalive as JSON), clients_table (per client:
///        addresses, keys, JSON allowed_ips/dns or NULL for the defaults, enabled, expires_at, created_at).
///        Disabled: enabled = 0, or expires_at in the past. The server takes the first address of each CIDR.
/// </summary>
public static class WgEasyReader
{
    public static ImportSource Read(string file, DateTimeOffset now)
    {
        var src = new ImportSource("wg-easy");
        if (!File.Exists(file))
        {
            src.Problems.Add($"{file}: no such file");
            return src;
        }
        try
        {
            if (WgEasyDatabase.LooksLikeSqlite(file))
                ReadV15(file, src, now);
            else
                ReadV14(file, src);
        }
        catch (UnauthorizedAccessException)
        {
            src.Problems.Add($"{file}: cannot read (permission denied; run as root)");
        }
        return src;
    }

    // ---- v14: wg0.json ------------------------------------------------------

    private static void ReadV14(string file, ImportSource src)
    {
        string? text = WgQuickServerReader.ReadText(file, src);
        if (text is null)
            return;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            src.Problems.Add($"{file}:{(e.LineNumber ?? 0) + 1}: not valid JSON (neither wg-easy v14's wg0.json nor a v15 database)");
            return;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("server", out var server) || server.ValueKind != JsonValueKind.Object)
            {
                src.Problems.Add($"{file}:1: no \"server\" object: not wg-easy's wg0.json");
                return;
            }
            string serverAt = $"{file}:{LineOf(text, "\"server\"")}";
            var priv = src.Key(Str(server, "privateKey"), serverAt, "server.privateKey");
            if (Str(server, "privateKey") is null)
                src.Problems.Add($"{serverAt}: server.privateKey is missing");
            var address = Str(server, "address");
            IPAddress? a4 = null;
            if (address is null || !IPAddress.TryParse(address, out a4) || a4.AddressFamily != AddressFamily.InterNetwork)
                src.Problems.Add($"{serverAt}: server.address '{UserInputException.Shown(address ?? "")}' is not an IPv4 address");
            // The wg0.conf wg-easy renders beside wg0.json holds the listen port (WG_PORT).
            int? port = null;
            string conf = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "wg0.conf");
            if (File.Exists(conf) && WgQuickServerReader.ReadText(conf, new ImportSource("wg-easy")) is { } confText)
            {
                var b = WgQuickServerReader.Scan(confText, conf, new ImportSource("wg-easy")).FirstOrDefault(x => x.Section == "Interface");
                if (b?.Get("ListenPort") is { } lp)
                    port = src.Number(lp.Value, $"{conf}:{lp.Line}", "ListenPort", 1, 65535);
            }
            if (port is null)
                src.Notes.Add($"{file}: wg-easy v14 keeps the port in WG_PORT, not in this file: using 51820 (pass --port if yours differs)");
            if (priv is not null && a4 is not null)
            {
                src.Server = new ImportedServer
                {
                    Origin = serverAt,
                    PrivateKey = priv,
                    PublicKey = src.Key(Str(server, "publicKey"), serverAt, "server.publicKey"),
                    ListenPort = port,
                    Subnet4 = new IPNetwork(Addressing.Cidr.Mask(a4, 24), 24),
                    Address4 = a4,
                };
            }
            if (!root.TryGetProperty("clients", out var clients) || clients.ValueKind != JsonValueKind.Object)
            {
                src.Problems.Add($"{file}:1: no \"clients\" object");
                return;
            }
            foreach (var entry in clients.EnumerateObject())
            {
                var c = entry.Value;
                string at = $"{file}:{LineOf(text, "\"" + entry.Name + "\"")}";
                if (c.ValueKind != JsonValueKind.Object)
                {
                    src.Problems.Add($"{at}: client {UserInputException.Shown(entry.Name)} is not an object");
                    continue;
                }
                var pubText = Str(c, "publicKey");
                if (pubText is null)
                {
                    src.Problems.Add($"{at}: client '{UserInputException.Shown(Str(c, "name") ?? entry.Name)}' has no publicKey");
                    continue;
                }
                var pub = src.Key(pubText, at, "publicKey");
                var addrText = Str(c, "address");
                if (addrText is null || !IPAddress.TryParse(addrText, out var addr) || addr.AddressFamily != AddressFamily.InterNetwork)
                {
                    src.Problems.Add($"{at}: client '{UserInputException.Shown(Str(c, "name") ?? entry.Name)}' has no valid address");
                    continue;
                }
                if (pub is null)
                    continue;
                bool enabled = !c.TryGetProperty("enabled", out var en) || en.ValueKind != JsonValueKind.False;
                src.Clients.Add(new ImportedClient
                {
                    Origin = at,
                    Name = Str(c, "name"),
                    PrivateKey = src.Key(Str(c, "privateKey"), at, "privateKey"),
                    PublicKey = pub,
                    PresharedKey = src.Key(Str(c, "preSharedKey"), at, "preSharedKey"),
                    Address4 = addr,
                    Enabled = enabled,
                    DisabledBy = enabled ? null : "disabled in wg-easy (\"enabled\": false)",
                    CreatedAt = Time(Str(c, "createdAt")),
                });
            }
        }
    }

    // ---- v15: SQLite ----------------------------------------------------------

    private static void ReadV15(string file, ImportSource src, DateTimeOffset now)
    {
        WgEasyDatabase.Contents db;
        try
        {
            db = WgEasyDatabase.Read(file);
        }
        catch (FormatException e)
        {
            src.Problems.Add($"{file}: {e.Message}");
            return;
        }
        var i = db.Interface;
        string at = $"{file}: interfaces_table '{UserInputException.Shown(i.Name)}'";
        var priv = src.Key(i.PrivateKey, at, "private_key");
        var s4 = src.Network(i.Ipv4Cidr, at, "ipv4_cidr");
        var s6 = i.Ipv6Cidr is { Length: > 0 } c6 ? src.Network(c6, at, "ipv6_cidr") : null;
        var u = db.UserConfig;
        if (u is null)
            src.Problems.Add($"{file}: user_configs_table has no row for '{UserInputException.Shown(i.Name)}' (the host and port clients dial)");
        var defaultDns = u is null ? null : JsonList(u.DefaultDns, $"{file}: user_configs_table", "default_dns", src);
        var defaultAllowed = u is null ? null : Networks(JsonList(u.DefaultAllowedIps, $"{file}: user_configs_table", "default_allowed_ips", src), $"{file}: user_configs_table", src);
        if (priv is not null)
        {
            src.Server = new ImportedServer
            {
                Origin = at,
                PrivateKey = priv,
                PublicKey = src.Key(i.PublicKey, at, "public_key"),
                ListenPort = src.Number(i.Port.ToString(CultureInfo.InvariantCulture), at, "port", 1, 65535),
                Subnet4 = s4,
                Subnet6 = s6,
                Address4 = s4 is { } n4 ? Next(n4.BaseAddress) : null,
                Address6 = s6 is { } n6 ? Next(n6.BaseAddress) : null,
                Mtu = i.Mtu,
                EndpointHost = u?.Host is { Length: > 0 } host ? host : null,
                EndpointPort = u?.Port,
                Dns = defaultDns,
                Keepalive = u?.DefaultKeepalive,
                ClientAllowedIps = defaultAllowed,
            };
        }
        foreach (var r in db.Clients)
        {
            string cat = $"{file}: clients_table id {r.Id}";
            var pub = src.Key(r.PublicKey, cat, "public_key");
            if (pub is null)
            {
                if (string.IsNullOrWhiteSpace(r.PublicKey))
                    src.Problems.Add($"{cat}: public_key is empty");
                continue;
            }
            IPAddress? a4 = null, a6 = null;
            if (!IPAddress.TryParse(r.Ipv4Address, out a4))
                src.Problems.Add($"{cat}: ipv4_address '{UserInputException.Shown(r.Ipv4Address)}' is not an address");
            if (r.Ipv6Address is { Length: > 0 } t6 && !IPAddress.TryParse(t6, out a6))
                src.Problems.Add($"{cat}: ipv6_address '{UserInputException.Shown(t6)}' is not an address");
            if (r.ServerAllowedIps is { } routed && JsonList(routed, cat, "server_allowed_ips", src) is { Count: > 0 } behind)
                src.Notes.Add($"{cat}: server_allowed_ips {string.Join(", ", behind)} (networks behind this client) are not imported: mkb-vpn routes only each client's own addresses to it");
            if (r.Mtu != i.Mtu)
                src.Notes.Add($"{cat}: the client's MTU {r.Mtu} stays in its own config; mkb-vpn renders the server's {i.Mtu}");
            var expires = Time(r.ExpiresAt);
            string? disabledBy = !r.Enabled ? "disabled in wg-easy (enabled = 0)"
                : expires is { } e && e < now ? $"expired in wg-easy (expires_at {r.ExpiresAt})" : null;
            src.Clients.Add(new ImportedClient
            {
                Origin = cat,
                Name = r.Name,
                PrivateKey = src.Key(r.PrivateKey, cat, "private_key"),
                PublicKey = pub,
                PresharedKey = src.Key(r.PreSharedKey, cat, "pre_shared_key"),
                Address4 = a4,
                Address6 = s6 is null ? null : a6,
                AllowedIps = r.AllowedIps is null ? defaultAllowed : Networks(JsonList(r.AllowedIps, cat, "allowed_ips", src), cat, src),
                Dns = r.Dns is null ? defaultDns : JsonList(r.Dns, cat, "dns", src),
                Keepalive = r.PersistentKeepalive,
                Enabled = disabledBy is null,
                DisabledBy = disabledBy,
                CreatedAt = Time(r.CreatedAt),
            });
        }
    }

    // ---- helpers ------------------------------------------------------------

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int LineOf(string text, string needle)
    {
        int at = text.IndexOf(needle, StringComparison.Ordinal);
        return at < 0 ? 1 : 1 + text.AsSpan(0, at).Count('\n');
    }

    private static DateTimeOffset? Time(string? text) =>
        text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    private static IPAddress Next(IPAddress network)
    {
        var bytes = network.GetAddressBytes();
        for (int k = bytes.Length - 1; k >= 0 && ++bytes[k] == 0; k--)
        {
        }
        return new IPAddress(bytes);
    }

    private static List<string>? JsonList(string json, string at, string column, ImportSource src)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind == JsonValueKind.Array && doc.RootElement.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String))
                return [.. doc.RootElement.EnumerateArray().Select(x => x.GetString()!)];
        }
        catch (JsonException)
        {
        }
        src.Problems.Add($"{at}: {column} is not a JSON list of strings");
        return null;
    }

    private static List<IPNetwork>? Networks(List<string>? list, string at, ImportSource src) =>
        list is null ? null : [.. list.Select(x => src.Network(x, at, "AllowedIPs entry")).OfType<IPNetwork>()];
}
