using System.Diagnostics;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Digests;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// The hash-based primitives of whitepaper section 5.4: HASH (BLAKE2s-256), MAC (keyed BLAKE2s-128),
/// HMAC (HMAC-BLAKE2s, RFC 2104 with a 64-byte block) and KDF1/2/3 (HKDF, RFC 5869, with HMAC-BLAKE2s).
/// BLAKE2s itself comes from BouncyCastle; everything here writes into caller buffers.
/// </summary>
internal static class Kdf
{
    public const int HashSize = 32;
    public const int MacSize = 16;
    public const int BlockSize = 64;

    /// <summary>HASH(a || b || c): unkeyed BLAKE2s with a 32-byte output.</summary>
    public static void Hash(Span<byte> output, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b = default, ReadOnlySpan<byte> c = default)
    {
        Debug.Assert(output.Length == HashSize);
        var digest = new Blake2sDigest(HashSize * 8);
        digest.BlockUpdate(a);
        digest.BlockUpdate(b);
        digest.BlockUpdate(c);
        digest.DoFinal(output);
    }

    /// <summary>MAC(key, input): BLAKE2s keyed with <paramref name="key"/> (at most 32 bytes), 16-byte output.</summary>
    public static void Mac(Span<byte> output, ReadOnlySpan<byte> key, ReadOnlySpan<byte> input)
    {
        Debug.Assert(output.Length == MacSize);
        Debug.Assert(key.Length is > 0 and <= HashSize);
        byte[] keyCopy = key.ToArray();
        var digest = new Blake2sDigest(keyCopy, MacSize, null, null);
        CryptographicOperations.ZeroMemory(keyCopy);
        digest.BlockUpdate(input);
        digest.DoFinal(output);
        digest.Reset();
    }

    /// <summary>HMAC(key, a || b): HMAC-BLAKE2s, 32-byte output.</summary>
    public static void Hmac(Span<byte> output, ReadOnlySpan<byte> key, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b = default)
    {
        Debug.Assert(output.Length == HashSize);
        Span<byte> pad = stackalloc byte[BlockSize];
        Span<byte> inner = stackalloc byte[HashSize];
        pad.Clear();
        if (key.Length > BlockSize)
            Hash(pad[..HashSize], key);
        else
            key.CopyTo(pad);

        for (int i = 0; i < BlockSize; i++)
            pad[i] ^= 0x36;
        var digest = new Blake2sDigest(HashSize * 8);
        digest.BlockUpdate(pad);
        digest.BlockUpdate(a);
        digest.BlockUpdate(b);
        digest.DoFinal(inner);

        for (int i = 0; i < BlockSize; i++)
            pad[i] ^= 0x36 ^ 0x5c;
        digest.BlockUpdate(pad);
        digest.BlockUpdate(inner);
        digest.DoFinal(output);

        CryptographicOperations.ZeroMemory(pad);
        CryptographicOperations.ZeroMemory(inner);
    }

    /// <summary>KDF1(key, input) = τ1.</summary>
    public static void Kdf1(Span<byte> t1, ReadOnlySpan<byte> key, ReadOnlySpan<byte> input) =>
        Derive(key, input, t1, default, default);

    /// <summary>KDF2(key, input) = (τ1, τ2).</summary>
    public static void Kdf2(Span<byte> t1, Span<byte> t2, ReadOnlySpan<byte> key, ReadOnlySpan<byte> input) =>
        Derive(key, input, t1, t2, default);

    /// <summary>KDF3(key, input) = (τ1, τ2, τ3).</summary>
    public static void Kdf3(Span<byte> t1, Span<byte> t2, Span<byte> t3, ReadOnlySpan<byte> key, ReadOnlySpan<byte> input) =>
        Derive(key, input, t1, t2, t3);

    // τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τi = HMAC(τ0, τ(i-1) || i).
    // Outputs may alias the key (the chaining key is usually replaced in place).
    private static void Derive(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        Debug.Assert(t1.Length == HashSize);
        Debug.Assert(t2.IsEmpty || t2.Length == HashSize);
        Debug.Assert(t3.IsEmpty || (t3.Length == HashSize && !t2.IsEmpty));
        Span<byte> prk = stackalloc byte[HashSize];
        Span<byte> previous = stackalloc byte[HashSize + 1];
        Hmac(prk, key, input);

        previous[0] = 1;
        Hmac(previous[..HashSize], prk, previous[..1]);
        previous[..HashSize].CopyTo(t1);

        if (!t2.IsEmpty)
        {
            previous[HashSize] = 2;
            Hmac(t2, prk, previous);
            t2.CopyTo(previous);
            if (!t3.IsEmpty)
            {
                previous[HashSize] = 3;
                Hmac(t3, prk, previous);
            }
        }

        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(previous);
    }
}
