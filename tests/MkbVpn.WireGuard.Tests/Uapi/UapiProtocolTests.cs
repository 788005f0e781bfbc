using System.Net;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tests.Device;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Uapi;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Tests.Uapi;

public sealed class UapiProtocolTests
{
    private static readonly WireGuardKey Private = WireGuardKeys.NewPrivateKey();
    private static readonly WireGuardKey PeerKey = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey());
    private static readonly WireGuardKey OtherKey = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey());
    private static readonly WireGuardKey Psk = WireGuardKeys.NewPresharedKey();

    private static MkbVpn.WireGuard.Device.Device NewDevice(ChannelNetwork? network = null)
    {
        network ??= new ChannelNetwork();
        var device = new MkbVpn.WireGuard.Device.Device(new ChannelTun(), port => network.Open(IPAddress.Parse("198.18.0.1"), port));
        device.Start();
        return device;
    }

    private static string Run(MkbVpn.WireGuard.Device.Device device, string input)
    {
        var output = new StringWriter { NewLine = "\n" };
        UapiProtocol.Serve(device, new StringReader(input), output);
        return output.ToString();
    }

    private static string FullConfig =>
        $"set=1\nprivate_key={Private.ToHex()}\nlisten_port=51999\nfwmark=0\nreplace_peers=true\n" +
        $"public_key={PeerKey.ToHex()}\npreshared_key={Psk.ToHex()}\nprotocol_version=1\nendpoint=198.18.0.2:51820\n" +
        "persistent_keepalive_interval=0\nreplace_allowed_ips=true\nallowed_ip=203.0.113.2/32\nallowed_ip=fd00::2/128\n" +
        $"public_key={OtherKey.ToHex()}\nendpoint=[fd00:1::1]:4500\nallowed_ip=198.51.100.0/24\n\n";

    [Fact]
    public void Set_then_get_round_trips_in_wireguard_go_format()
    {
        using var device = NewDevice();
        Assert.Equal("errno=0\n\n", Run(device, FullConfig));
        string get = Run(device, "get=1\n\n");
        string expected =
            $"private_key={Private.ToHex()}\nlisten_port=51999\n" +
            $"public_key={PeerKey.ToHex()}\npreshared_key={Psk.ToHex()}\nprotocol_version=1\nendpoint=198.18.0.2:51820\n" +
            "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n" +
            "allowed_ip=203.0.113.2/32\nallowed_ip=fd00::2/128\n" +
            $"public_key={OtherKey.ToHex()}\npreshared_key={new string('0', 64)}\nprotocol_version=1\nendpoint=[fd00:1::1]:4500\n" +
            "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n" +
            "allowed_ip=198.51.100.0/24\nerrno=0\n\n";
        Assert.Equal(expected, get);
    }

    [Fact]
    public void Several_operations_on_one_connection_are_each_answered()
    {
        using var device = NewDevice();
        string output = Run(device, $"set=1\nprivate_key={Private.ToHex()}\n\nget=1\n\nset=1\nlisten_port=51998\n\n");
        Assert.Equal(3, output.Split("errno=0\n\n").Length - 1);
        Assert.Equal(51998, device.ListenPort);
    }

    [Theory]
    [InlineData("bogus=1")]
    [InlineData("listen_port=65536")]
    [InlineData("listen_port=-1")]
    [InlineData("private_key=abcd")]
    [InlineData("replace_peers=false")]
    [InlineData("fwmark=x")]
    public void Bad_device_lines_are_invalid(string line)
    {
        using var device = NewDevice();
        Assert.Equal("errno=-22\n\n", Run(device, $"set=1\n{line}\n\n"));
    }

    [Theory]
    [InlineData("allowed_ip=203.0.113.2")]
    [InlineData("allowed_ip=203.0.113.2/33")]
    [InlineData("allowed_ip=fd00::/129")]
    [InlineData("endpoint=fd00::1:51820")]
    [InlineData("endpoint=198.18.0.2")]
    [InlineData("endpoint=example.com:51820")]
    [InlineData("persistent_keepalive_interval=65536")]
    [InlineData("protocol_version=2")]
    [InlineData("private_key=00")]
    [InlineData("remove=false")]
    public void Bad_peer_lines_are_invalid_and_the_rest_of_the_operation_is_skipped(string line)
    {
        using var device = NewDevice();
        string output = Run(device, $"set=1\npublic_key={PeerKey.ToHex()}\n{line}\nallowed_ip=203.0.113.9/32\n\nget=1\n\n");
        Assert.StartsWith("errno=-22\n\n", output);
        Assert.DoesNotContain("203.0.113.9", output);
        Assert.EndsWith("errno=0\n\n", output);
    }

    [Fact]
    public void Remove_update_only_and_replace_allowed_ips()
    {
        using var device = NewDevice();
        Assert.Equal("errno=0\n\n", Run(device, FullConfig));
        Assert.Equal("errno=0\n\n", Run(device, $"set=1\npublic_key={OtherKey.ToHex()}\nremove=true\n\n"));
        Assert.Equal(1, device.PeerCount);

        // update_only: an unknown key is not created; a known one is updated.
        var unknown = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey());
        Assert.Equal("errno=0\n\n", Run(device, $"set=1\npublic_key={unknown.ToHex()}\nupdate_only=true\nallowed_ip=198.51.100.7/32\n\n"));
        Assert.Equal(1, device.PeerCount);
        Assert.Equal("errno=0\n\n", Run(device,
            $"set=1\npublic_key={PeerKey.ToHex()}\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=203.0.113.77/32\n\n"));
        var status = Assert.Single(device.Snapshot());
        Assert.Equal([(IPAddress.Parse("203.0.113.77"), 32)], status.AllowedIps);

        Assert.Equal("errno=0\n\n", Run(device, "set=1\nreplace_peers=true\n\n"));
        Assert.Equal(0, device.PeerCount);
    }

    [Fact]
    public void A_peer_with_the_devices_own_public_key_is_ignored()
    {
        using var device = NewDevice();
        string own = WireGuardKeys.PublicKeyOf(Private).ToHex();
        Assert.Equal("errno=0\n\n", Run(device, $"set=1\nprivate_key={Private.ToHex()}\npublic_key={own}\nallowed_ip=203.0.113.5/32\n\n"));
        Assert.Equal(0, device.PeerCount);
    }

    [Fact]
    public void An_all_zero_private_key_clears_it()
    {
        using var device = NewDevice();
        Run(device, $"set=1\nprivate_key={Private.ToHex()}\n\n");
        Assert.Contains("private_key=", Run(device, "get=1\n\n"));
        Assert.Equal("errno=0\n\n", Run(device, $"set=1\nprivate_key={new string('0', 64)}\n\n"));
        Assert.DoesNotContain("private_key=", Run(device, "get=1\n\n"));
    }

    [Fact]
    public void A_taken_listen_port_is_address_in_use()
    {
        var network = new ChannelNetwork();
        using var blocker = network.Open(IPAddress.Parse("198.18.0.1"), 51777);
        using var device = NewDevice(network);
        Assert.Equal("errno=-98\n\n", Run(device, "set=1\nlisten_port=51777\n\n"));
    }

    [Fact]
    public void An_unknown_operation_ends_the_connection_without_answer()
    {
        using var device = NewDevice();
        Assert.Equal("", Run(device, "hello=1\n\nget=1\n\n"));
    }

    [Fact]
    public void Counters_and_handshake_time_appear_after_traffic()
    {
        using var pair = new DevicePair();
        byte[] ping = DevicePair.Ipv4(DevicePair.TunnelA, DevicePair.TunnelB);
        pair.TunA.Inject(ping);
        Assert.True(DevicePair.Receives(pair.TunB, ping, TimeSpan.FromSeconds(10)));
        string get = Run(pair.A, "get=1\n\n");
        Assert.Matches(@"last_handshake_time_sec=[1-9]\d{9}\n", get);
        Assert.Matches(@"tx_bytes=244\n", get);
        Assert.Matches(@"rx_bytes=92\n", get);
    }

    [Fact]
    public void Switching_persistent_keepalive_on_through_uapi_handshakes_at_once()
    {
        using var pair = new DevicePair();
        string pub = WireGuardKeys.PublicKeyOf(pair.KeyB).ToHex();
        Assert.Equal("errno=0\n\n", Run(pair.A, $"set=1\npublic_key={pub}\npersistent_keepalive_interval=25\n\n"));
        Assert.True(DevicePair.Eventually(() => DevicePair.Status(pair.B).LastHandshake is not null, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_minus_allowed_ip_removes_that_range_of_that_peer_only()
    {
        using var device = NewDevice();
        Assert.Equal("errno=0\n\n", Run(device, FullConfig));
        Assert.Equal("errno=0\n\n", Run(device, $"set=1\npublic_key={PeerKey.ToHex()}\nallowed_ip=203.0.113.3/32\n\n"));
        // wg set wg0 peer PEER allowed-ips -203.0.113.2/32 (wireguard-tools v1.0.20250521+); the other peer's range is not this peer's.
        Assert.Equal("errno=0\n\n", Run(device,
            $"set=1\npublic_key={PeerKey.ToHex()}\nallowed_ip=-203.0.113.2/32\nallowed_ip=-198.51.100.0/24\nallowed_ip=-fd00::9/128\n\n"));
        string get = Run(device, "get=1\n\n");
        Assert.DoesNotContain("allowed_ip=203.0.113.2/32\n", get);
        Assert.Contains("allowed_ip=203.0.113.3/32\nallowed_ip=fd00::2/128\n", get);
        Assert.Contains("allowed_ip=198.51.100.0/24\n", get);
        Assert.Equal("errno=-22\n\n", Run(device, $"set=1\npublic_key={PeerKey.ToHex()}\nallowed_ip=-nonsense\n\n"));
    }

    [Fact]
    public void Get_stats_returns_the_drop_counters_and_get_is_unchanged()
    {
        using var device = NewDevice();
        Assert.Equal("errno=0\n\n", Run(device, FullConfig));
        Interlocked.Add(ref device.Counters.InvalidMac, 3);
        string stats = Run(device, "get=stats\n\n");
        Assert.StartsWith("malformed=0\ninvalid_mac=3\n", stats);
        Assert.EndsWith("\ndropped=3\nerrno=0\n\n", stats);
        Assert.DoesNotContain("invalid_mac", Run(device, "get=1\n\n"));
    }
}
