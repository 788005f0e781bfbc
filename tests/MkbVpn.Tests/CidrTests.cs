using System.Net;
using MkbVpn.Addressing;

namespace MkbVpn.Tests;

public class CidrTests
{
    [Theory]
    [InlineData("203.0.113.0/24", "203.0.113.0/24")]
    [InlineData(" 198.51.100.0/25 ", "198.51.100.0/25")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("203.0.113.7/32", "203.0.113.7/32")]
    [InlineData("fd00:1234:5678::/64", "fd00:1234:5678::/64")]
    [InlineData("FD00:1234:5678:0::/64", "fd00:1234:5678::/64")]
    [InlineData("fd00::/8", "fd00::/8")]
    [InlineData("::/0", "::/0")]
    public void Valid_networks_parse_to_the_canonical_form(string text, string expected) =>
        Assert.Equal(IPNetwork.Parse(expected), Cidr.ParseNetwork(text, "--subnet"));

    [Theory]
    [InlineData("203.0.113.5/24", "203.0.113.0/24")]
    [InlineData("198.51.100.130/25", "198.51.100.128/25")]
    [InlineData("fd00:1234:5678::1/64", "fd00:1234:5678::/64")]
    public void Host_bits_set_suggests_the_canonical_network(string text, string canonical)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseNetwork(text, "--subnet"));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.StartsWith("--subnet: ", e.Message);
        Assert.Contains("host bits", e.Message);
        Assert.Contains($"did you mean {canonical}?", e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("203.0.113.0/33", "prefix length 33 is larger than 32")]
    [InlineData("fd00::/129", "prefix length 129 is larger than 128")]
    public void Prefix_too_long_is_refused(string text, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseNetwork(text, "--subnet"));
        Assert.Contains(expected, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("203.0.113.0")]          // no prefix
    [InlineData("203.0.113.0/")]
    [InlineData("203.0.113.0/-1")]
    [InlineData("203.0.113.0/+8")]
    [InlineData("203.0.113.0/x")]
    [InlineData("203.0.113.0/ 24")]
    [InlineData("vpn.example.com/24")]
    [InlineData("203.0.113.256/24")]
    [InlineData("fe80::%eth0/64")]       // scoped
    public void Malformed_networks_are_refused_with_an_example(string text)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseNetwork(text, "--subnet"));
        Assert.Contains("CIDR", e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Empty_network_is_refused(string text)
    {
        Assert.False(Cidr.TryParseNetwork(text, out _, out var error));
        Assert.Contains("empty", error);
    }

    [Fact]
    public void Ipv4_mapped_ipv6_is_refused()
    {
        Assert.False(Cidr.TryParseNetwork("::ffff:203.0.113.0/120", out _, out var error));
        Assert.Contains("IPv4-mapped", error);
    }

    [Fact]
    public void Overlaps_is_symmetric_and_family_aware()
    {
        var a = IPNetwork.Parse("203.0.113.0/24");
        var b = IPNetwork.Parse("203.0.113.128/25");
        var c = IPNetwork.Parse("198.51.100.0/24");
        var d = IPNetwork.Parse("fd00::/8");
        Assert.True(Cidr.Overlaps(a, b));
        Assert.True(Cidr.Overlaps(b, a));
        Assert.False(Cidr.Overlaps(a, c));
        Assert.False(Cidr.Overlaps(a, d));
        Assert.True(Cidr.Overlaps(d, IPNetwork.Parse("fd00:1234::/32")));
    }

    [Theory]
    [InlineData("203.0.113.77", 24, "203.0.113.0")]
    [InlineData("203.0.113.77", 0, "0.0.0.0")]
    [InlineData("203.0.113.77", 32, "203.0.113.77")]
    [InlineData("fd00:1234:5678:9abc::1", 48, "fd00:1234:5678::")]
    public void Mask_clears_host_bits(string ip, int prefix, string expected) =>
        Assert.Equal(IPAddress.Parse(expected), Cidr.Mask(IPAddress.Parse(ip), prefix));

    [Theory]
    [InlineData("1", 1)]
    [InlineData("51820", 51820)]
    [InlineData("65535", 65535)]
    public void Valid_ports(string text, int port) => Assert.Equal(port, Cidr.ParsePort(text, "--port"));

    [Theory]
    [InlineData("0")]
    [InlineData("65536")]
    [InlineData("70000")]
    [InlineData("-1")]
    [InlineData("")]
    [InlineData("http")]
    [InlineData("99999999999999999999")]
    public void Invalid_ports(string text)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParsePort(text, "--port"));
        Assert.Contains("1-65535", e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("vpn.example.com", "vpn.example.com", 51820)]
    [InlineData("vpn.example.com:443", "vpn.example.com", 443)]
    [InlineData("  vpn.example.com:443  ", "vpn.example.com", 443)]
    [InlineData("vpn.example.com.", "vpn.example.com.", 51820)]
    [InlineData("localhost", "localhost", 51820)]
    [InlineData("a-b.example", "a-b.example", 51820)]
    [InlineData("203.0.113.1", "203.0.113.1", 51820)]
    [InlineData("203.0.113.1:1", "203.0.113.1", 1)]
    [InlineData("198.51.100.7:65535", "198.51.100.7", 65535)]
    [InlineData("[2001:db8::1]:51821", "2001:db8::1", 51821)]
    [InlineData("[2001:db8::1]", "2001:db8::1", 51820)]
    [InlineData("2001:db8::1", "2001:db8::1", 51820)]
    public void Valid_endpoints(string text, string host, int port) =>
        Assert.Equal((host, port), Cidr.ParseEndpoint(text, 51820));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("vpn.example.com:0", "1-65535")]
    [InlineData("vpn.example.com:70000", "1-65535")]
    [InlineData("vpn.example.com:", "1-65535")]
    [InlineData("203.0.113.1:0", "1-65535")]
    [InlineData("[2001:db8::1]:0", "1-65535")]
    [InlineData("[2001:db8::1]:70000", "1-65535")]
    [InlineData("[2001:db8::1", "without ']'")]
    [InlineData("[2001:db8::1]51820", "expected ':PORT'")]
    [InlineData("[203.0.113.1]:51820", "not an IPv6 address")]
    [InlineData("[vpn.example.com]:51820", "not an IPv6 address")]
    [InlineData("2001:db8::zz:1", "[ADDRESS]:PORT")]
    [InlineData("-vpn.example.com", "not a valid host name")]
    [InlineData("vpn-.example.com", "not a valid host name")]
    [InlineData("vpn..example.com", "not a valid host name")]
    [InlineData("vpn_1.example.com", "not a valid host name")]
    [InlineData("vpn example.com", "not a valid host name")]
    [InlineData("vpn.exämple.com", "not a valid host name")]
    [InlineData("300.1.1.1", "not a valid host name")]
    [InlineData("203.0.113", "not a valid host name")]   // would parse as 203.0.0.113
    [InlineData("1", "not a valid host name")]
    [InlineData(":51820", "not a valid host name")]
    public void Invalid_endpoints_give_one_line_messages(string text, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseEndpoint(text, 51820));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.StartsWith("endpoint: ", e.Message);
        Assert.Contains(expected, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Host_name_longer_than_253_or_label_longer_than_63_is_refused()
    {
        string label63 = new('a', 63);
        Assert.Equal(($"{label63}.example", 1), Cidr.ParseEndpoint($"{label63}.example:1", 51820));
        Assert.Throws<UserInputException>(() => Cidr.ParseEndpoint($"{label63}a.example", 51820));
        string tooLong = string.Join('.', Enumerable.Repeat(new string('b', 50), 6));   // 305 chars
        Assert.Throws<UserInputException>(() => Cidr.ParseEndpoint(tooLong, 51820));
    }

    [Theory]
    [InlineData("vpn.example.com", 51820, "vpn.example.com:51820")]
    [InlineData("203.0.113.1", 443, "203.0.113.1:443")]
    [InlineData("2001:db8::1", 51820, "[2001:db8::1]:51820")]
    public void FormatEndpoint_brackets_ipv6(string host, int port, string expected) =>
        Assert.Equal(expected, Cidr.FormatEndpoint(host, port));

    [Theory]
    [InlineData("203.0.113.1")]
    [InlineData(" 2001:db8::53 ")]
    public void ParseAddress_accepts_plain_addresses(string text) =>
        Assert.Equal(IPAddress.Parse(text.Trim()), Cidr.ParseAddress(text, "--dns"));

    [Theory]
    [InlineData("203.0.113.1/32")]
    [InlineData("dns.example.com")]
    [InlineData("fe80::1%eth0")]
    public void ParseAddress_refuses_networks_names_and_scopes(string text)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseAddress(text, "--dns"));
        Assert.Contains("is not an IP address", e.Message);
        Assert.StartsWith("--dns: ", e.Message);
    }

    [Theory]
    [InlineData("8.8")]
    [InlineData("1")]
    [InlineData("203.0.113")]
    public void ParseAddress_refuses_ipv4_shorthand(string text) =>
        Assert.Throws<UserInputException>(() => Cidr.ParseAddress(text, "--dns"));

    [Theory]
    [InlineData("vpn\nexample.com")]
    [InlineData("vpn.example.com:\n1")]
    public void Endpoint_messages_stay_one_line_for_control_characters(string text)
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseEndpoint(text, 51820));
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Network_messages_stay_one_line_for_control_characters()
    {
        var e = Assert.Throws<UserInputException>(() => Cidr.ParseNetwork("203.0.113.0\n/24", "--subnet"));
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("[fe80::1%2]:51820")]
    [InlineData("fe80::1%2")]
    public void Scoped_ipv6_endpoint_is_refused(string text) =>
        Assert.Throws<UserInputException>(() => Cidr.ParseEndpoint(text, 51820));

    [Fact]
    public void Bracketed_ipv6_endpoint_is_normalised_like_the_bare_form() =>
        Assert.Equal(Cidr.ParseEndpoint("2001:DB8:0::1", 1).Host, Cidr.ParseEndpoint("[2001:DB8:0::1]:1", 51820).Host);
}
