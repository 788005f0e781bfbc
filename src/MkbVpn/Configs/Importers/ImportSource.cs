using System.Net;
using System.Net.Sockets;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Configs.Importers;

/// <summary>The server as another tool stored it. Null: the tool did not store it.</summary>
public sealed record ImportedServer
{
    /// <summary>Where it was read ("FILE:LINE"), for messages.</summary>
    public required string Origin { get; init; }
    public required WireGuardKey PrivateKey { get; init; }
    /// <summary>The public key the tool stored beside the private key, checked against it.</summary>
    public WireGuardKey? PublicKey { get; init; }
    public int? ListenPort { get; init; }
    public IPNetwork? Subnet4 { get; init; }
    public IPNetwork? Subnet6 { get; init; }
    /// <summary>The server's own tunnel addresses as the tool configured them.</summary>
    public IPAddress? Address4 { get; init; }
    public IPAddress? Address6 { get; init; }
    public IReadOnlyList<string>? Dns { get; init; }
    public int? Mtu { get; init; }
    public string? EndpointHost { get; init; }
    public int? EndpointPort { get; init; }
    public int? Keepalive { get; init; }
    /// <summary>The AllowedIPs the tool writes into client configs by default.</summary>
    public IReadOnlyList<IPNetwork>? ClientAllowedIps { get; init; }
}

/// <summary>One client (peer) as another tool stored it.</summary>
public sealed record ImportedClient
{
    public required string Origin { get; init; }
    /// <summary>The name in the old tool; null when it had none (a name is generated).</summary>
    public string? Name { get; init; }
    public WireGuardKey? PrivateKey { get; init; }
    public required WireGuardKey PublicKey { get; init; }
    public WireGuardKey? PresharedKey { get; init; }
    public IPAddress? Address4 { get; init; }
    public IPAddress? Address6 { get; init; }
    /// <summary>AllowedIPs of the client's own config (what it routes into the tunnel).</summary>
    public IReadOnlyList<IPNetwork>? AllowedIps { get; init; }
    public IReadOnlyList<string>? Dns { get; init; }
    public int? Keepalive { get; init; }
    public bool Enabled { get; init; } = true;
    /// <summary>Why the old tool did not serve it (for the printed plan).</summary>
    public string? DisabledBy { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
}

/// <summary>What a reader found in another tool's files: the server, its clients, and every problem (FILE:LINE: ...).</summary>
public sealed class ImportSource(string tool)
{
    public string Tool { get; } = tool;
    public ImportedServer? Server { get; set; }
    public List<ImportedClient> Clients { get; } = [];
    public List<string> Problems { get; } = [];
    public List<string> Notes { get; } = [];

    // ---- helpers shared by the readers ------------------------------------

    internal WireGuardKey? Key(string? text, string origin, string what)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        if (WireGuardKey.TryParseBase64(text.Trim(), out var key))
            return key;
        Problems.Add($"{origin}: {what} is not a WireGuard key (44 characters of base64)");
        return null;
    }

    internal IPNetwork? Network(string text, string origin, string what)
    {
        if (IPNetwork.TryParse(text.Trim(), out var n))
            return n;
        // An address with its prefix (203.0.113.1/24): the network it sits in.
        var parts = text.Trim().Split('/');
        if (parts.Length == 2 && IPAddress.TryParse(parts[0], out var a) && int.TryParse(parts[1], out int len) &&
            len >= 0 && len <= (a.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            return new IPNetwork(Addressing.Cidr.Mask(a, len), len);
        Problems.Add($"{origin}: {what} '{UserInputException.Shown(text)}' is not an address or network");
        return null;
    }

    internal int? Number(string? text, string origin, string what, int min, int max)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        if (int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= min && n <= max)
            return n;
        Problems.Add($"{origin}: {what} '{UserInputException.Shown(text)}' is not a number from {min} to {max}");
        return null;
    }

    /// <summary>Splits a peer's server-side AllowedIPs into its tunnel addresses (/32, /128) and anything routed behind it.</summary>
    internal (IPAddress? V4, IPAddress? V6) TunnelAddresses(IEnumerable<string> allowedIps, string origin)
    {
        IPAddress? v4 = null, v6 = null;
        foreach (var text in allowedIps)
        {
            if (Network(text, origin, "AllowedIPs entry") is not { } n)
                continue;
            bool isV4 = n.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
            if (n.PrefixLength == (isV4 ? 32 : 128) && (isV4 ? v4 : v6) is null)
            {
                if (isV4) v4 = n.BaseAddress; else v6 = n.BaseAddress;
            }
            else
            {
                Notes.Add($"{origin}: AllowedIPs {n} (a network behind this peer) is not imported: mkb-vpn routes only each client's own addresses to it");
            }
        }
        return (v4, v6);
    }

}
