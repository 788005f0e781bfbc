using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace MkbVpn.Addressing;

/// <summary>Parsing of user-given networks, endpoints and addresses with one-line errors.</summary>
public static class Cidr
{
    /// <summary>Parses a network in CIDR form; host bits must be zero (the message says the fix).</summary>
    public static IPNetwork ParseNetwork(string text, string what)
    {
        if (!TryParseNetwork(text, out var network, out var error))
            throw new UserInputException($"{what}: {error}");
        return network;
    }

    public static bool TryParseNetwork(string? text, out IPNetwork network, [NotNullWhen(false)] out string? error)
    {
        network = default;
        error = null;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = "empty network; expected CIDR like 203.0.113.0/24";
            return false;
        }
        int slash = text.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(text[..slash], out var address) || HasScope(address) ||
            !int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, null, out int prefix))
        {
            error = $"'{text}' is not a network in CIDR form like 203.0.113.0/24 or fd00:1::/64";
            return false;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            error = $"'{text}': IPv4-mapped IPv6 addresses are not supported; write the IPv4 form";
            return false;
        }
        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix > bits)
        {
            error = $"'{text}': prefix length {prefix} is larger than {bits}";
            return false;
        }
        var canonical = new IPNetwork(Mask(address, prefix), prefix);
        if (!canonical.BaseAddress.Equals(address))
        {
            error = $"'{text}' has host bits set; did you mean {canonical}?";
            return false;
        }
        network = canonical;
        return true;
    }

    private static bool HasScope(IPAddress a) => a.AddressFamily == AddressFamily.InterNetworkV6 && a.ScopeId != 0;

    public static IPAddress Mask(IPAddress address, int prefix)
    {
        byte[] bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(prefix - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    public static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));

    public static IPAddress ParseAddress(string text, string what)
    {
        // IPAddress.TryParse takes shorthand such as "8.8" (= 8.0.0.8); an admin never means that.
        if (!IPAddress.TryParse(text.Trim(), out var address) || HasScope(address) || text.Contains('/') ||
            (address.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') != 3))
            throw new UserInputException($"{what}: '{text}' is not an IP address");
        return address;
    }

    public static int ParsePort(string text, string what)
    {
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, null, out int port) || port < 1 || port > 65535)
            throw new UserInputException($"{what}: '{text}' is not a port (1-65535)");
        return port;
    }

    /// <summary>Parses the public endpoint clients dial: host name, IPv4 or [IPv6], with optional :port.</summary>
    public static (string Host, int Port) ParseEndpoint(string text, int defaultPort)
    {
        text = text.Trim();
        const string what = "endpoint";
        if (text.Length == 0)
            throw new UserInputException("endpoint: empty; expected HOST[:PORT] such as vpn.example.com:51820");
        string host;
        int port = defaultPort;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0)
                throw new UserInputException($"endpoint: '{text}' has '[' without ']'");
            host = text[1..close];
            string rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                    throw new UserInputException($"endpoint: '{text}': expected ':PORT' after ']'");
                port = ParsePort(rest[1..], what);
            }
            if (!IPAddress.TryParse(host, out var a6) || a6.AddressFamily != AddressFamily.InterNetworkV6 || HasScope(a6))
                throw new UserInputException($"endpoint: '{host}' is not an IPv6 address (without a scope)");
            return (a6.ToString(), port);
        }
        int colons = text.Count(c => c == ':');
        if (colons > 1)
        {
            if (IPAddress.TryParse(text, out var bare) && bare.AddressFamily == AddressFamily.InterNetworkV6 && !HasScope(bare))
                return ($"{bare}", port);
            throw new UserInputException($"endpoint: '{text}': write an IPv6 endpoint as [ADDRESS]:PORT");
        }
        host = text;
        if (colons == 1)
        {
            int c = text.LastIndexOf(':');
            host = text[..c];
            port = ParsePort(text[(c + 1)..], what);
        }
        if (!IsHostName(host))
            throw new UserInputException($"endpoint: '{host}' is not a valid host name or IP address");
        return (host, port);
    }

    public static string FormatEndpoint(string host, int port) =>
        host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";

    private static bool IsHostName(string host)
    {
        if (IPAddress.TryParse(host, out var ip))
            return ip.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') == 3;
        if (host.Length is 0 or > 253)
            return false;
        foreach (string label in host.TrimEnd('.').Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
                return false;
            foreach (char ch in label)
                if (!(char.IsAsciiLetterOrDigit(ch) || ch == '-'))
                    return false;
        }
        // All-numeric labels with dots that did not parse as IPv4 (e.g. 300.1.1.1) are not names.
        return !host.Split('.').All(l => l.All(char.IsAsciiDigit));
    }
}
