using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

/// <summary>Issue 7: padding at the MTU, the responder's handshake time, pre-shared key rotation.</summary>
public sealed class TunnelHardeningTests
{
    private static readonly byte[] SourceA = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.18.0.1"), 40000));
    private static readonly byte[] SourceB = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 51820));

    private sealed class Pair : IDisposable
    {
        public readonly ManualTime Time = new();
        public readonly StaticIdentity IdA = new(WireGuardKeys.NewPrivateKey());
        public readonly StaticIdentity IdB = new(WireGuardKeys.NewPrivateKey());
        public readonly Tunnel A, B;
        public readonly byte[] Buffer = new byte[4096];

        public Pair(WireGuardKey? psk = null)
        {
            A = new Tunnel(IdA, IdB.PublicKey, psk, Time, RandomNumberGenerator.Create());
            B = new Tunnel(IdB, IdA.PublicKey, psk, Time, RandomNumberGenerator.Create());
        }

        public byte[] Out(TunnelResult r)
        {
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
            return Buffer[..r.Length];
        }

        public byte[] Establish()
        {
            byte[] init = Out(A.Encapsulate(Packet(40), Buffer));
            byte[] resp = Out(B.Decapsulate(init, Buffer, SourceA));
            byte[] data = Out(A.Decapsulate(resp, Buffer, SourceB));
            Assert.Equal(TunnelResultKind.WriteToTunnelV4, B.Decapsulate(data, new byte[4096]).Kind);
            return init;
        }

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            IdA.Dispose();
            IdB.Dispose();
        }
    }

    private static byte[] Packet(int length)
    {
        var p = new byte[length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)length);
        IPAddress.Parse("203.0.113.1").GetAddressBytes().CopyTo(p, 12);
        IPAddress.Parse("203.0.113.2").GetAddressBytes().CopyTo(p, 16);
        return p;
    }

    [Theory]
    [InlineData(1420, 1420, 1420)] // full size: no padding past the MTU (wireguard-go sends 1452 bytes)
    [InlineData(1419, 1420, 1420)]
    [InlineData(1405, 1420, 1408)]
    [InlineData(100, 1420, 112)]
    [InlineData(1420, 0, 1424)]    // MTU unknown: plain padding
    [InlineData(1501, 1420, 1516)] // longer than the MTU: its last unit (81) padded as usual
    public void Padding_stops_at_the_mtu(int packet, int mtu, int padded) =>
        Assert.Equal(padded, TransportData.PaddedLength(packet, mtu));

    [Fact]
    public void A_full_size_packet_leaves_as_a_1452_byte_datagram_and_arrives_whole()
    {
        using var pair = new Pair();
        pair.A.Mtu = 1420;
        pair.Establish();
        byte[] full = Packet(1420);
        TunnelResult r = pair.A.Encapsulate(full, pair.Buffer);
        Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
        Assert.Equal(1452, r.Length); // 16 header + 1420 + 16 tag: 1500 with an IPv6 + UDP header
        var dst = new byte[4096];
        TunnelResult got = pair.B.Decapsulate(pair.Buffer.AsSpan(0, r.Length), dst);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, got.Kind);
        Assert.Equal(full, dst[..got.Length]);
    }

    [Fact]
    public void The_responder_records_the_handshake_when_the_initiator_confirms_it()
    {
        using var pair = new Pair();
        byte[] init = pair.Out(pair.A.Encapsulate(Packet(40), pair.Buffer));
        byte[] resp = pair.Out(pair.B.Decapsulate(init, pair.Buffer, SourceA));
        Assert.Null(pair.B.LastHandshake); // response sent, nothing confirmed yet
        pair.Time.Advance(TimeSpan.FromSeconds(3));
        DateTimeOffset confirmedAt = pair.Time.GetUtcNow();
        byte[] data = pair.Out(pair.A.Decapsulate(resp, pair.Buffer, SourceB));
        Assert.NotNull(pair.A.LastHandshake);
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, pair.B.Decapsulate(data, new byte[4096]).Kind);
        Assert.Equal(confirmedAt, pair.B.LastHandshake);
    }

    [Fact]
    public void A_new_preshared_key_keeps_the_session_and_applies_from_the_next_handshake()
    {
        using var pair = new Pair(WireGuardKeys.NewPresharedKey());
        byte[] oldInitiation = pair.Establish();

        WireGuardKey next = WireGuardKeys.NewPresharedKey();
        pair.A.SetPresharedKey(next);
        pair.B.SetPresharedKey(next);
        pair.Time.Advance(TimeSpan.FromSeconds(1));

        // The session goes on: data, not a handshake.
        byte[] data = pair.Out(pair.A.Encapsulate(Packet(60), pair.Buffer));
        Assert.Equal(MessageType.TransportData, Messages.Classify(data));
        Assert.Equal(TunnelResultKind.WriteToTunnelV4, pair.B.Decapsulate(data, new byte[4096]).Kind);

        // The replay history stays: an initiation captured before the change is still refused.
        TunnelResult replay = pair.B.Decapsulate(oldInitiation, pair.Buffer, SourceA);
        Assert.Equal(HandshakeStatus.ReplayedTimestamp, replay.Handshake);

        // The next handshake (rekey after 120 s) uses the new key on both sides and succeeds.
        pair.Time.Advance(Constants.RekeyAfterTime);
        byte[] init = pair.Out(pair.A.Encapsulate(Packet(60), pair.Buffer));
        Assert.Equal(MessageType.TransportData, Messages.Classify(init)); // still sends on the old session...
        TunnelResult tick = pair.A.Tick(pair.Buffer);                     // ...and the rekey goes out
        byte[] rekey = pair.Out(tick);
        Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(rekey));
        byte[] resp = pair.Out(pair.B.Decapsulate(rekey, pair.Buffer, SourceA));
        TunnelResult confirm = pair.A.Decapsulate(resp, pair.Buffer, SourceB);
        Assert.Equal(TunnelResultKind.WriteToNetwork, confirm.Kind);
    }

    [Fact]
    public void A_handshake_with_only_one_side_on_the_new_preshared_key_fails()
    {
        using var pair = new Pair(WireGuardKeys.NewPresharedKey());
        pair.A.SetPresharedKey(WireGuardKeys.NewPresharedKey());
        byte[] init = pair.Out(pair.A.Encapsulate(Packet(40), pair.Buffer));
        byte[] resp = pair.Out(pair.B.Decapsulate(init, pair.Buffer, SourceA));
        TunnelResult r = pair.A.Decapsulate(resp, pair.Buffer, SourceB);
        Assert.Equal(HandshakeStatus.DecryptionFailed, r.Handshake);
    }
}
