using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Routing;

namespace MkbVpn.WireGuard.Tests.Routing;

public sealed class CryptokeyRoutingTests
{
    [Fact]
    public void AllowedIps_RoutesOutgoing_AndChecksIncomingSource()
    {
        var time = new ManualTime();
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create());
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create());

        // B's table: A owns 10.8.0.2/32; the rest of 10.8.0.0/24 belongs to nobody B knows here.
        var routesAtB = new AllowedIps<Tunnel>();
        routesAtB.Insert(IPAddress.Parse("10.8.0.2"), 32, a /* stands for "the peer A" on B's side */);
        // The device's check on receive: the inner source must route back to the peer it came from.
        bool Allowed(TunnelResult r, byte[] packet) => ReferenceEquals(routesAtB.Lookup(r.InnerSource(packet)), a);

        // A's table: everything goes to B.
        var routesAtA = new AllowedIps<Tunnel>();
        routesAtA.Insert(IPAddress.Any, 0, b);
        Assert.Same(b, routesAtA.Lookup(IPAddress.Parse("10.8.0.1")));

        var buf = new byte[2048];
        var dst = new byte[2048];
        byte[] Packet(string src)
        {
            var p = new byte[28];
            p[0] = 0x45;
            p[3] = 28;
            IPAddress.Parse(src).GetAddressBytes().CopyTo(p, 12);
            IPAddress.Parse("10.8.0.1").GetAddressBytes().CopyTo(p, 16);
            return p;
        }

        var init = buf[..a.Encapsulate(Packet("10.8.0.2"), buf).Length];
        var resp = buf[..b.Decapsulate(init, buf).Length];
        var first = buf[..a.Decapsulate(resp, buf).Length];
        TunnelResult got = b.Decapsulate(first, dst);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, got.Kind);
        Assert.True(Allowed(got, dst));

        var spoofed = buf[..a.Encapsulate(Packet("10.8.0.3"), buf).Length];
        got = b.Decapsulate(spoofed, dst);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, got.Kind);
        Assert.False(Allowed(got, dst));
    }
}
