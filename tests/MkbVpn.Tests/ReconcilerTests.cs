using System.Net;
using MkbVpn.Devices;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

public class ReconcilerTests
{
    private static readonly WireGuardKey ServerKey = Fixtures.Key(0x40);
    private static readonly WireGuardKey A = Fixtures.Key(0xA1), B = Fixtures.Key(0xB2), C = Fixtures.Key(0xC3), Stray = Fixtures.Key(0xEE);
    private static readonly WireGuardKey Psk1 = Fixtures.Key(0x11), Psk2 = Fixtures.Key(0x22);

    private static IPNetwork Net(string s) => IPNetwork.Parse(s);

    private static PeerSpec Spec(WireGuardKey key, WireGuardKey psk, params string[] ips) => new(key, psk, [.. ips.Select(Net)]);

    private static PeerState Live(WireGuardKey key, WireGuardKey? psk, string? endpoint, params string[] ips) =>
        new() { PublicKey = key, PresharedKey = psk, Endpoint = endpoint, AllowedIps = [.. ips.Select(Net)] };

    private static InterfaceState Iface(params PeerState[] peers) => new() { PrivateKey = ServerKey, ListenPort = 51820, Peers = peers };

    [Fact]
    public void Matching_interface_yields_no_change_at_all()
    {
        var desired = new[] { Spec(A, Psk1, "203.0.113.2/32", "fd00:1234:5678::2/128"), Spec(B, Psk2, "203.0.113.3/32") };
        // Same allowed IPs in another order still match.
        var actual = Iface(Live(A, Psk1, "198.51.100.7:4000", "fd00:1234:5678::2/128", "203.0.113.2/32"), Live(B, Psk2, null, "203.0.113.3/32"));
        var d = Reconciler.Diff(ServerKey, 51820, desired, actual);
        Assert.True(d.IsEmpty);
        Assert.Empty(d.Peers);
    }

    [Fact]
    public void Missing_peers_are_added_and_strays_removed()
    {
        var desired = new[] { Spec(A, Psk1, "203.0.113.2/32"), Spec(B, Psk2, "203.0.113.3/32") };
        var actual = Iface(Live(A, Psk1, null, "203.0.113.2/32"), Live(Stray, null, "198.51.100.9:1", "203.0.113.9/32"));
        var d = Reconciler.Diff(ServerKey, 51820, desired, actual);
        Assert.Null(d.PrivateKey);
        Assert.Null(d.ListenPort);
        Assert.Equal(2, d.Peers.Count);
        var up = Assert.IsType<PeerChange.Upsert>(d.Peers.Single(p => p is PeerChange.Upsert));
        Assert.Equal(B, up.PublicKey);
        Assert.Same(desired[1], up.Spec);
        var rm = Assert.IsType<PeerChange.Remove>(d.Peers.Single(p => p is PeerChange.Remove));
        Assert.Equal(Stray, rm.PublicKey);
    }

    [Fact]
    public void Empty_interface_gets_every_peer()
    {
        var desired = new[] { Spec(A, Psk1, "203.0.113.2/32"), Spec(B, Psk2, "203.0.113.3/32"), Spec(C, Psk1, "203.0.113.4/32") };
        var d = Reconciler.Diff(ServerKey, 51820, desired, new InterfaceState { Peers = [] });
        Assert.Equal([A, B, C], d.Peers.Select(p => Assert.IsType<PeerChange.Upsert>(p).PublicKey));
        Assert.Equal(ServerKey, d.PrivateKey);
        Assert.Equal(51820, d.ListenPort);
    }

    [Fact]
    public void Nothing_desired_removes_every_live_peer()
    {
        var d = Reconciler.Diff(ServerKey, 51820, [], Iface(Live(A, Psk1, null, "203.0.113.2/32"), Live(B, null, null)));
        Assert.Equal([A, B], d.Peers.Select(p => Assert.IsType<PeerChange.Remove>(p).PublicKey));
    }

    [Theory]
    [InlineData("203.0.113.2/32", "203.0.113.9/32")]                          // changed
    [InlineData("203.0.113.2/32,fd00:1234:5678::2/128", "203.0.113.2/32")]    // one missing live
    [InlineData("203.0.113.2/32", "203.0.113.2/32,198.51.100.0/24")]          // one extra live
    [InlineData("203.0.113.2/32", "")]                                         // none live
    public void Drifted_allowed_ips_are_updated(string want, string have)
    {
        var desired = new[] { Spec(A, Psk1, want.Split(',')) };
        var actual = Iface(Live(A, Psk1, "198.51.100.7:4000", have.Split(',', StringSplitOptions.RemoveEmptyEntries)));
        var d = Reconciler.Diff(ServerKey, 51820, desired, actual);
        var up = Assert.IsType<PeerChange.Upsert>(Assert.Single(d.Peers));
        Assert.Equal(A, up.PublicKey);
    }

    [Fact]
    public void Duplicate_live_allowed_ip_does_not_count_as_a_match()
    {
        var desired = new[] { Spec(A, Psk1, "203.0.113.2/32", "fd00:1234:5678::2/128") };
        var actual = Iface(Live(A, Psk1, null, "203.0.113.2/32", "203.0.113.2/32"));
        Assert.Single(Reconciler.Diff(ServerKey, 51820, desired, actual).Peers);
    }

    [Fact]
    public void Drifted_or_missing_preshared_key_is_updated()
    {
        var desired = new[] { Spec(A, Psk1, "203.0.113.2/32"), Spec(B, Psk2, "203.0.113.3/32") };
        var actual = Iface(Live(A, Psk2, null, "203.0.113.2/32"), Live(B, null, null, "203.0.113.3/32"));
        var d = Reconciler.Diff(ServerKey, 51820, desired, actual);
        Assert.Equal([A, B], d.Peers.Select(p => Assert.IsType<PeerChange.Upsert>(p).PublicKey));
    }

    [Fact]
    public void Kicks_only_peers_that_lack_an_endpoint_and_have_a_known_one()
    {
        var desired = new[]
        {
            Spec(A, Psk1, "203.0.113.2/32"),   // live with endpoint: no kick
            Spec(B, Psk1, "203.0.113.3/32"),   // live without endpoint: kick
            Spec(C, Psk1, "203.0.113.4/32"),   // not live (will be added): kick
            Spec(Fixtures.Key(0xD4), Psk1, "203.0.113.5/32"),   // not live, no known endpoint: no kick
        };
        var actual = Iface(Live(A, Psk1, "198.51.100.7:4000", "203.0.113.2/32"), Live(B, Psk1, null, "203.0.113.3/32"));
        var kicks = new Dictionary<WireGuardKey, string>
        {
            [A] = "198.51.100.1:1111",
            [B] = "198.51.100.2:2222",
            [C] = "[2001:db8::3]:3333",
            [Stray] = "198.51.100.9:9999",   // not desired: never kicked
        };
        var d = Reconciler.Diff(ServerKey, 51820, desired, actual, kicks);
        var k = d.Peers.OfType<PeerChange.Kick>().ToList();
        Assert.Equal([(B, "198.51.100.2:2222"), (C, "[2001:db8::3]:3333")], k.Select(x => (x.PublicKey, x.Endpoint)));
        // B matched: no upsert for it; C and D are new: upserts.
        Assert.Equal([C, Fixtures.Key(0xD4)], d.Peers.OfType<PeerChange.Upsert>().Select(u => u.PublicKey));
        // The kick of C comes after its upsert (it must exist first).
        int upC = d.Peers.ToList().FindIndex(p => p is PeerChange.Upsert && p.PublicKey.Equals(C));
        int kickC = d.Peers.ToList().FindIndex(p => p is PeerChange.Kick && p.PublicKey.Equals(C));
        Assert.True(upC < kickC);
    }

    [Fact]
    public void No_kicks_without_a_kick_table()
    {
        var d = Reconciler.Diff(ServerKey, 51820, [Spec(A, Psk1, "203.0.113.2/32")], Iface());
        Assert.DoesNotContain(d.Peers, p => p is PeerChange.Kick);
    }

    [Fact]
    public void Private_key_and_listen_port_changes_are_emitted()
    {
        var actual = new InterfaceState { PrivateKey = Fixtures.Key(0x41), ListenPort = 51820, Peers = [] };
        var d = Reconciler.Diff(ServerKey, 51999, [], actual);
        Assert.Equal(ServerKey, d.PrivateKey);
        Assert.Equal(51999, d.ListenPort);
        Assert.Empty(d.Peers);
        Assert.False(d.IsEmpty);

        var same = Reconciler.Diff(ServerKey, 51820, [], Iface());
        Assert.Null(same.PrivateKey);
        Assert.Null(same.ListenPort);
        Assert.True(same.IsEmpty);
    }

    [Fact]
    public void Interface_without_a_private_key_gets_one()
    {
        var d = Reconciler.Diff(ServerKey, 51820, [], new InterfaceState { PrivateKey = null, ListenPort = 51820, Peers = [] });
        Assert.Equal(ServerKey, d.PrivateKey);
    }
}
