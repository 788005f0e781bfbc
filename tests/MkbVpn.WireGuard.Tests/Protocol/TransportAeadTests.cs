using System.Security.Cryptography;
using MkbVpn.WireGuard.Interop;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

/// <summary>
/// The transport-data AEAD (libcrypto's ChaCha20 stream and Poly1305 MAC, composed as RFC 8439 2.8 says) against the
/// BCL's ChaCha20Poly1305 (itself checked against RFC 8439 in PrimitiveVectorTests): same ciphertext and tag for every
/// length a packet can have (each partial last block, each boundary of the keystream chunks), packet after packet on
/// one context, in place and between two buffers; a bad tag or nonce is refused and the output cleared.
/// </summary>
public sealed class TransportAeadTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)] // the 16-byte steps the NativeAOT engine (baseline x86-64) runs
    public void KeystreamXor_MatchesBytewiseXor_ForEveryLength_InPlaceAndBetweenBuffers(bool wide)
    {
        var random = new Random(4711);
        var keystream = new byte[400];
        var data = new byte[400];
        random.NextBytes(keystream);
        random.NextBytes(data);
        for (int length = 0; length <= 300; length++)
        {
            var expected = new byte[length];
            for (int i = 0; i < length; i++)
                expected[i] = (byte)(data[i] ^ keystream[i]);
            var output = new byte[length + 1];
            output[length] = 0x5a;
            TransportAead.Xor(data.AsSpan(0, length), keystream, output, wide);
            Assert.Equal(expected, output.AsSpan(0, length).ToArray());
            Assert.Equal(0x5a, output[length]); // nothing written past the end
            byte[] inPlace = data.AsSpan(0, length).ToArray();
            TransportAead.Xor(inPlace, keystream, inPlace, wide);
            Assert.Equal(expected, inPlace);
        }
    }

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
        int[] lengths = [.. Enumerable.Range(0, 1601), 4031, 4032, 4033, 4095, 4096, 4097, 4160, 8063, 8064, 8065, 9000, 65519, 0, 1420];
        foreach (int length in lengths)
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

            var separate = new byte[length];
            seal.Encrypt(nonce, plaintext, separate, tag); // between two buffers, the input left as it was
            Assert.Equal(expected, separate);
            Assert.Equal(expectedTag, tag);
            var opened = new byte[length];
            Assert.True(open.TryDecrypt(nonce, separate, tag, opened));
            Assert.Equal(plaintext, opened);
            Assert.Equal(expected, separate);
        }
    }

    [Theory]
    [InlineData(1420)]
    [InlineData(9000)] // more than one keystream chunk
    public void ABadTagInPlace_ClearsTheBuffer_WithoutWritingPlaintextFirst(int length)
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var seal = TransportAead.Create(key, encrypt: true);
        using var open = TransportAead.Create(key, encrypt: false);
        var nonce = new byte[12];
        Keypair.WriteNonce(nonce, 3);
        byte[] buffer = RandomNumberGenerator.GetBytes(length);
        var tag = new byte[16];
        seal.Encrypt(nonce, buffer, buffer, tag);
        buffer[^1] ^= 0x80; // the last byte: the MAC covers it, the keystream's last block too
        Assert.False(open.TryDecrypt(nonce, buffer, tag, buffer));
        Assert.All(buffer, b => Assert.Equal(0, b));
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
