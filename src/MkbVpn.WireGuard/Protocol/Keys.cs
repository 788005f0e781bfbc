using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using NSec.Cryptography;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// A 32-byte WireGuard key (Curve25519 private or public key, or a pre-shared key).
/// Equality is constant-time; <see cref="ToString"/> never prints the key material.
/// </summary>
public sealed class WireGuardKey : IEquatable<WireGuardKey>
{
    public const int Size = 32;
    private readonly byte[] _bytes;

    private WireGuardKey(byte[] bytes) => _bytes = bytes;

    public ReadOnlySpan<byte> Bytes => _bytes;

    public static WireGuardKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
            throw new ArgumentException($"a WireGuard key is {Size} bytes, not {bytes.Length}", nameof(bytes));
        return new WireGuardKey(bytes.ToArray());
    }

    /// <summary>Parses the base64 form used by wg(8) and wg-quick. The message never echoes the input.</summary>
    public static bool TryParseBase64(string? text, [NotNullWhen(true)] out WireGuardKey? key)
    {
        key = null;
        if (text is null || text.Length != 44 || text[43] != '=')
            return false;
        Span<byte> buffer = stackalloc byte[33];
        if (!Convert.TryFromBase64String(text, buffer, out int written) || written != Size)
            return false;
        key = new WireGuardKey(buffer[..Size].ToArray());
        CryptographicOperations.ZeroMemory(buffer);
        return true;
    }

    public static WireGuardKey ParseBase64(string text) =>
        TryParseBase64(text, out var key) ? key : throw new FormatException("not a valid WireGuard key (44 characters of base64)");

    /// <summary>Parses the lower-case hex form used by the UAPI configuration protocol.</summary>
    public static bool TryParseHex(string? text, [NotNullWhen(true)] out WireGuardKey? key)
    {
        key = null;
        return text is not null && TryParseHex(text.AsSpan(), out key);
    }

    /// <inheritdoc cref="TryParseHex(string?, out WireGuardKey?)"/>
    public static bool TryParseHex(ReadOnlySpan<char> text, [NotNullWhen(true)] out WireGuardKey? key)
    {
        key = null;
        if (text.Length != Size * 2)
            return false;
        var bytes = new byte[Size];
        if (Convert.FromHexString(text, bytes, out _, out int written) != System.Buffers.OperationStatus.Done || written != Size)
            return false;
        key = new WireGuardKey(bytes);
        return true;
    }

    public string ToBase64() => Convert.ToBase64String(_bytes);

    public string ToHex() => Convert.ToHexStringLower(_bytes);

    public bool IsZero
    {
        get
        {
            int acc = 0;
            foreach (byte b in _bytes)
                acc |= b;
            return acc == 0;
        }
    }

    public bool Equals(WireGuardKey? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    public override bool Equals(object? obj) => obj is WireGuardKey k && Equals(k);

    // Hash of a public value only: callers use public keys as dictionary keys.
    public override int GetHashCode() => BitConverter.ToInt32(_bytes, 0);

    public override string ToString() => "(key)";
}

/// <summary>Key generation and derivation (X25519 through libsodium via NSec).</summary>
public static class WireGuardKeys
{
    /// <summary>A new private key, clamped as RFC 7748 and wg genkey do.</summary>
    public static WireGuardKey NewPrivateKey()
    {
        Span<byte> raw = stackalloc byte[WireGuardKey.Size];
        RandomNumberGenerator.Fill(raw);
        raw[0] &= 248;
        raw[31] &= 127;
        raw[31] |= 64;
        var key = WireGuardKey.FromBytes(raw);
        CryptographicOperations.ZeroMemory(raw);
        return key;
    }

    public static WireGuardKey NewPresharedKey()
    {
        Span<byte> raw = stackalloc byte[WireGuardKey.Size];
        RandomNumberGenerator.Fill(raw);
        var key = WireGuardKey.FromBytes(raw);
        CryptographicOperations.ZeroMemory(raw);
        return key;
    }

    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        using var key = Key.Import(KeyAgreementAlgorithm.X25519, privateKey.Bytes, KeyBlobFormat.RawPrivateKey);
        return WireGuardKey.FromBytes(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    /// <summary>
    /// DH(private, public) of whitepaper 5.4: X25519 into <paramref name="sharedSecret"/>.
    /// Returns false, with the output zeroed, when the result is all zeros (a low-order public key,
    /// RFC 7748 section 6.1) or the public key cannot be imported; WireGuard refuses such handshakes.
    /// </summary>
    internal static bool TryAgree(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret)
    {
        System.Diagnostics.Debug.Assert(privateKey.Length == WireGuardKey.Size && publicKey.Length == WireGuardKey.Size);
        System.Diagnostics.Debug.Assert(sharedSecret.Length == WireGuardKey.Size);
        // libsodium refuses an all-zero result itself; the check here keeps the rule visible (and constant-time).
        if (MkbVpn.WireGuard.Interop.Sodium.ScalarMult(sharedSecret, privateKey, publicKey) && !IsAllZero(sharedSecret))
            return true;
        sharedSecret.Clear();
        return false;
    }

    /// <summary>The X25519 public key of a raw 32-byte private scalar, into a caller buffer.</summary>
    internal static void PublicKeyOf(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        System.Diagnostics.Debug.Assert(privateKey.Length == WireGuardKey.Size && publicKey.Length == WireGuardKey.Size);
        MkbVpn.WireGuard.Interop.Sodium.ScalarMultBase(publicKey, privateKey);
    }

    private static bool IsAllZero(ReadOnlySpan<byte> bytes)
    {
        int acc = 0;
        foreach (byte b in bytes)
            acc |= b;
        return acc == 0;
    }
}
