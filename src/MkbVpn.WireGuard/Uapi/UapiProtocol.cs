using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MkbVpn.WireGuard.Device;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Uapi;

/// <summary>
/// The cross-platform userspace configuration protocol of wg(8) (https://www.wireguard.com/xplatform/),
/// as wireguard-go's device/uapi.go speaks it: <c>get=1</c> and <c>set=1</c> operations of key=value lines,
/// each ended by an empty line and answered with <c>errno=N</c> (0, or a negative Linux errno) and an empty
/// line. Keys are lower-case hex. The get output is the only place where the private key leaves the
/// engine, and the socket it is served on is root-only, as wireguard-go's.
/// </summary>
internal static class UapiProtocol
{
    public const int ErrorIo = -5;           // -EIO
    public const int ErrorInvalid = -22;     // -EINVAL
    public const int ErrorProtocol = -71;    // -EPROTO
    public const int ErrorPortInUse = -98;   // -EADDRINUSE
    public const int ErrorUnknown = -55;     // wireguard-go's IpcErrorUnknown

    private const int MaxLineLength = 4096;

    /// <summary>Serves operations from one connection until it closes or sends something that is not an operation.</summary>
    public static void Serve(MkbVpn.WireGuard.Device.Device device, TextReader reader, TextWriter writer, EngineLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        while (ReadLine(reader) is { } operation)
        {
            int errno;
            switch (operation)
            {
                case "get=1":
                    if (ReadLine(reader) is not "")
                    {
                        errno = ErrorInvalid;
                        log?.Error("uapi", "trailing characters after get=1");
                        break;
                    }
                    Get(device, writer);
                    errno = 0;
                    break;
                case "get=stats":
                    // An mkb-vpn extension (wg never sends it, so `wg show` is unaffected): the device's drop
                    // counters, one "NAME=N" line each (as in the engine log), plus "dropped=TOTAL", for the service's status.
                    if (ReadLine(reader) is not "")
                    {
                        errno = ErrorInvalid;
                        break;
                    }
                    WriteStats(device, writer);
                    errno = 0;
                    break;
                case "set=1":
                    errno = Set(device, reader, out string? error);
                    if (error is not null)
                        log?.Error("uapi", error);
                    break;
                default:
                    log?.Error("uapi", "invalid UAPI operation");
                    return;
            }
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"errno={errno}\n\n"));
            writer.Flush();
        }
    }

    /// <summary>Writes the device's drop counters for <c>get=stats</c> (without the errno line).</summary>
    public static void WriteStats(MkbVpn.WireGuard.Device.Device device, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(writer);
        foreach ((string name, long value) in device.Counters.Values())
            Line(writer, name, value);
        Line(writer, "dropped", device.Counters.Dropped);
    }

    /// <summary>Writes the device and every peer, in wireguard-go's order and format (without the errno line).
    /// The state is copied under the configuration lock and written after it, so a slow reader never holds up a set.</summary>
    public static void Get(MkbVpn.WireGuard.Device.Device device, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(writer);
        string? privateKey;
        int listenPort;
        uint fwmark;
        IReadOnlyList<PeerStatus> peers;
        lock (device.ConfigLock)
        {
            privateKey = device.PrivateKey?.ToHex();
            listenPort = device.ListenPort;
            fwmark = device.Fwmark;
            peers = device.Snapshot();
        }
        if (privateKey is not null)
            Line(writer, "private_key", privateKey);
        if (listenPort != 0)
            Line(writer, "listen_port", listenPort);
        if (fwmark != 0)
            Line(writer, "fwmark", fwmark);
        Span<char> scratch = stackalloc char[64];
        foreach (PeerStatus peer in peers)
        {
            Line(writer, "public_key", peer.PublicKey.ToHex());
            Line(writer, "preshared_key", peer.PresharedKey?.ToHex() ?? ZeroKeyHex);
            writer.Write("protocol_version=1\n");
            if (peer.Endpoint is { } endpoint)
                Line(writer, "endpoint", FormatEndpoint(endpoint));
            long nanos = peer.LastHandshake is { } t ? (t - DateTimeOffset.UnixEpoch).Ticks * 100 : 0;
            Line(writer, "last_handshake_time_sec", nanos / 1_000_000_000);
            Line(writer, "last_handshake_time_nsec", nanos % 1_000_000_000);
            Line(writer, "tx_bytes", peer.SentBytes);
            Line(writer, "rx_bytes", peer.ReceivedBytes);
            Line(writer, "persistent_keepalive_interval", (long)peer.PersistentKeepalive.TotalSeconds);
            foreach (var (address, cidr) in peer.AllowedIps)
            {
                writer.Write("allowed_ip=");
                if (address.TryFormat(scratch, out int n))
                    writer.Write(scratch[..n]);
                else
                    writer.Write(address.ToString());
                writer.Write('/');
                if (cidr.TryFormat(scratch, out n, provider: CultureInfo.InvariantCulture))
                    writer.Write(scratch[..n]);
                writer.Write('\n');
            }
        }
    }

    private static readonly string ZeroKeyHex = new('0', 64);

    private static void Line(TextWriter writer, string key, string value)
    {
        writer.Write(key);
        writer.Write('=');
        writer.Write(value);
        writer.Write('\n');
    }

    private static void Line(TextWriter writer, string key, long value)
    {
        Span<char> digits = stackalloc char[20];
        value.TryFormat(digits, out int n, provider: CultureInfo.InvariantCulture);
        writer.Write(key);
        writer.Write('=');
        writer.Write(digits[..n]);
        writer.Write('\n');
    }

    private static string FormatEndpoint(IPEndPoint endpoint) =>
        endpoint.AddressFamily == AddressFamily.InterNetworkV6
            ? string.Create(CultureInfo.InvariantCulture, $"[{endpoint.Address}]:{endpoint.Port}")
            : string.Create(CultureInfo.InvariantCulture, $"{endpoint.Address}:{endpoint.Port}");

    /// <summary>
    /// Applies one set operation (lines up to the empty line). Returns 0 or a negative errno; on error the
    /// rest of the operation is read and ignored (what was applied before the bad line stays, as in wireguard-go).
    /// </summary>
    public static int Set(MkbVpn.WireGuard.Device.Device device, TextReader reader, out string? error)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(reader);
        error = null;
        int errno = 0;
        int lines = 0;
        try
        {
            lock (device.ConfigLock)
                errno = SetLocked(device, reader, ref lines, out error);
        }
        finally
        {
            // A large configuration (thousands of peers) leaves megabytes of parsing garbage: give it back to the
            // system now rather than keep it as heap headroom for an engine that allocates nothing per packet.
            if (lines >= LargeSetLines)
                GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        return errno;
    }

    private const int LargeSetLines = 2_000;

    private static int SetLocked(MkbVpn.WireGuard.Device.Device device, TextReader reader, ref int lines, out string? error)
    {
        error = null;
        int errno = 0;
        {
            var peer = new PeerConfig();
            while (true)
            {
                string? line = ReadLine(reader);
                lines++;
                if (line is null)
                {
                    error ??= "connection closed in the middle of a set operation";
                    return errno != 0 ? errno : ErrorIo;
                }
                if (line.Length == 0)
                    break;
                if (errno != 0)
                    continue; // skip to the end of the failed operation
                int eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    (errno, error) = (ErrorProtocol, "a set line without '='");
                    continue;
                }
                string key = line[..eq];
                string value = line[(eq + 1)..];
                try
                {
                    (errno, error) = key == "public_key"
                        ? StartPeer(device, ref peer, value)
                        : peer.Started
                            ? PeerLine(device, peer, key, value)
                            : DeviceLine(device, key, value);
                }
                catch (Exception e) when (e is ArgumentException or IOException or SocketException or InvalidOperationException)
                {
                    (errno, error) = (ErrorUnknown, $"failed to apply {Printable(key)}: {e.GetType().Name}");
                }
            }
            if (errno == 0)
                PostConfig(device, peer);
        }
        return errno;
    }

    private sealed class PeerConfig
    {
        public bool Started;
        public Peer? Peer;      // null: a dummy (our own key, removed, or update_only for an unknown key)
        public bool Created;
        public bool KeepaliveOn;
    }

    private static (int, string?) DeviceLine(MkbVpn.WireGuard.Device.Device device, string key, string value)
    {
        switch (key)
        {
            case "private_key":
                if (!WireGuardKey.TryParseHex(value, out WireGuardKey? privateKey))
                    return (ErrorInvalid, "failed to set private_key: not a hex key");
                device.SetPrivateKey(privateKey);
                return (0, null);
            case "listen_port":
                if (!ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ushort port))
                    return (ErrorInvalid, "failed to parse listen_port");
                try
                {
                    device.SetListenPort(port);
                }
                catch (SocketException e)
                {
                    return (ErrorPortInUse, $"failed to set listen_port: {e.Message}");
                }
                return (0, null);
            case "fwmark":
                if (!uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint mark))
                    return (ErrorInvalid, "invalid fwmark");
                try
                {
                    device.SetFwmark(mark);
                }
                catch (IOException e)
                {
                    return (ErrorPortInUse, $"failed to update fwmark: {e.Message}");
                }
                return (0, null);
            case "replace_peers":
                if (value != "true")
                    return (ErrorInvalid, "failed to set replace_peers, invalid value");
                device.RemoveAllPeers();
                return (0, null);
            default:
                return (ErrorInvalid, $"invalid UAPI device key: {Printable(key)}");
        }
    }

    private static (int, string?) StartPeer(MkbVpn.WireGuard.Device.Device device, ref PeerConfig peer, string value)
    {
        PostConfig(device, peer);
        if (!WireGuardKey.TryParseHex(value, out WireGuardKey? publicKey))
            return (ErrorInvalid, "failed to get peer by public key: not a hex key");
        peer = new PeerConfig { Started = true };
        if (device.PublicKey is { } own && own.Equals(publicKey))
            return (0, null); // a peer with our own key is ignored, as wireguard-go
        peer.Peer = device.AddPeer(publicKey, out peer.Created);
        return (0, null);
    }

    private static (int, string?) PeerLine(MkbVpn.WireGuard.Device.Device device, PeerConfig config, string key, string value)
    {
        Peer? peer = config.Peer;
        switch (key)
        {
            case "update_only":
                if (value != "true")
                    return (ErrorInvalid, "failed to set update only, invalid value");
                if (config.Created && peer is not null)
                {
                    device.RemovePeer(peer);
                    config.Peer = null;
                }
                return (0, null);
            case "remove":
                if (value != "true")
                    return (ErrorInvalid, "failed to set remove, invalid value");
                if (peer is not null)
                    device.RemovePeer(peer);
                config.Peer = null;
                return (0, null);
            case "preshared_key":
                if (!WireGuardKey.TryParseHex(value, out WireGuardKey? psk))
                    return (ErrorInvalid, "failed to set preshared key: not a hex key");
                if (peer is not null)
                    device.SetPresharedKey(peer, psk);
                return (0, null);
            case "endpoint":
                if (!TryParseEndpoint(value, out IPEndPoint? endpoint))
                    return (ErrorInvalid, "failed to set endpoint");
                if (peer is not null)
                    device.SetEndpoint(peer, endpoint);
                return (0, null);
            case "persistent_keepalive_interval":
                if (!ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ushort seconds))
                    return (ErrorInvalid, "failed to set persistent keepalive interval");
                if (peer is not null)
                {
                    bool wasOff = peer.PersistentKeepalive == TimeSpan.Zero;
                    device.SetPersistentKeepalive(peer, TimeSpan.FromSeconds(seconds), keepaliveNow: false);
                    config.KeepaliveOn = wasOff && seconds != 0;
                }
                return (0, null);
            case "replace_allowed_ips":
                if (value != "true")
                    return (ErrorInvalid, "failed to replace allowedips, invalid value");
                if (peer is not null)
                    device.ClearAllowedIps(peer);
                return (0, null);
            case "allowed_ip":
            {
                // "-PREFIX" removes one range of this peer (wireguard-tools v1.0.20250521+, `wg set ... allowed-ips -ip/cidr`).
                bool remove = value.StartsWith('-');
                if (!TryParsePrefix(remove ? value[1..] : value, out IPAddress? address, out int cidr))
                    return (ErrorInvalid, "failed to set allowed ip");
                if (peer is not null)
                {
                    if (remove)
                        device.RemoveAllowedIp(peer, address, cidr);
                    else
                        device.AddAllowedIp(peer, address, cidr);
                }
                return (0, null);
            }
            case "protocol_version":
                return value == "1" ? (0, null) : (ErrorInvalid, "invalid protocol version");
            default:
                return (ErrorInvalid, $"invalid UAPI peer key: {Printable(key)}");
        }
    }

    // After a peer's lines (as wireguard-go's handlePostConfig): persistent keepalive switched on sends one now.
    private static void PostConfig(MkbVpn.WireGuard.Device.Device device, PeerConfig config)
    {
        if (config.Peer is { } peer && config.KeepaliveOn)
            device.SendKeepaliveNow(peer);
        config.KeepaliveOn = false;
    }

    internal static bool TryParseEndpoint(string value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? endpoint)
    {
        endpoint = null;
        int colon = value.LastIndexOf(':');
        if (colon <= 0 || colon == value.Length - 1)
            return false;
        string host = value[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        else if (host.Contains(':', StringComparison.Ordinal))
            return false; // IPv6 must be bracketed
        if (!IPAddress.TryParse(host, out IPAddress? address) ||
            !ushort.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out ushort port))
            return false;
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        endpoint = new IPEndPoint(address, port);
        return true;
    }

    internal static bool TryParsePrefix(string value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address, out int cidr)
    {
        address = null;
        cidr = 0;
        int slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(value[..slash], out IPAddress? parsed) || (parsed.AddressFamily == AddressFamily.InterNetworkV6 && parsed.ScopeId != 0) ||
            !int.TryParse(value[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out cidr))
            return false;
        int max = parsed.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (cidr > max || value[(slash + 1)..].Length > 3)
            return false;
        address = parsed;
        return true;
    }

    // Error messages may echo a key name, never a value (values can be keys).
    private static string Printable(string key) =>
        key.Length <= 40 && key.All(c => c is >= 'a' and <= 'z' or '_' or >= '0' and <= '9') ? key : "(unprintable)";

    private static string? ReadLine(TextReader reader)
    {
        var line = new System.Text.StringBuilder();
        while (true)
        {
            int c = reader.Read();
            if (c < 0)
                return line.Length > 0 ? line.ToString() : null;
            if (c == '\n')
                return line.ToString();
            if (line.Length >= MaxLineLength)
                throw new IOException("UAPI line too long");
            line.Append((char)c);
        }
    }
}
