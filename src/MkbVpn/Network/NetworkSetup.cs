using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using MkbVpn.Clients;

namespace MkbVpn.Network;

/// <summary>
/// The host side of the VPN: the interface's addresses and MTU, IP forwarding, and the
/// nftables table (inet mkb_vpn) that lets clients reach the internal networks.
/// Everything here is idempotent: running it twice leaves the same state.
/// </summary>
public static class NetworkSetup
{
    public const string TableName = "mkb_vpn";
    private const string Forward4 = "/proc/sys/net/ipv4/ip_forward";
    private const string Forward6 = "/proc/sys/net/ipv6/conf/all/forwarding";

    public static bool LinkExists(string name) => Directory.Exists($"/sys/class/net/{name}");

    public static void ConfigureLink(ServerSettings s)
    {
        if (s.Subnet4 is { } s4)
            Sys.Check("ip", ["-4", "address", "replace", $"{s.ServerAddress4}/{s4.PrefixLength}", "dev", s.Interface]);
        if (s.Subnet6 is { } s6)
            Sys.Check("ip", ["-6", "address", "replace", $"{s.ServerAddress6}/{s6.PrefixLength}", "dev", s.Interface]);
        Sys.Check("ip", ["link", "set", "dev", s.Interface, "mtu", s.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture), "up"]);
    }

    public static void DeleteLink(string name)
    {
        if (LinkExists(name))
            Sys.Check("ip", ["link", "del", "dev", name]);
    }

    /// <summary>Turns forwarding on; returns the previous values so that down can restore them.</summary>
    public static string EnableForwarding(bool v6)
    {
        string before = $"{Read(Forward4)},{(v6 ? Read(Forward6) : "")}";
        File.WriteAllText(Forward4, "1");
        if (v6)
            File.WriteAllText(Forward6, "1");
        return before;
    }

    public static void RestoreForwarding(string? before)
    {
        if (before is null)
            return;
        var parts = before.Split(',');
        if (parts[0] is "0" or "1")
            File.WriteAllText(Forward4, parts[0]);
        if (parts.Length > 1 && parts[1] is "0" or "1")
            File.WriteAllText(Forward6, parts[1]);
    }

    private static string Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "";

    /// <summary>
    /// The whole table as one nft script; loaded atomically (old table replaced in the same
    /// transaction). Traffic from clients to the internal networks or to the server's tunnel
    /// address goes through the chain "access": the rules for everyone, then the chain the
    /// client's address maps to (its group's or its own); what no rule allows is dropped and counted.
    /// </summary>
    public static string RenderRules(ServerSettings s, AccessFirewall access)
    {
        string iface = s.Interface;
        var v4 = s.InternalNetworks.Where(n => n.BaseAddress.AddressFamily == AddressFamily.InterNetwork).ToList();
        var v6 = s.InternalNetworks.Where(n => n.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6).ToList();
        var sb = new StringBuilder();
        sb.Append($"table inet {TableName}\ndelete table inet {TableName}\n");
        sb.Append($"table inet {TableName} {{\n");
        sb.Append("  set internal4 {\n    type ipv4_addr\n    flags interval\n");
        if (v4.Count > 0)
            sb.Append("    elements = { ").Append(string.Join(", ", v4)).Append(" }\n");
        sb.Append("  }\n");
        sb.Append("  set internal6 {\n    type ipv6_addr\n    flags interval\n");
        if (v6.Count > 0)
            sb.Append("    elements = { ").Append(string.Join(", ", v6)).Append(" }\n");
        sb.Append("  }\n");
        access.RenderDeclarations(sb);
        sb.Append("  chain access {\n");
        sb.Append($"    jump {AccessFirewall.Everyone}\n");
        sb.Append("    ip saddr vmap @clients4\n");
        sb.Append("    ip6 saddr vmap @clients6\n");
        sb.Append("    counter drop comment \"no access rule allows this\"\n");
        sb.Append("  }\n");
        sb.Append("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
        sb.Append($"    iifname \"{iface}\" oifname \"{iface}\" {(s.ClientToClient ? "accept" : "drop")}\n");
        sb.Append($"    iifname \"{iface}\" ip daddr @internal4 goto access\n");
        sb.Append($"    iifname \"{iface}\" ip6 daddr @internal6 goto access\n");
        sb.Append($"    iifname \"{iface}\" {(s.FullTunnel ? "accept" : "drop")}\n");
        sb.Append($"    oifname \"{iface}\" ct state established,related accept\n");
        sb.Append("  }\n");
        // The host itself: its addresses on the internal networks (a resolver on the bridge) and
        // its tunnel address follow the same rules; replies to what the host started pass.
        sb.Append("  chain input {\n    type filter hook input priority filter; policy accept;\n");
        sb.Append($"    iifname \"{iface}\" ct state established,related accept\n");
        sb.Append($"    iifname \"{iface}\" ip daddr @internal4 goto access\n");
        sb.Append($"    iifname \"{iface}\" ip6 daddr @internal6 goto access\n");
        if (s.ServerAddress4 is { } sa4)
            sb.Append($"    iifname \"{iface}\" ip daddr {sa4} goto access\n");
        if (s.ServerAddress6 is { } sa6)
            sb.Append($"    iifname \"{iface}\" ip6 daddr {sa6} goto access\n");
        sb.Append("  }\n");
        sb.Append("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        if (s.Subnet4 is { } s4)
        {
            if (s.FullTunnel)
                sb.Append($"    ip saddr {s4} oifname != \"{iface}\" masquerade\n");
            else if (s.Masquerade)
                sb.Append($"    ip saddr {s4} ip daddr @internal4 oifname != \"{iface}\" masquerade\n");
        }
        if (s.Subnet6 is { } s6)
        {
            if (s.FullTunnel)
                sb.Append($"    ip6 saddr {s6} oifname != \"{iface}\" masquerade\n");
            else if (s.Masquerade)
                sb.Append($"    ip6 saddr {s6} ip6 daddr @internal6 oifname != \"{iface}\" masquerade\n");
        }
        sb.Append("  }\n}\n");
        return sb.ToString();
    }

    public static void InstallRules(ServerSettings s, AccessFirewall access) =>
        Sys.Check("nft", ["-f", "-"], RenderRules(s, access), "nft (installing the mkb_vpn table)");

    /// <summary>
    /// Applies the difference between two access models to the live table, in one nft transaction.
    /// When the live table does not match what we expected (it was edited by hand, or is missing),
    /// the whole table is loaded instead (atomically; established connections are kept by conntrack):
    /// <paramref name="whole"/>, every client's part, since <paramref name="to"/> may hold only the changed clients.
    /// </summary>
    public static void ApplyAccess(ServerSettings s, AccessFirewall from, AccessFirewall to, Func<AccessFirewall> whole)
    {
        ArgumentNullException.ThrowIfNull(whole);
        string diff = AccessFirewall.Diff(from, to, TableName);
        if (diff.Length == 0)
            return;
        var r = Sys.Run("nft", ["-f", "-"], diff);
        if (r.ExitCode != 0)
            InstallRules(s, whole());
    }

    public static void RemoveRules()
    {
        if (Sys.Which("nft") is null)
            return;
        var r = Sys.Run("nft", ["list", "table", "inet", TableName]);
        if (r.ExitCode == 0)
            Sys.Check("nft", ["delete", "table", "inet", TableName]);
    }

    /// <summary>
    /// The host's private bridge networks (Incus, LXD, libvirt): the internal networks clients
    /// should reach by default. Docker's bridges are left out: their containers are not meant
    /// to be reached from outside.
    /// </summary>
    public static IReadOnlyList<(string Interface, IPNetwork Network, IPAddress HostAddress)> DetectBridgeNetworks()
    {
        var found = new List<(string, IPNetwork, IPAddress)>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            string name = nic.Name;
            if (!Directory.Exists($"/sys/class/net/{name}/bridge") || name.StartsWith("docker", StringComparison.Ordinal) || name.StartsWith("br-", StringComparison.Ordinal))
                continue;
            foreach (var ua in nic.GetIPProperties().UnicastAddresses)
            {
                var a = ua.Address;
                if (a.IsIPv6LinkLocal || IPAddress.IsLoopback(a))
                    continue;
                if (!IsPrivate(a))
                    continue;
                found.Add((name, new IPNetwork(Addressing.Cidr.Mask(a, ua.PrefixLength), ua.PrefixLength), a));
            }
        }
        return found;
    }

    public static bool IsPrivate(IPAddress a)
    {
        if (a.AddressFamily == AddressFamily.InterNetworkV6)
            return (a.GetAddressBytes()[0] & 0xFE) == 0xFC;   // fc00::/7 unique local
        var b = a.GetAddressBytes();
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) || (b[0] == 100 && (b[1] & 0xC0) == 64);
    }

    /// <summary>Routes the host already has (for refusing a VPN subnet that collides with one).</summary>
    public static IReadOnlyList<IPNetwork> HostNetworks()
    {
        var list = new List<IPNetwork>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var ua in nic.GetIPProperties().UnicastAddresses)
            {
                if (IPAddress.IsLoopback(ua.Address) || ua.Address.IsIPv6LinkLocal)
                    continue;
                list.Add(new IPNetwork(Addressing.Cidr.Mask(ua.Address, ua.PrefixLength), ua.PrefixLength));
            }
        }
        return list;
    }
}
