using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tests.Vectors;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class HandshakeTests
{
    private static readonly TimeSpan T0 = TimeSpan.FromHours(1);
    private static byte[] Hex(string s) => Convert.FromHexString(s);
    private static WireGuardKey Key(string hex) => WireGuardKey.FromBytes(Hex(hex));

    private sealed class Pair : IDisposable
    {
        public readonly StaticIdentity InitiatorId, ResponderId;
        public readonly Handshake Initiator, Responder;

        public Pair(WireGuardKey? psk = null, WireGuardKey? responderPsk = null, WireGuardKey? initiatorKey = null, WireGuardKey? responderKey = null)
        {
            InitiatorId = new StaticIdentity(initiatorKey ?? WireGuardKeys.NewPrivateKey());
            ResponderId = new StaticIdentity(responderKey ?? WireGuardKeys.NewPrivateKey());
            Initiator = new Handshake(InitiatorId, ResponderId.PublicKey, psk);
            Responder = new Handshake(ResponderId, InitiatorId.PublicKey, responderPsk ?? psk);
        }

        public void Dispose()
        {
            Initiator.Dispose();
            Responder.Dispose();
            InitiatorId.Dispose();
            ResponderId.Dispose();
        }
    }

    private static byte[] Initiation(Handshake h, DateTimeOffset wall, uint index = 1)
    {
        var m = new byte[HandshakeInitiation.Size];
        Assert.Equal(HandshakeStatus.Ok, h.CreateInitiation(m, index, wall, RandomNumberGenerator.Create()));
        return m;
    }

    private static HandshakeStatus Consume(StaticIdentity id, Handshake h, byte[] initiation, TimeSpan now)
    {
        var status = Handshake.OpenInitiation(id, initiation, out var opened);
        if (status != HandshakeStatus.Ok)
            return status;
        using (opened)
            return h.ConsumeInitiation(opened!, now);
    }

    [Fact]
    public void FullHandshake_DerivesMatchingTransportKeys()
    {
        using var p = new Pair(WireGuardKeys.NewPresharedKey());
        var wall = DateTimeOffset.UtcNow;
        byte[] init = Initiation(p.Initiator, wall, index: 7);
        Assert.Equal(MessageType.HandshakeInitiation, Messages.Classify(init));

        Assert.Equal(HandshakeStatus.Ok, Handshake.OpenInitiation(p.ResponderId, init, out var opened));
        Assert.Equal(p.InitiatorId.PublicKey, opened!.RemoteStatic);
        Assert.Equal(7u, opened.SenderIndex);
        Assert.Equal(HandshakeStatus.Ok, p.Responder.ConsumeInitiation(opened, T0));

        var resp = new byte[HandshakeResponse.Size];
        Assert.Equal(HandshakeStatus.Ok, p.Responder.CreateResponse(resp, 9, RandomNumberGenerator.Create()));
        Assert.Equal(7u, HandshakeResponse.Receiver(resp));
        Assert.Equal(HandshakeStatus.Ok, p.Initiator.ConsumeResponse(resp));

        using var ik = p.Initiator.BeginSession(T0)!;
        using var rk = p.Responder.BeginSession(T0)!;
        Assert.True(ik.IsInitiator);
        Assert.False(rk.IsInitiator);
        Assert.Equal((7u, 9u), (ik.LocalIndex, ik.RemoteIndex));
        Assert.Equal((9u, 7u), (rk.LocalIndex, rk.RemoteIndex));
        AssertCanTalk(ik, rk);
        AssertCanTalk(rk, ik);

        // The handshake state is gone: a second session cannot be derived.
        Assert.Null(p.Initiator.BeginSession(T0));
        Assert.Null(p.Responder.BeginSession(T0));
    }

    private static void AssertCanTalk(Keypair from, Keypair to)
    {
        byte[] plain = "hello, tunnel!!!"u8.ToArray();
        var cipher = new byte[plain.Length];
        var tag = new byte[16];
        Assert.True(from.TryReserveSendCounter(out ulong counter));
        from.Seal(counter, plain, cipher, tag);
        Assert.NotEqual(plain, cipher);
        var back = new byte[plain.Length];
        Assert.True(to.TryOpen(counter, cipher, tag, back));
        Assert.Equal(plain, back);
    }

    [Fact]
    public void Transcript_MatchesIndependentReference()
    {
        var random = new ScriptedRandom(Hex(HandshakeVectors.InitiatorEphemeral), Hex(HandshakeVectors.ResponderEphemeral));
        var psk = Key(HandshakeVectors.PresharedKey);
        using var p = new Pair(psk, initiatorKey: Key(HandshakeVectors.InitiatorStatic), responderKey: Key(HandshakeVectors.ResponderStatic));

        var init = new byte[HandshakeInitiation.Size];
        Assert.Equal(HandshakeStatus.Ok, p.Initiator.CreateInitiation(init, HandshakeVectors.InitiatorIndex, HandshakeVectors.Timestamp, random));
        byte[] expectedInit = Hex(HandshakeVectors.Initiation);
        Assert.Equal(Convert.ToHexStringLower(expectedInit[..HandshakeInitiation.Mac1Offset]), Convert.ToHexStringLower(init[..HandshakeInitiation.Mac1Offset]));

        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, expectedInit, T0));
        var resp = new byte[HandshakeResponse.Size];
        Assert.Equal(HandshakeStatus.Ok, p.Responder.CreateResponse(resp, HandshakeVectors.ResponderIndex, random));
        byte[] expectedResp = Hex(HandshakeVectors.Response);
        Assert.Equal(Convert.ToHexStringLower(expectedResp[..HandshakeResponse.Mac1Offset]), Convert.ToHexStringLower(resp[..HandshakeResponse.Mac1Offset]));

        Assert.Equal(HandshakeStatus.Ok, p.Initiator.ConsumeResponse(expectedResp));
        using var ik = p.Initiator.BeginSession(T0)!;
        using var rk = p.Responder.BeginSession(T0)!;

        // The reference's first data message decrypts with the responder's keypair.
        byte[] data = Hex(HandshakeVectors.FirstData);
        ReadOnlySpan<byte> encrypted = TransportData.Encrypted(data);
        var plain = new byte[encrypted.Length - 16];
        Assert.True(rk.TryOpen(TransportData.Counter(data), encrypted[..^16], encrypted[^16..], plain));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (byte)i).Concat(new byte[12]).ToArray(), plain);

        // And the initiator's keypair produces exactly that ciphertext.
        var cipher = new byte[plain.Length];
        var tag = new byte[16];
        Assert.True(ik.TryReserveSendCounter(out ulong counter));
        Assert.Equal(0ul, counter);
        ik.Seal(counter, plain, cipher, tag);
        Assert.Equal(Convert.ToHexStringLower(encrypted.ToArray()), Convert.ToHexStringLower(cipher) + Convert.ToHexStringLower(tag));
    }

    [Fact]
    public void MismatchedPresharedKey_FailsAtResponse()
    {
        using var p = new Pair(WireGuardKeys.NewPresharedKey(), responderPsk: WireGuardKeys.NewPresharedKey());
        byte[] init = Initiation(p.Initiator, DateTimeOffset.UtcNow);
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, init, T0));
        var resp = new byte[HandshakeResponse.Size];
        Assert.Equal(HandshakeStatus.Ok, p.Responder.CreateResponse(resp, 2, RandomNumberGenerator.Create()));
        Assert.Equal(HandshakeStatus.DecryptionFailed, p.Initiator.ConsumeResponse(resp));
        Assert.Null(p.Initiator.BeginSession(T0));
    }

    [Fact]
    public void TamperedResponse_IsRejected_AndStateSurvivesForTheGenuineOne()
    {
        using var p = new Pair();
        byte[] init = Initiation(p.Initiator, DateTimeOffset.UtcNow, index: 5);
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, init, T0));
        var resp = new byte[HandshakeResponse.Size];
        Assert.Equal(HandshakeStatus.Ok, p.Responder.CreateResponse(resp, 6, RandomNumberGenerator.Create()));

        byte[] bad = (byte[])resp.Clone();
        bad[HandshakeResponse.EmptyOffset] ^= 0x80;
        Assert.Equal(HandshakeStatus.DecryptionFailed, p.Initiator.ConsumeResponse(bad));

        byte[] wrongIndex = (byte[])resp.Clone();
        Messages.WriteIndex(wrongIndex, HandshakeResponse.ReceiverOffset, 99);
        Assert.Equal(HandshakeStatus.WrongIndex, p.Initiator.ConsumeResponse(wrongIndex));

        Assert.Equal(HandshakeStatus.Ok, p.Initiator.ConsumeResponse(resp));
        Assert.Equal(HandshakeStatus.WrongState, p.Initiator.ConsumeResponse(resp));
    }

    [Fact]
    public void ReplayedInitiation_IsRejected()
    {
        using var p = new Pair();
        var wall = DateTimeOffset.UtcNow;
        byte[] init = Initiation(p.Initiator, wall);
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, init, T0));
        Assert.Equal(HandshakeStatus.ReplayedTimestamp, Consume(p.ResponderId, p.Responder, init, T0 + TimeSpan.FromSeconds(10)));

        // Same timestamp in a fresh initiation is also a replay; a later one is fine.
        byte[] sameTime = Initiation(p.Initiator, wall);
        Assert.Equal(HandshakeStatus.ReplayedTimestamp, Consume(p.ResponderId, p.Responder, sameTime, T0 + TimeSpan.FromSeconds(20)));
        byte[] later = Initiation(p.Initiator, wall + TimeSpan.FromSeconds(1));
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, later, T0 + TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void InitiationFlood_IsRejected()
    {
        using var p = new Pair();
        var wall = DateTimeOffset.UtcNow;
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, Initiation(p.Initiator, wall), T0));
        byte[] second = Initiation(p.Initiator, wall + TimeSpan.FromSeconds(1));
        Assert.Equal(HandshakeStatus.Flood, Consume(p.ResponderId, p.Responder, second, T0 + TimeSpan.FromMilliseconds(10)));
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, second, T0 + TimeSpan.FromMilliseconds(21)));
    }

    [Fact]
    public void InitiationForAnotherResponder_DoesNotOpen()
    {
        using var p = new Pair();
        using var stranger = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        byte[] init = Initiation(p.Initiator, DateTimeOffset.UtcNow);
        Assert.Equal(HandshakeStatus.DecryptionFailed, Handshake.OpenInitiation(stranger, init, out var opened));
        Assert.Null(opened);
    }

    [Fact]
    public void InitiationFromAnotherPeer_IsUnknownPeer()
    {
        using var p = new Pair();
        using var otherId = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var other = new Handshake(otherId, p.ResponderId.PublicKey, null);
        byte[] init = Initiation(other, DateTimeOffset.UtcNow);
        Assert.Equal(HandshakeStatus.UnknownPeer, Consume(p.ResponderId, p.Responder, init, T0));
    }

    [Fact]
    public void TamperedInitiation_IsRejected()
    {
        using var p = new Pair();
        byte[] init = Initiation(p.Initiator, DateTimeOffset.UtcNow);
        byte[] badStatic = (byte[])init.Clone();
        badStatic[HandshakeInitiation.StaticOffset + 3] ^= 1;
        Assert.Equal(HandshakeStatus.DecryptionFailed, Consume(p.ResponderId, p.Responder, badStatic, T0));
        byte[] badTimestamp = (byte[])init.Clone();
        badTimestamp[HandshakeInitiation.TimestampOffset + 3] ^= 1;
        Assert.Equal(HandshakeStatus.DecryptionFailed, Consume(p.ResponderId, p.Responder, badTimestamp, T0));
        Assert.Equal(HandshakeStatus.WrongState, Handshake.OpenInitiation(p.ResponderId, init.AsSpan(0, 100), out _));
        // The genuine one still works after the forgeries.
        Assert.Equal(HandshakeStatus.Ok, Consume(p.ResponderId, p.Responder, init, T0));
    }

    [Theory]
    [MemberData(nameof(Rfc7748Vectors.LowOrderPoints), MemberType = typeof(Rfc7748Vectors))]
    public void LowOrderPeerKey_RefusesToHandshake(string point)
    {
        using var id = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var h = new Handshake(id, Key(point), null);
        Assert.False(h.IsUsable);
        var m = new byte[HandshakeInitiation.Size];
        Assert.Equal(HandshakeStatus.ZeroDiffieHellman, h.CreateInitiation(m, 1, DateTimeOffset.UtcNow, RandomNumberGenerator.Create()));
    }

    [Theory]
    [MemberData(nameof(Rfc7748Vectors.LowOrderPoints), MemberType = typeof(Rfc7748Vectors))]
    public void LowOrderEphemeral_InInitiation_IsRefused(string point)
    {
        using var p = new Pair();
        byte[] init = Initiation(p.Initiator, DateTimeOffset.UtcNow);
        Hex(point).CopyTo(init, HandshakeInitiation.EphemeralOffset);
        Assert.Equal(HandshakeStatus.ZeroDiffieHellman, Handshake.OpenInitiation(p.ResponderId, init, out _));
    }

    [Fact]
    public void CreateResponse_WithoutInitiation_IsWrongState()
    {
        using var p = new Pair();
        Assert.Equal(HandshakeStatus.WrongState, p.Responder.CreateResponse(new byte[HandshakeResponse.Size], 1, RandomNumberGenerator.Create()));
        Assert.Throws<ArgumentException>(() => p.Responder.CreateResponse(new byte[10], 1, RandomNumberGenerator.Create()));
    }

    [Fact]
    public void Tai64N_EncodesBigEndianWithWhitening()
    {
        var t = new byte[12];
        Tai64N.Write(t, DateTimeOffset.UnixEpoch);
        Assert.Equal("400000000000000a00000000", Convert.ToHexStringLower(t));
        Tai64N.Write(t, HandshakeVectors.Timestamp);
        Assert.Equal("400000005e0be10a1d000000", Convert.ToHexStringLower(t)); // 500 ms whitened down to 0x1d000000 ns

        var earlier = new byte[12];
        var later = new byte[12];
        Tai64N.Write(earlier, HandshakeVectors.Timestamp);
        Tai64N.Write(later, HandshakeVectors.Timestamp + TimeSpan.FromMilliseconds(20));
        Assert.True(later.AsSpan().SequenceCompareTo(earlier) > 0);
    }
}
