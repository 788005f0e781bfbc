using System.Security.Cryptography;
using System.Text;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Tests.Vectors;
using Org.BouncyCastle.Crypto.Digests;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class PrimitiveVectorTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s);

    [Theory]
    [MemberData(nameof(Rfc7748Vectors.ScalarMult), MemberType = typeof(Rfc7748Vectors))]
    public void X25519_Rfc7748_Section5_2(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(WireGuardKeys.TryAgree(Hex(scalar), Hex(u), shared));
        Assert.Equal(expected, Convert.ToHexStringLower(shared));
    }

    [Theory]
    [MemberData(nameof(Rfc7748Vectors.Iterated), MemberType = typeof(Rfc7748Vectors))]
    public void X25519_Rfc7748_Iterated(int iterations, string expected)
    {
        byte[] k = new byte[32], u = new byte[32], r = new byte[32];
        k[0] = u[0] = 9;
        for (int i = 0; i < iterations; i++)
        {
            Assert.True(WireGuardKeys.TryAgree(k, u, r));
            k.CopyTo(u);
            r.CopyTo(k);
        }
        Assert.Equal(expected, Convert.ToHexStringLower(k));
    }

    [Fact]
    public void X25519_Rfc7748_Section6_1_AliceAndBob()
    {
        var alice = WireGuardKey.FromBytes(Hex(Rfc7748Vectors.AlicePrivate));
        var bob = WireGuardKey.FromBytes(Hex(Rfc7748Vectors.BobPrivate));
        Assert.Equal(Rfc7748Vectors.AlicePublic, WireGuardKeys.PublicKeyOf(alice).ToHex());
        Assert.Equal(Rfc7748Vectors.BobPublic, WireGuardKeys.PublicKeyOf(bob).ToHex());

        var ab = new byte[32];
        var ba = new byte[32];
        Assert.True(WireGuardKeys.TryAgree(alice.Bytes, Hex(Rfc7748Vectors.BobPublic), ab));
        Assert.True(WireGuardKeys.TryAgree(bob.Bytes, Hex(Rfc7748Vectors.AlicePublic), ba));
        Assert.Equal(Rfc7748Vectors.SharedSecret, Convert.ToHexStringLower(ab));
        Assert.Equal(ab, ba);
    }

    [Theory]
    [MemberData(nameof(Rfc7748Vectors.LowOrderPoints), MemberType = typeof(Rfc7748Vectors))]
    public void X25519_LowOrderPoint_IsRefused(string point)
    {
        var shared = new byte[32];
        shared.AsSpan().Fill(0xAA);
        Assert.False(WireGuardKeys.TryAgree(Hex(Rfc7748Vectors.AlicePrivate), Hex(point), shared));
        Assert.All(shared, b => Assert.Equal(0, b));
    }

    [Theory]
    [MemberData(nameof(WgToolVectors.KeyPairs), MemberType = typeof(WgToolVectors))]
    public void PublicKey_MatchesWgPubkey(string privateKey, string publicKey)
    {
        var key = WireGuardKey.ParseBase64(privateKey);
        Assert.Equal(publicKey, WireGuardKeys.PublicKeyOf(key).ToBase64());
        var raw = new byte[32];
        WireGuardKeys.PublicKeyOf(key.Bytes, raw);
        Assert.Equal(publicKey, Convert.ToBase64String(raw));
    }

    [Fact]
    public void ChaCha20Poly1305_Rfc8439_Section2_8_2()
    {
        Assert.True(ChaCha20Poly1305.IsSupported);
        using var aead = new ChaCha20Poly1305(Hex(Rfc8439Vectors.Key));
        byte[] plaintext = Encoding.ASCII.GetBytes(Rfc8439Vectors.Plaintext);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        aead.Encrypt(Hex(Rfc8439Vectors.Nonce), plaintext, ciphertext, tag, Hex(Rfc8439Vectors.Aad));
        Assert.Equal(Rfc8439Vectors.Ciphertext, Convert.ToHexStringLower(ciphertext));
        Assert.Equal(Rfc8439Vectors.Tag, Convert.ToHexStringLower(tag));

        var roundTrip = new byte[plaintext.Length];
        aead.Decrypt(Hex(Rfc8439Vectors.Nonce), ciphertext, tag, roundTrip, Hex(Rfc8439Vectors.Aad));
        Assert.Equal(plaintext, roundTrip);

        tag[0] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() =>
            aead.Decrypt(Hex(Rfc8439Vectors.Nonce), ciphertext, tag, roundTrip, Hex(Rfc8439Vectors.Aad)));
    }

    [Fact]
    public void Blake2s_Rfc7693_AppendixB_Abc()
    {
        var digest = new byte[32];
        Kdf.Hash(digest, "abc"u8);
        Assert.Equal(Rfc7693Vectors.AbcDigest, Convert.ToHexStringLower(digest));
    }

    [Fact]
    public void Blake2s_Rfc7693_AppendixE_SelfTest()
    {
        // The RFC's blake2s_selftest: unkeyed and keyed digests of several lengths over a
        // pseudo-random sequence, all fed into one BLAKE2s-256 whose result is fixed.
        var grand = new Blake2sDigest(256);
        foreach (int outLen in new[] { 16, 20, 28, 32 })
        {
            foreach (int inLen in new[] { 0, 3, 64, 65, 255, 1024 })
            {
                byte[] input = SelfTestSequence(inLen, (uint)inLen);
                var md = new byte[outLen];
                var unkeyed = new Blake2sDigest(outLen * 8);
                unkeyed.BlockUpdate(input);
                unkeyed.DoFinal(md);
                grand.BlockUpdate(md);

                var keyed = new Blake2sDigest(SelfTestSequence(outLen, (uint)outLen), outLen, null, null);
                keyed.BlockUpdate(input);
                keyed.DoFinal(md);
                grand.BlockUpdate(md);
            }
        }
        var result = new byte[32];
        grand.DoFinal(result);
        Assert.Equal(Rfc7693Vectors.SelfTestGrandHash, Convert.ToHexStringLower(result));
    }

    private static byte[] SelfTestSequence(int length, uint seed)
    {
        var output = new byte[length];
        uint a = unchecked(0xDEAD4BAD * seed), b = 1;
        for (int i = 0; i < length; i++)
        {
            uint t = unchecked(a + b);
            a = b;
            b = t;
            output[i] = (byte)(t >> 24);
        }
        return output;
    }

    [Fact]
    public void Mac_IsKeyedBlake2s128()
    {
        var mac = new byte[16];
        Kdf.Mac(mac, KeyBytes(32), Encoding.ASCII.GetBytes(Rfc7693Vectors.DerivationInput));
        Assert.Equal(Rfc7693Vectors.Mac16, Convert.ToHexStringLower(mac));
    }

    [Fact]
    public void Hmac_MatchesIndependentImplementation()
    {
        var output = new byte[32];
        byte[] input = Encoding.ASCII.GetBytes(Rfc7693Vectors.DerivationInput);
        Kdf.Hmac(output, KeyBytes(32), input);
        Assert.Equal(Rfc7693Vectors.Hmac, Convert.ToHexStringLower(output));

        // Split input gives the same result as the concatenation.
        Kdf.Hmac(output, KeyBytes(32), input.AsSpan(0, 5), input.AsSpan(5));
        Assert.Equal(Rfc7693Vectors.Hmac, Convert.ToHexStringLower(output));

        Kdf.Hmac(output, KeyBytes(100), input);
        Assert.Equal(Rfc7693Vectors.HmacLongKey, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Kdf123_AreHkdfExpandOfHmacBlake2s()
    {
        byte[] input = Encoding.ASCII.GetBytes(Rfc7693Vectors.DerivationInput);
        byte[] t1 = new byte[32], t2 = new byte[32], t3 = new byte[32];
        Kdf.Kdf3(t1, t2, t3, KeyBytes(32), input);
        Assert.Equal(Rfc7693Vectors.Kdf1, Convert.ToHexStringLower(t1));
        Assert.Equal(Rfc7693Vectors.Kdf2, Convert.ToHexStringLower(t2));
        Assert.Equal(Rfc7693Vectors.Kdf3, Convert.ToHexStringLower(t3));

        byte[] u1 = new byte[32], u2 = new byte[32];
        Kdf.Kdf2(u1, u2, KeyBytes(32), input);
        Assert.Equal(t1, u1);
        Assert.Equal(t2, u2);

        // In place: the chaining key is replaced by its own KDF1 output.
        byte[] chainingKey = KeyBytes(32);
        Kdf.Kdf1(chainingKey, chainingKey, input);
        Assert.Equal(t1, chainingKey);
    }

    [Fact]
    public void HandshakeStart_IsHashOfConstructionAndIdentifier()
    {
        var c = new byte[32];
        var h = new byte[32];
        Kdf.Hash(c, Encoding.ASCII.GetBytes(Constants.Construction));
        Kdf.Hash(h, c, Encoding.ASCII.GetBytes(Constants.Identifier));
        Assert.Equal(Rfc7693Vectors.InitialChainingKey, Convert.ToHexStringLower(c));
        Assert.Equal(Rfc7693Vectors.InitialHash, Convert.ToHexStringLower(h));
    }

    private static byte[] KeyBytes(int length) => Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
}
