using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tests.Vectors;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class CookiesTests
{
    private static readonly TimeSpan T0 = TimeSpan.FromHours(1);
    private static readonly byte[] Source = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("192.0.2.7"), 51820));
    private static readonly byte[] OtherSource = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("192.0.2.8"), 51820));

    private sealed class Setup : IDisposable
    {
        public readonly StaticIdentity Initiator = new(WireGuardKeys.NewPrivateKey());
        public readonly StaticIdentity Responder = new(WireGuardKeys.NewPrivateKey());
        public readonly Handshake Handshake;
        public readonly CookieGenerator Generator;
        public readonly CookieChecker Checker;

        public Setup()
        {
            Handshake = new Handshake(Initiator, Responder.PublicKey, null);
            Generator = new CookieGenerator(Responder.PublicKey);
            Checker = new CookieChecker(Responder.PublicKey, RandomNumberGenerator.Create());
        }

        public byte[] NewInitiation(TimeSpan now, int second = 0)
        {
            var m = new byte[HandshakeInitiation.Size];
            Assert.Equal(HandshakeStatus.Ok, Handshake.CreateInitiation(m, 1, DateTimeOffset.UnixEpoch.AddSeconds(second), RandomNumberGenerator.Create()));
            Generator.AddMacs(m, now);
            return m;
        }

        public void Dispose()
        {
            Handshake.Dispose();
            Generator.Dispose();
            Checker.Dispose();
            Initiator.Dispose();
            Responder.Dispose();
        }
    }

    [Fact]
    public void Mac1_MatchesIndependentReference()
    {
        // The Python reference computed mac1 = MAC(HASH("mac1----" || Spub_r), msg[..116]) with mac2 zero.
        byte[] reference = Convert.FromHexString(HandshakeVectors.Initiation);
        var responderPublic = WireGuardKeys.PublicKeyOf(WireGuardKey.FromBytes(Convert.FromHexString(HandshakeVectors.ResponderStatic)));
        using var generator = new CookieGenerator(responderPublic);
        byte[] copy = (byte[])reference.Clone();
        copy.AsSpan(HandshakeInitiation.Mac1Offset).Fill(0xFF);
        generator.AddMacs(copy, T0);
        Assert.Equal(Convert.ToHexStringLower(reference), Convert.ToHexStringLower(copy));

        using var checker = new CookieChecker(responderPublic, RandomNumberGenerator.Create());
        Assert.Equal(MacStatus.Valid, checker.Check(reference, Source, T0, underLoad: false));

        byte[] response = Convert.FromHexString(HandshakeVectors.Response);
        var initiatorPublic = WireGuardKeys.PublicKeyOf(WireGuardKey.FromBytes(Convert.FromHexString(HandshakeVectors.InitiatorStatic)));
        using var initiatorChecker = new CookieChecker(initiatorPublic, RandomNumberGenerator.Create());
        Assert.Equal(MacStatus.Valid, initiatorChecker.Check(response, Source, T0, underLoad: false));
    }

    [Fact]
    public void Mac1_Wrong_IsInvalid_AndNeverThrows()
    {
        using var s = new Setup();
        byte[] m = s.NewInitiation(T0);
        Assert.Equal(MacStatus.Valid, s.Checker.Check(m, Source, T0, underLoad: false));

        byte[] badMac = (byte[])m.Clone();
        badMac[HandshakeInitiation.Mac1Offset] ^= 1;
        Assert.Equal(MacStatus.InvalidMac1, s.Checker.Check(badMac, Source, T0, underLoad: false));

        byte[] badBody = (byte[])m.Clone();
        badBody[20] ^= 1;
        Assert.Equal(MacStatus.InvalidMac1, s.Checker.Check(badBody, Source, T0, underLoad: true));

        Assert.Equal(MacStatus.InvalidMac1, s.Checker.Check(m.AsSpan(0, 147), Source, T0, underLoad: false));
        Assert.Equal(MacStatus.InvalidMac1, s.Checker.Check(ReadOnlySpan<byte>.Empty, Source, T0, underLoad: false));
        Assert.Equal(MacStatus.InvalidMac1, s.Checker.Check(new byte[64], Source, T0, underLoad: false));

        // Keyed to the responder: another responder's checker refuses it.
        using var other = new CookieChecker(s.Initiator.PublicKey, RandomNumberGenerator.Create());
        Assert.Equal(MacStatus.InvalidMac1, other.Check(m, Source, T0, underLoad: false));
    }

    [Fact]
    public void UnderLoad_CookieRoundTrip_ThenMac2Accepted()
    {
        using var s = new Setup();
        byte[] first = s.NewInitiation(T0);
        Assert.All(first[HandshakeInitiation.Mac2Offset..], b => Assert.Equal(0, b));
        Assert.Equal(MacStatus.NeedCookie, s.Checker.Check(first, Source, T0, underLoad: true));

        var reply = new byte[CookieReply.Size];
        Assert.True(s.Checker.TryWriteReply(reply, first, Source, T0));
        Assert.Equal(MessageType.CookieReply, Messages.Classify(reply));
        Assert.Equal(1u, CookieReply.Receiver(reply));
        Assert.True(s.Generator.ConsumeReply(reply, T0 + TimeSpan.FromSeconds(1)));
        Assert.False(s.Generator.ConsumeReply(reply, T0 + TimeSpan.FromSeconds(1))); // one reply per message

        byte[] second = s.NewInitiation(T0 + TimeSpan.FromSeconds(2), second: 1);
        Assert.Contains(second[HandshakeInitiation.Mac2Offset..], b => b != 0);
        Assert.Equal(MacStatus.Valid, s.Checker.Check(second, Source, T0 + TimeSpan.FromSeconds(2), underLoad: true));
        // The cookie is bound to the source address.
        Assert.Equal(MacStatus.NeedCookie, s.Checker.Check(second, OtherSource, T0 + TimeSpan.FromSeconds(2), underLoad: true));
    }

    [Fact]
    public void CookieReply_Tampered_OrForAnotherMessage_IsRefused()
    {
        using var s = new Setup();
        byte[] first = s.NewInitiation(T0);
        var reply = new byte[CookieReply.Size];
        Assert.True(s.Checker.TryWriteReply(reply, first, Source, T0));

        byte[] tampered = (byte[])reply.Clone();
        tampered[CookieReply.CookieOffset] ^= 1;
        Assert.False(s.Generator.ConsumeReply(tampered, T0));

        // A newer message was sent: the reply's associated data (old mac1) no longer matches.
        s.NewInitiation(T0, second: 1);
        Assert.False(s.Generator.ConsumeReply(reply, T0));
        Assert.False(s.Generator.HasValidCookie(T0));
        Assert.False(s.Generator.ConsumeReply(reply.AsSpan(0, 63), T0));
    }

    [Fact]
    public void Cookie_ExpiresAfterRefreshTime_OnBothSides()
    {
        using var s = new Setup();
        byte[] first = s.NewInitiation(T0);
        var reply = new byte[CookieReply.Size];
        Assert.True(s.Checker.TryWriteReply(reply, first, Source, T0));
        Assert.True(s.Generator.ConsumeReply(reply, T0));
        Assert.True(s.Generator.HasValidCookie(T0 + Constants.CookieRefreshTime));
        Assert.False(s.Generator.HasValidCookie(T0 + Constants.CookieRefreshTime + TimeSpan.FromSeconds(1)));

        byte[] late = s.NewInitiation(T0 + TimeSpan.FromSeconds(100), second: 1);
        Assert.Equal(MacStatus.Valid, s.Checker.Check(late, Source, T0 + TimeSpan.FromSeconds(100), underLoad: true));
        // Past the refresh time the secret is stale: the same mac2 no longer counts.
        Assert.Equal(MacStatus.NeedCookie, s.Checker.Check(late, Source, T0 + TimeSpan.FromSeconds(121), underLoad: true));
    }

    [Fact]
    public void SecretRotates_AfterRefreshTime()
    {
        var random = new ScriptedRandom();
        using var s = new Setup();
        using var checker = new CookieChecker(s.Responder.PublicKey, random);
        byte[] m = s.NewInitiation(T0);
        var r1 = new byte[CookieReply.Size];
        var r2 = new byte[CookieReply.Size];
        var r3 = new byte[CookieReply.Size];
        Assert.True(checker.TryWriteReply(r1, m, Source, T0));
        Assert.True(s.Generator.ConsumeReply(r1, T0));
        byte[] withCookie1 = s.NewInitiation(T0, second: 1);
        Assert.True(checker.TryWriteReply(r2, withCookie1, Source, T0 + TimeSpan.FromSeconds(60)));
        Assert.Equal(MacStatus.Valid, checker.Check(withCookie1, Source, T0 + TimeSpan.FromSeconds(60), underLoad: true));
        Assert.True(checker.TryWriteReply(r3, withCookie1, Source, T0 + TimeSpan.FromSeconds(121)));
        // The mac2 made with the first secret's cookie is not valid under the rotated secret...
        Assert.Equal(MacStatus.NeedCookie, checker.Check(withCookie1, Source, T0 + TimeSpan.FromSeconds(121), underLoad: true));
        // ...but the cookie from the rotated secret is, past the first secret's lifetime.
        Assert.True(s.Generator.ConsumeReply(r3, T0 + TimeSpan.FromSeconds(121)));
        byte[] withCookie2 = s.NewInitiation(T0 + TimeSpan.FromSeconds(122), second: 2);
        Assert.Equal(MacStatus.Valid, checker.Check(withCookie2, Source, T0 + TimeSpan.FromSeconds(122), underLoad: true));
        Assert.NotEqual(r1[CookieReply.CookieOffset..], r3[CookieReply.CookieOffset..]);
    }

    [Fact]
    public void SourceBytes_MapsV4InV6_AndAppendsPort()
    {
        Assert.Equal("c000020fca6c", Convert.ToHexStringLower(MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.15"), 51820))));
        Assert.Equal(18, MacLayout.SourceBytes(new IPEndPoint(IPAddress.IPv6Loopback, 1)).Length);
    }
}
