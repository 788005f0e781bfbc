using System.Net;
using MkbVpn.Clients;

namespace MkbVpn.Network;

/// <summary>The host side of the VPN as the service sees it: links, forwarding, the nftables table, the host's networks.</summary>
public interface IHostNetwork
{
    bool LinkExists(string name);

    void ConfigureLink(ServerSettings s);

    void DeleteLink(string name);

    /// <summary>Turns forwarding on; returns the previous values so that down can restore them.</summary>
    string EnableForwarding(bool v6);

    void RestoreForwarding(string? before);

    /// <summary>Loads the whole table (atomically).</summary>
    void InstallRules(ServerSettings s, AccessFirewall access);

    /// <summary>Applies the difference between two access models to the live table. <paramref name="from"/> and
    /// <paramref name="to"/> may describe only the clients a change concerns; when the live table does not take the
    /// difference (edited by hand, missing), <paramref name="whole"/> (everyone, after the change) is loaded instead.</summary>
    void ApplyAccess(ServerSettings s, AccessFirewall from, AccessFirewall to, Func<AccessFirewall> whole);

    void RemoveRules();

    IReadOnlyList<(string Interface, IPNetwork Network, IPAddress HostAddress)> DetectBridgeNetworks();

    IReadOnlyList<IPNetwork> HostNetworks();
}

/// <summary>This host's network through ip(8), nft(8) and /proc (<see cref="NetworkSetup"/>).</summary>
public sealed class LiveHostNetwork : IHostNetwork
{
    public static readonly LiveHostNetwork Instance = new();

    public bool LinkExists(string name) => NetworkSetup.LinkExists(name);

    public void ConfigureLink(ServerSettings s) => NetworkSetup.ConfigureLink(s);

    public void DeleteLink(string name) => NetworkSetup.DeleteLink(name);

    public string EnableForwarding(bool v6) => NetworkSetup.EnableForwarding(v6);

    public void RestoreForwarding(string? before) => NetworkSetup.RestoreForwarding(before);

    public void InstallRules(ServerSettings s, AccessFirewall access) => NetworkSetup.InstallRules(s, access);

    public void ApplyAccess(ServerSettings s, AccessFirewall from, AccessFirewall to, Func<AccessFirewall> whole) => NetworkSetup.ApplyAccess(s, from, to, whole);

    public void RemoveRules() => NetworkSetup.RemoveRules();

    public IReadOnlyList<(string Interface, IPNetwork Network, IPAddress HostAddress)> DetectBridgeNetworks() => NetworkSetup.DetectBridgeNetworks();

    public IReadOnlyList<IPNetwork> HostNetworks() => NetworkSetup.HostNetworks();
}
