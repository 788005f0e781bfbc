using System.Globalization;
using System.Net;
using System.Text;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Devices;

/// <summary>
/// A WireGuard interface driven through wg(8): the kernel module (wg speaks netlink to it), and
/// equally any userspace interface that wg can reach. Keys go through stdin, never argv.
/// </summary>
public sealed class WgToolDevice(string name) : IWireGuardDevice
{
    public string Name { get; } = name;

    public InterfaceState Read()
    {
        var r = Sys.Run("wg", ["show", Name, "dump"]);
        if (r.ExitCode != 0)
            throw new IOException($"wg show {Name}: {r.FirstErrorLine}");
        return ParseDump(r.StdOut);
    }

    /// <summary>The key alone ('wg show IFACE private-key'): no line per peer to print and parse.</summary>
    public WireGuardKey? ReadPrivateKey()
    {
        var r = Sys.Run("wg", ["show", Name, "private-key"]);
        if (r.ExitCode != 0)
            throw new IOException($"wg show {Name} private-key: {r.FirstErrorLine}");
        return WireGuardKey.TryParseBase64(r.StdOut.Trim(), out var key) ? key : null;   // "(none)": no key set
    }

    public void Apply(DeviceChanges changes)
    {
        if (changes.IsEmpty)
            return;
        // Interface settings and new or changed peers as one config on stdin: keys never on argv.
        // wg opens it as /proc/self/fd/0: /dev/stdin exists only where udev or systemd made it.
        var conf = new StringBuilder("[Interface]\n");
        if (changes.PrivateKey is { } pk)
            conf.Append("PrivateKey = ").Append(pk.ToBase64()).Append('\n');
        if (changes.ListenPort is { } port)
            conf.Append("ListenPort = ").Append(port.ToString(CultureInfo.InvariantCulture)).Append('\n');
        var upserts = changes.Peers.OfType<PeerChange.Upsert>().ToList();
        foreach (var u in upserts)
        {
            conf.Append("\n[Peer]\nPublicKey = ").Append(u.Spec.PublicKey.ToBase64())
                .Append("\nPresharedKey = ").Append(u.Spec.PresharedKey.ToBase64()).Append('\n');
        }
        if (changes.PrivateKey is not null || changes.ListenPort is not null || upserts.Count > 0)
            Sys.Check("wg", ["addconf", Name, "/proc/self/fd/0"], conf.ToString(), $"wg addconf {Name}");

        // Allowed IPs are replaced (addconf would only add), removals and kicks by public key.
        var args = new List<string> { "set", Name };
        foreach (var change in changes.Peers)
        {
            switch (change)
            {
                case PeerChange.Upsert u:
                    args.AddRange(["peer", u.PublicKey.ToBase64(), "allowed-ips", string.Join(',', u.Spec.AllowedIps)]);
                    break;
                case PeerChange.Remove r:
                    args.AddRange(["peer", r.PublicKey.ToBase64(), "remove"]);
                    break;
            }
        }
        if (args.Count > 2)
            Sys.Check("wg", args, what: $"wg set {Name}");
        var kicks = changes.Peers.OfType<PeerChange.Kick>().ToList();
        if (kicks.Count > 0)
        {
            var on = new List<string> { "set", Name };
            var off = new List<string> { "set", Name };
            foreach (var k in kicks)
            {
                on.AddRange(["peer", k.PublicKey.ToBase64(), "endpoint", k.Endpoint, "persistent-keepalive", "1"]);
                off.AddRange(["peer", k.PublicKey.ToBase64(), "persistent-keepalive", "off"]);
            }
            Sys.Check("wg", on, what: $"wg set {Name}");
            Sys.Check("wg", off, what: $"wg set {Name}");
        }
    }

    /// <summary>Parses `wg show IFACE dump`: one interface line, then one tab-separated line per peer.</summary>
    internal static InterfaceState ParseDump(string dump)
    {
        var lines = dump.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
            throw new FormatException("empty wg dump");
        var head = lines[0].Split('\t');
        var peers = new List<PeerState>();
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split('\t');
            if (f.Length < 8)
                continue;
            long hs = long.Parse(f[4], CultureInfo.InvariantCulture);
            peers.Add(new PeerState
            {
                PublicKey = WireGuardKey.ParseBase64(f[0]),
                PresharedKey = f[1] == "(none)" ? null : WireGuardKey.ParseBase64(f[1]),
                Endpoint = f[2] == "(none)" ? null : f[2],
                AllowedIps = f[3] == "(none)" ? [] : [.. f[3].Split(',').Select(IPNetwork.Parse)],
                LastHandshake = hs == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(hs),
                RxBytes = long.Parse(f[5], CultureInfo.InvariantCulture),
                TxBytes = long.Parse(f[6], CultureInfo.InvariantCulture),
                PersistentKeepalive = f[7] == "off" ? 0 : int.Parse(f[7], CultureInfo.InvariantCulture),
            });
        }
        return new InterfaceState
        {
            PrivateKey = head[0] == "(none)" ? null : WireGuardKey.ParseBase64(head[0]),
            ListenPort = int.Parse(head[2], CultureInfo.InvariantCulture),
            Peers = peers,
        };
    }
}
