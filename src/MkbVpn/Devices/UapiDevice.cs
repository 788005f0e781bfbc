using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Devices;

/// <summary>
/// A userspace WireGuard interface driven through the cross-platform configuration protocol
/// (UAPI) on /var/run/wireguard/NAME.sock: wireguard-go, or mkb-vpn's own engine.
/// </summary>
public sealed class UapiDevice(string name, string socketDirectory = UapiDevice.DefaultSocketDirectory) : IWireGuardDevice
{
    public const string DefaultSocketDirectory = "/var/run/wireguard";

    public string Name { get; } = name;

    public static TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    public string SocketPath => System.IO.Path.Combine(socketDirectory, Name + ".sock");

    public bool Exists => File.Exists(SocketPath);

    /// <summary>
    /// The built-in engine's drop counters (UAPI "get=stats", an extension wg never sends), or null
    /// where the engine does not answer it (wireguard-go closes the connection).
    /// </summary>
    public IReadOnlyDictionary<string, long>? ReadDropCounters()
    {
        List<string> lines;
        try
        {
            lines = Exchange("get=stats\n\n");
        }
        catch (IOException)
        {
            return null;
        }
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            int eq = line.IndexOf('=');
            if (eq > 0 && line[..eq] != "errno" && long.TryParse(line[(eq + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                counters[line[..eq]] = v;
        }
        return counters.Count == 0 ? null : counters;
    }

    public InterfaceState Read()
    {
        var lines = Exchange("get=1\n\n");
        return ParseGet(lines);
    }

    /// <summary>
    /// The private key alone: the answer's interface lines, which come before the first peer's, and then the
    /// connection is closed (the engine stops writing): on an interface of 10,000 peers the verbs' key check reads a
    /// few hundred bytes instead of about 3 MB.
    /// </summary>
    public WireGuardKey? ReadPrivateKey() =>
        ParseGet(Exchange("get=1\n\n", until: line => line.StartsWith("public_key=", StringComparison.Ordinal))).PrivateKey;

    public void Apply(DeviceChanges changes)
    {
        if (changes.IsEmpty)
            return;
        // Kicks go in a second request: the peer must exist with its keepalive off first,
        // and the keepalive is switched back off right after the one it sends.
        var first = RenderSet(changes with { Peers = [.. changes.Peers.Where(p => p is not PeerChange.Kick)] });
        if (first is not null)
            Check(Exchange(first));
        var kicks = changes.Peers.OfType<PeerChange.Kick>().ToList();
        if (kicks.Count > 0)
        {
            var on = new StringBuilder("set=1\n");
            var off = new StringBuilder("set=1\n");
            foreach (var k in kicks)
            {
                on.Append("public_key=").Append(k.PublicKey.ToHex()).Append("\nupdate_only=true\nendpoint=").Append(k.Endpoint)
                  .Append("\npersistent_keepalive_interval=1\n");
                off.Append("public_key=").Append(k.PublicKey.ToHex()).Append("\nupdate_only=true\npersistent_keepalive_interval=0\n");
            }
            Check(Exchange(on.Append('\n').ToString()));
            Check(Exchange(off.Append('\n').ToString()));
        }
    }

    internal static string? RenderSet(DeviceChanges changes)
    {
        if (changes.IsEmpty)
            return null;
        var sb = new StringBuilder("set=1\n");
        if (changes.PrivateKey is { } pk)
            sb.Append("private_key=").Append(pk.ToHex()).Append('\n');
        if (changes.ListenPort is { } port)
            sb.Append("listen_port=").Append(port.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var change in changes.Peers)
        {
            sb.Append("public_key=").Append(change.PublicKey.ToHex()).Append('\n');
            switch (change)
            {
                case PeerChange.Remove:
                    sb.Append("remove=true\n");
                    break;
                case PeerChange.Upsert u:
                    sb.Append("preshared_key=").Append(u.Spec.PresharedKey.ToHex()).Append('\n');
                    sb.Append("replace_allowed_ips=true\n");
                    foreach (var ip in u.Spec.AllowedIps)
                        sb.Append("allowed_ip=").Append(ip).Append('\n');
                    break;
                case PeerChange.Kick k:
                    sb.Append("update_only=true\nendpoint=").Append(k.Endpoint).Append('\n');
                    break;
            }
        }
        return sb.Append('\n').ToString();
    }

    internal static InterfaceState ParseGet(IReadOnlyList<string> lines)
    {
        WireGuardKey? priv = null;
        int port = 0;
        var peers = new List<PeerState>();
        var allowed = new List<IPNetwork>();
        // The peer being read (a get of 10,000 peers is 80,000 lines: no string per key or value, no record per line).
        WireGuardKey? key = null, psk = null;
        string? endpoint = null;
        long hsSec = 0, hsNsec = 0, rx = 0, tx = 0;
        int keepalive = 0;

        void Flush()
        {
            if (key is null)
                return;
            peers.Add(new PeerState
            {
                PublicKey = key,
                PresharedKey = psk,
                Endpoint = endpoint,
                RxBytes = rx,
                TxBytes = tx,
                PersistentKeepalive = keepalive,
                AllowedIps = [.. allowed],
                LastHandshake = hsSec == 0 && hsNsec == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(hsSec).AddTicks(hsNsec / 100),
            });
            allowed.Clear();
            key = psk = null;
            endpoint = null;
            hsSec = hsNsec = rx = tx = 0;
            keepalive = 0;
        }

        static long Number(ReadOnlySpan<char> value) => long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);

        foreach (var line in lines)
        {
            int eq = line.IndexOf('=');
            if (eq <= 0)
                continue;
            ReadOnlySpan<char> name = line.AsSpan(0, eq), value = line.AsSpan(eq + 1);
            switch (name)
            {
                case "private_key" when key is null:
                    priv = WireGuardKey.TryParseHex(value, out var k) && !k.IsZero ? k : null;
                    break;
                case "listen_port" when key is null:
                    port = (int)Number(value);
                    break;
                case "public_key":
                    Flush();
                    key = WireGuardKey.TryParseHex(value, out var pub) ? pub : throw new FormatException("bad public_key from UAPI");
                    break;
                case "preshared_key" when key is not null:
                    psk = WireGuardKey.TryParseHex(value, out var p) && !p.IsZero ? p : null;
                    break;
                case "endpoint" when key is not null:
                    endpoint = value.ToString();
                    break;
                case "last_handshake_time_sec":
                    hsSec = Number(value);
                    break;
                case "last_handshake_time_nsec":
                    hsNsec = Number(value);
                    break;
                case "rx_bytes" when key is not null:
                    rx = Number(value);
                    break;
                case "tx_bytes" when key is not null:
                    tx = Number(value);
                    break;
                case "persistent_keepalive_interval" when key is not null:
                    keepalive = (int)Number(value);
                    break;
                case "allowed_ip":
                    allowed.Add(IPNetwork.Parse(value));
                    break;
            }
        }
        Flush();
        return new InterfaceState { PrivateKey = priv, ListenPort = port, Peers = peers };
    }

    private static void Check(IReadOnlyList<string> response)
    {
        var errno = response.FirstOrDefault(l => l.StartsWith("errno=", StringComparison.Ordinal));
        if (errno is null)
            throw new IOException("the userspace WireGuard interface gave no answer");
        if (errno != "errno=0")
            throw new IOException($"the userspace WireGuard interface refused the change ({errno})");
    }

    // The answer's lines up to the empty line that ends it, or up to (without) the first line until accepts.
    private List<string> Exchange(string request, Func<string, bool>? until = null)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        {
            // A hung engine must not hang the CLI: fail, and the caller rolls back.
            SendTimeout = (int)Timeout.TotalMilliseconds,
            ReceiveTimeout = (int)Timeout.TotalMilliseconds,
        };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot reach interface {Name} at {SocketPath}: {e.SocketErrorCode}");
        }
        using var stream = new NetworkStream(socket, ownsSocket: false);
        stream.Write(Encoding.ASCII.GetBytes(request));
        stream.Flush();
        // A get of 10,000 peers is about 3 MB: read it in large pieces.
        var reader = new StreamReader(stream, Encoding.ASCII, detectEncodingFromByteOrderMarks: false, bufferSize: 64 * 1024);
        var lines = new List<string>();
        try
        {
            while (reader.ReadLine() is { } line)
            {
                if (line.Length == 0 || until?.Invoke(line) == true)
                    break;
                lines.Add(line);
            }
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            throw new IOException($"interface {Name} did not answer within {Timeout.TotalSeconds:0} s");
        }
        return lines;
    }
}
