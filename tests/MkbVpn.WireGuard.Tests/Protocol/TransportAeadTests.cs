using System.Security.Cryptography;
using MkbVpn.WireGuard.Interop;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

/// <summary>
/// The transport-data AEAD on a reused libcrypto context against the BCL's ChaCha20Poly1305 (itself checked against
/// RFC 8439 in PrimitiveVectorTests): same ciphertext and tag for every length a packet can have, packet after
/// packet on one context, in place; a bad tag or nonce is refused and the output cleared.
/// </summary>
public sealed class TransportAeadTests
{
    [Fact]
    public void LibcryptoIsUsedOnThisSystem() => Assert.True(TransportAead.UsesEvp);

    [Fact]
    public void SealsAsTheBcl_ForEveryPacketLength_OnOneReusedContext()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var seal = TransportAead.Create(key, encrypt: true);
        using var open = TransportAead.Create(key, encrypt: false);
        using var reference = new ChaCha20Poly1305(key);
        var nonce = new byte[12];
        ulong counter = 0;
        foreach (int length in new[] { 0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 1280, 1420, 1440, 9000, 65519, 0, 1420 })
        {
            Keypair.WriteNonce(nonce, counter++);
            byte[] plaintext = RandomNumberGenerator.GetBytes(length);
            var expected = new byte[length];
            var expectedTag = new byte[16];
            reference.Encrypt(nonce, plaintext, expected, expectedTag);

            byte[] buffer = plaintext.ToArray();
            var tag = new byte[16];
            seal.Encrypt(nonce, buffer, buffer, tag); // in place, as the engine does
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(buffer));
            Assert.Equal(Convert.ToHexString(expectedTag), Convert.ToHexString(tag));

            Assert.True(open.TryDecrypt(nonce, buffer, tag, buffer));
            Assert.Equal(plaintext, buffer);
        }
    }

    [Fact]
    public void RefusesABadTagOrNonce_ClearsTheOutput_AndGoesOnWorking()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var seal = TransportAead.Create(key, encrypt: true);
        using var open = TransportAead.Create(key, encrypt: false);
        var nonce = new byte[12];
        Keypair.WriteNonce(nonce, 7);
        byte[] plaintext = RandomNumberGenerator.GetBytes(1420);
        var ciphertext = new byte[1420];
        var tag = new byte[16];
        seal.Encrypt(nonce, plaintext, ciphertext, tag);

        var output = new byte[1420];
        tag[3] ^= 0x40;
        Assert.False(open.TryDecrypt(nonce, ciphertext, tag, output));
        Assert.All(output, b => Assert.Equal(0, b));
        tag[3] ^= 0x40;

        var otherNonce = new byte[12];
        Keypair.WriteNonce(otherNonce, 8);
        Assert.False(open.TryDecrypt(otherNonce, ciphertext, tag, output));

        ciphertext[700] ^= 1;
        Assert.False(open.TryDecrypt(nonce, ciphertext, tag, output));
        ciphertext[700] ^= 1;

        Assert.True(open.TryDecrypt(nonce, ciphertext, tag, output)); // the context is not left broken
        Assert.Equal(plaintext, output);
    }

    [Fact]
    public void AnotherKey_DoesNotOpen()
    {
        using var seal = TransportAead.Create(RandomNumberGenerator.GetBytes(32), encrypt: true);
        using var open = TransportAead.Create(RandomNumberGenerator.GetBytes(32), encrypt: false);
        var nonce = new byte[12];
        byte[] buffer = RandomNumberGenerator.GetBytes(100);
        var tag = new byte[16];
        seal.Encrypt(nonce, buffer, buffer, tag);
        Assert.False(open.TryDecrypt(nonce, buffer, tag, buffer));
    }

    [Fact]
    public void AfterDispose_CallsThrowObjectDisposed()
    {
        var seal = TransportAead.Create(RandomNumberGenerator.GetBytes(32), encrypt: true);
        seal.Dispose();
        var buffer = new byte[32];
        Assert.Throws<ObjectDisposedException>(() => seal.Encrypt(new byte[12], buffer, buffer, new byte[16]));
    }
}
