using System.Net;
using MkbVpn.Network;

namespace MkbVpn.Tests;

public class NetworkSetupTests
{
    [Fact]
    public void Split_tunnel_rules_without_masquerade()
    {
        var s = Fixtures.Server(s => s with { InternalNetworks = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("fd00:aaaa::/48")] });
        var nft = Render(s);
        // Atomic replace: declare (so delete cannot fail), delete, re-create.
        Assert.StartsWith("table inet mkb_vpn\ndelete table inet mkb_vpn\ntable inet mkb_vpn {\n", nft);
        Assert.Contains("elements = { 198.51.100.0/24 }", nft);
        Assert.Contains("elements = { fd00:aaaa::/48 }", nft);
        Assert.Contains("iifname \"mkbunit0\" oifname \"mkbunit0\" drop\n", nft);
        // Traffic to the internal networks goes through the access rules; the default rule lets everyone in.
        Assert.Contains("iifname \"mkbunit0\" ip daddr @internal4 goto access\n", nft);
        Assert.Contains("iifname \"mkbunit0\" ip6 daddr @internal6 goto access\n", nft);
        Assert.Contains("ip daddr @internal4 accept comment \"rule 1\"", nft);
        Assert.Contains("ip6 daddr @internal6 accept comment \"rule 1\"", nft);
        Assert.Contains("    iifname \"mkbunit0\" drop\n", nft);
        Assert.Contains("oifname \"mkbunit0\" ct state established,related accept\n", nft);
        Assert.DoesNotContain("masquerade", nft);
        // Order matters: client-to-client before the internal accepts, the catch-all drop last.
        Assert.True(nft.IndexOf("oifname \"mkbunit0\" drop", StringComparison.Ordinal) < nft.IndexOf("@internal4 goto access", StringComparison.Ordinal));
        Assert.True(nft.IndexOf("@internal6 goto access", StringComparison.Ordinal) < nft.IndexOf("    iifname \"mkbunit0\" drop\n", StringComparison.Ordinal));
        AssertBalancedBraces(nft);
    }

    [Fact]
    public void Client_to_client_accepts()
    {
        var nft = Render(Fixtures.Server(s => s with { ClientToClient = true }));
        Assert.Contains("iifname \"mkbunit0\" oifname \"mkbunit0\" accept\n", nft);
    }

    [Fact]
    public void Masquerade_only_towards_internal_networks()
    {
        var nft = Render(Fixtures.Server(s => s with { Masquerade = true }));
        Assert.Contains("ip saddr 203.0.113.0/24 ip daddr @internal4 oifname != \"mkbunit0\" masquerade\n", nft);
        Assert.Contains("ip6 saddr fd00:1234:5678::/64 ip6 daddr @internal6 oifname != \"mkbunit0\" masquerade\n", nft);
    }

    [Fact]
    public void Full_tunnel_forwards_and_masquerades_everything()
    {
        var nft = Render(Fixtures.Server(s => s with { FullTunnel = true }));
        Assert.Contains("    iifname \"mkbunit0\" accept\n", nft);
        Assert.Contains("ip saddr 203.0.113.0/24 oifname != \"mkbunit0\" masquerade\n", nft);
        Assert.Contains("ip6 saddr fd00:1234:5678::/64 oifname != \"mkbunit0\" masquerade\n", nft);
        Assert.DoesNotContain("daddr @internal4 oifname", nft);
    }

    [Fact]
    public void No_ipv6_subnet_and_no_internal_networks()
    {
        var nft = Render(Fixtures.Server(s => s with { Subnet6 = null, InternalNetworks = [], FullTunnel = true }));
        Assert.DoesNotContain("elements", nft);
        Assert.DoesNotContain("ip6 saddr fd", nft);
        Assert.Contains("ip saddr 203.0.113.0/24", nft);
        AssertBalancedBraces(nft);
    }

    [Fact]
    public void Rendering_is_deterministic()
    {
        var s = Fixtures.Server();
        Assert.Equal(Render(s), Render(s));
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("172.16.0.1", true)]
    [InlineData("172.31.255.1", true)]
    [InlineData("172.32.0.1", false)]
    [InlineData("192.168.1.1", true)]
    [InlineData("100.64.0.1", true)]
    [InlineData("100.128.0.1", false)]
    [InlineData("203.0.113.1", false)]
    [InlineData("fd00::1", true)]
    [InlineData("fc00::1", true)]
    [InlineData("2001:db8::1", false)]
    public void IsPrivate(string ip, bool expected) => Assert.Equal(expected, NetworkSetup.IsPrivate(IPAddress.Parse(ip)));

    /// <summary>The table for a server with init's default rules and no clients.</summary>
    internal static string Render(Clients.ServerSettings s) =>
        NetworkSetup.RenderRules(s, AccessFirewall.Build(new Access.AccessPolicy(s, [], [], [], AccessTests.DefaultRules)));

    private static void AssertBalancedBraces(string text) =>
        Assert.Equal(text.Count(c => c == '{'), text.Count(c => c == '}'));
}
