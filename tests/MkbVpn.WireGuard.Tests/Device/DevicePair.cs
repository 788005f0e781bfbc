using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using MkbVpn.WireGuard.Device;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Tests.Device;

/// <summary>Two devices on an in-memory network: A (203.0.113.1, underlay 198.18.0.1) and B (203.0.113.2, 198.18.0.2).</summary>
internal sealed class DevicePair : IDisposable
{
    public static readonly IPAddress UnderlayA = IPAddress.Parse("198.18.0.1");
    public static readonly IPAddress UnderlayB = IPAddress.Parse("198.18.0.2");
    public static readonly IPAddress TunnelA = IPAddress.Parse("203.0.113.1");
    public static readonly IPAddress TunnelB = IPAddress.Parse("203.0.113.2");

    public ChannelNetwork Network { get; } = new();
    public ChannelTun TunA { get; } = new("wgA");
    public ChannelTun TunB { get; } = new("wgB");
    public MkbVpn.WireGuard.Device.Device A { get; }
    public MkbVpn.WireGuard.Device.Device B { get; }
    public WireGuardKey KeyA { get; } = WireGuardKeys.NewPrivateKey();
    public WireGuardKey KeyB { get; } = WireGuardKeys.NewPrivateKey();
    public Peer PeerBOnA { get; }
    public Peer PeerAOnB { get; }

    public DevicePair(bool bKnowsA = false, int portB = 51821, int? cryptoLanes = null)
    {
        int lanes = cryptoLanes ?? MkbVpn.WireGuard.Device.Device.DefaultCryptoLanes;
        A = new MkbVpn.WireGuard.Device.Device(TunA, port => Network.Open(UnderlayA, port)) { TickInterval = TimeSpan.FromMilliseconds(20), CryptoLaneCount = lanes };
        B = new MkbVpn.WireGuard.Device.Device(TunB, port => Network.Open(UnderlayB, port)) { TickInterval = TimeSpan.FromMilliseconds(20), CryptoLaneCount = lanes };
        A.SetPrivateKey(KeyA);
        B.SetPrivateKey(KeyB);
        A.SetListenPort(51820);
        B.SetListenPort(portB);
        A.Start();
        B.Start();

        PeerBOnA = A.AddPeer(WireGuardKeys.PublicKeyOf(KeyB), out _);
        A.SetEndpoint(PeerBOnA, new IPEndPoint(UnderlayB, portB));
        A.AddAllowedIp(PeerBOnA, TunnelB, 32);

        PeerAOnB = B.AddPeer(WireGuardKeys.PublicKeyOf(KeyA), out _);
        B.AddAllowedIp(PeerAOnB, TunnelA, 32);
        if (bKnowsA)
            B.SetEndpoint(PeerAOnB, new IPEndPoint(UnderlayA, 51820));
    }

    /// <summary>A minimal IPv4 packet (UDP protocol number, no checksum checks on this path).</summary>
    public static byte[] Ipv4(IPAddress source, IPAddress destination, int payload = 40, byte fill = 0xab)
    {
        var p = new byte[20 + payload];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 17;
        source.GetAddressBytes().CopyTo(p, 12);
        destination.GetAddressBytes().CopyTo(p, 16);
        p.AsSpan(20).Fill(fill);
        return p;
    }

    public static bool Receives(ChannelTun tun, byte[] expected, TimeSpan within)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < within)
        {
            if (tun.Delivered.TryTake(out byte[]? got, TimeSpan.FromMilliseconds(50)) && got.AsSpan().SequenceEqual(expected))
                return true;
        }
        return false;
    }

    public static bool Eventually(Func<bool> condition, TimeSpan within)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > within)
                return false;
            Thread.Sleep(10);
        }
        return true;
    }

    public static PeerStatus Status(MkbVpn.WireGuard.Device.Device device) => Assert.Single(device.Snapshot());

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
