using System.Net;
using MkbVpn.Clients;
using MkbVpn.Configs;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

public class ConfigTests
{
    private static WgQuickConfig RenderAndParse(ServerSettings s, Client c) => WgQuickConfig.Parse(ClientConfig.Render(s, c));

    [Fact]
    public void Client_config_round_trips_every_field()
    {
        var s = Fixtures.Server();
        var c = Fixtures.Client("alice");
        var text = ClientConfig.Render(s, c);
        var conf = WgQuickConfig.Parse(text);

        Assert.Equal(2, conf.Sections.Count);
        var i = conf.Interface!;
        Assert.Equal(c.PrivateKey, WireGuardKey.ParseBase64(i["PrivateKey"]!));
        Assert.Equal(["203.0.113.2/32", "fd00:1234:5678::2/128"], i.All("Address"));
        Assert.Equal(["203.0.113.1"], i.All("DNS"));
        Assert.Equal("1420", i["MTU"]);
        Assert.Equal(["PrivateKey", "Address", "DNS", "MTU"], i.Entries.Select(e => e.Key));

        var p = Assert.Single(conf.Peers);
        Assert.Equal(s.PublicKey, WireGuardKey.ParseBase64(p["PublicKey"]!));
        Assert.Equal(c.PresharedKey, WireGuardKey.ParseBase64(p["PresharedKey"]!));
        Assert.Equal(["203.0.113.0/24", "fd00:1234:5678::/64", "198.51.100.0/24"], p.All("AllowedIPs"));
        Assert.Equal("vpn.example.com:51820", p["Endpoint"]);
        Assert.Equal("25", p["PersistentKeepalive"]);
        Assert.Equal(["PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"], p.Entries.Select(e => e.Key));

        // Header comments carry the name and creation date; they are ignored by the parser.
        Assert.StartsWith("# mkb-vpn client 'alice' (created 2025-03-04)\n", text);
        Assert.Contains("wg-quick up ./alice.conf", text);
        // Re-rendering the parsed config gives the same body.
        Assert.EndsWith(conf.ToString(), text);
    }

    [Fact]
    public void Server_private_key_never_appears_in_a_client_config()
    {
        var s = Fixtures.Server();
        var text = ClientConfig.Render(s, Fixtures.Client());
        Assert.DoesNotContain(s.PrivateKey.ToBase64(), text);
    }

    [Fact]
    public void Dns_line_is_omitted_when_the_server_has_none()
    {
        var s = Fixtures.Server(x => x with { Dns = [] });
        var conf = RenderAndParse(s, Fixtures.Client());
        Assert.Null(conf.Interface!["DNS"]);
        Assert.DoesNotContain("DNS", ClientConfig.Render(s, Fixtures.Client()));
    }

    [Fact]
    public void Per_client_empty_dns_overrides_the_server_default()
    {
        var conf = RenderAndParse(Fixtures.Server(), Fixtures.Client(change: c => c with { Dns = [] }));
        Assert.Null(conf.Interface!["DNS"]);
    }

    [Fact]
    public void Per_client_dns_keepalive_and_allowed_ips_override_the_server()
    {
        var c = Fixtures.Client(change: c => c with
        {
            Dns = ["198.51.100.53", "fd00:1234:5678::53"],
            AllowedIps = [IPNetwork.Parse("198.51.100.0/26")],
            Keepalive = 7,
        });
        var conf = RenderAndParse(Fixtures.Server(), c);
        Assert.Equal(["198.51.100.53", "fd00:1234:5678::53"], conf.Interface!.All("DNS"));
        var p = conf.Peers.Single();
        Assert.Equal(["198.51.100.0/26"], p.All("AllowedIPs"));
        Assert.Equal("7", p["PersistentKeepalive"]);
    }

    [Fact]
    public void Keepalive_zero_omits_the_line()
    {
        var conf = RenderAndParse(Fixtures.Server(s => s with { Keepalive = 0 }), Fixtures.Client());
        Assert.Null(conf.Peers.Single()["PersistentKeepalive"]);
        var conf2 = RenderAndParse(Fixtures.Server(), Fixtures.Client(change: c => c with { Keepalive = 0 }));
        Assert.Null(conf2.Peers.Single()["PersistentKeepalive"]);
    }

    [Fact]
    public void Full_tunnel_routes_everything()
    {
        var conf = RenderAndParse(Fixtures.Server(s => s with { FullTunnel = true }), Fixtures.Client());
        Assert.Equal(["0.0.0.0/0", "::/0"], conf.Peers.Single().All("AllowedIPs"));
    }

    [Fact]
    public void Full_tunnel_without_ipv6_routes_only_ipv4()
    {
        var s = Fixtures.Server(s => s with { FullTunnel = true, Subnet6 = null });
        var c = Fixtures.Client(change: c => c with { Address6 = null });
        var conf = RenderAndParse(s, c);
        Assert.Equal(["0.0.0.0/0"], conf.Peers.Single().All("AllowedIPs"));
        Assert.Equal(["203.0.113.2/32"], conf.Interface!.All("Address"));
    }

    [Fact]
    public void Split_tunnel_lists_vpn_subnets_and_internal_networks_without_duplicates()
    {
        var s = Fixtures.Server(s => s with
        {
            InternalNetworks = [IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("203.0.113.0/24"), IPNetwork.Parse("fd00:aaaa::/48")],
        });
        var conf = RenderAndParse(s, Fixtures.Client());
        Assert.Equal(["203.0.113.0/24", "fd00:1234:5678::/64", "198.51.100.0/24", "fd00:aaaa::/48"], conf.Peers.Single().All("AllowedIPs"));
    }

    [Fact]
    public void Ipv6_endpoint_is_bracketed()
    {
        var conf = RenderAndParse(Fixtures.Server(s => s with { EndpointHost = "2001:db8::1", EndpointPort = 443 }), Fixtures.Client());
        Assert.Equal("[2001:db8::1]:443", conf.Peers.Single()["Endpoint"]);
    }

    [Fact]
    public void Parse_handles_comments_case_repeats_and_crlf()
    {
        var conf = WgQuickConfig.Parse(
            "# top comment\r\n[interface]\r\nprivatekey = abc # trailing\r\nAddress = 203.0.113.2/32\r\nAddress = fd00::2/128, fd00::3/128\r\n\r\n[Peer]\r\nAllowedIPs=198.51.100.0/24\r\n[Peer]\r\nEndpoint = x:1\r\n");
        Assert.Equal("abc", conf.Interface!["PrivateKey"]);
        Assert.Equal(["203.0.113.2/32", "fd00::2/128", "fd00::3/128"], conf.Interface.All("address"));
        Assert.Equal(2, conf.Peers.Count());
        Assert.Equal("198.51.100.0/24", conf.Peers.First()["allowedips"]);
        Assert.Equal("x:1", conf.Peers.Last()["Endpoint"]);
    }

    [Theory]
    [InlineData("[Wat]\nA = 1\n", "line 1: unknown section [Wat]")]
    [InlineData("A = 1\n", "line 1: key outside of a section")]
    [InlineData("[Interface]\n\nnonsense\n", "line 3: expected 'Key = Value'")]
    [InlineData("[Interface]\n= 1\n", "line 2: expected 'Key = Value'")]
    public void Parse_errors_name_the_line(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => WgQuickConfig.Parse(text));
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void Section_Add_skips_null_and_empty_values()
    {
        var conf = new WgQuickConfig();
        conf.AddSection("Interface").Add("A", null).Add("B", "").Add("C", 3);
        Assert.Equal("[Interface]\nC = 3\n", conf.ToString());
    }

    [Fact]
    public void Default_client_allowed_ips_split_without_ipv6()
    {
        var s = Fixtures.Server(s => s with { Subnet6 = null, InternalNetworks = [] });
        Assert.Equal([IPNetwork.Parse("203.0.113.0/24")], s.DefaultClientAllowedIps());
        Assert.Equal(IPAddress.Parse("203.0.113.1"), s.ServerAddress4);
        Assert.Null(s.ServerAddress6);
    }
}
