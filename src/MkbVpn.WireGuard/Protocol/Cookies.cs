using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>Outcome of checking the MACs of a handshake message (whitepaper 5.3 and 5.4.4).</summary>
internal enum MacStatus
{
    /// <summary>mac1 is wrong: drop silently, the sender does not know our public key.</summary>
    InvalidMac1,
    /// <summary>mac1 is right but we are under load and mac2 is missing or stale: answer with a cookie reply.</summary>
    NeedCookie,
    /// <summary>Process the message.</summary>
    Valid,
}

/// <summary>Where the MACs sit in a handshake message, and the keys HASH(label || Spub).</summary>
internal static class MacLayout
{
    public static bool TryGetOffsets(ReadOnlySpan<byte> message, out int mac1Offset, out int mac2Offset)
    {
        switch (Messages.Classify(message))
        {
            case MessageType.HandshakeInitiation:
                (mac1Offset, mac2Offset) = (HandshakeInitiation.Mac1Offset, HandshakeInitiation.Mac2Offset);
                return true;
            case MessageType.HandshakeResponse:
                (mac1Offset, mac2Offset) = (HandshakeResponse.Mac1Offset, HandshakeResponse.Mac2Offset);
                return true;
            default:
                mac1Offset = mac2Offset = 0;
                return false;
        }
    }

    public static byte[] LabelKey(string label, ReadOnlySpan<byte> publicKey)
    {
        var key = new byte[Kdf.HashSize];
        Kdf.Hash(key, Encoding.ASCII.GetBytes(label), publicKey);
        return key;
    }

    /// <summary>The bytes a cookie is bound to (section 5.4.7: the source IP address and UDP port).</summary>
    public static byte[] SourceBytes(IPEndPoint source)
    {
        ArgumentNullException.ThrowIfNull(source);
        byte[] address = source.Address.IsIPv4MappedToIPv6 ? source.Address.MapToIPv4().GetAddressBytes() : source.Address.GetAddressBytes();
        var bytes = new byte[address.Length + 2];
        address.CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(address.Length), (ushort)source.Port);
        return bytes;
    }
}

/// <summary>
/// Responder side of the cookie mechanism for one local static key (whitepaper 5.3, 5.4.4, 5.4.7):
/// checks mac1 always and mac2 under load, and writes cookie replies. The cookie secret is random
/// (from the passed-in source) and replaced when older than <see cref="Constants.CookieRefreshTime"/>.
/// Not thread-safe.
/// </summary>
internal sealed class CookieChecker : IDisposable
{
    private readonly byte[] _mac1Key;
    private readonly Key _cookieKey;
    private readonly byte[] _secret = new byte[Kdf.HashSize];
    private readonly RandomNumberGenerator _random;
    private TimeSpan? _secretSet;

    public CookieChecker(WireGuardKey localPublicKey, RandomNumberGenerator random)
    {
        ArgumentNullException.ThrowIfNull(localPublicKey);
        ArgumentNullException.ThrowIfNull(random);
        _random = random;
        _mac1Key = MacLayout.LabelKey(Constants.LabelMac1, localPublicKey.Bytes);
        byte[] cookieKey = MacLayout.LabelKey(Constants.LabelCookie, localPublicKey.Bytes);
        _cookieKey = Key.Import(AeadAlgorithm.XChaCha20Poly1305, cookieKey, KeyBlobFormat.RawSymmetricKey);
        CryptographicOperations.ZeroMemory(cookieKey);
    }

    /// <summary>
    /// Checks mac1 (always) and, when <paramref name="underLoad"/>, mac2 against the cookie for
    /// <paramref name="source"/>. Comparisons are constant-time. Never throws for bad input. With
    /// <paramref name="underLoad"/> false only the immutable mac1 key is read: safe from any thread.
    /// </summary>
    public MacStatus Check(ReadOnlySpan<byte> message, ReadOnlySpan<byte> source, TimeSpan now, bool underLoad)
    {
        if (!MacLayout.TryGetOffsets(message, out int mac1Offset, out int mac2Offset))
            return MacStatus.InvalidMac1;

        Span<byte> mac = stackalloc byte[Kdf.MacSize];
        Kdf.Mac(mac, _mac1Key, message[..mac1Offset]);
        if (!CryptographicOperations.FixedTimeEquals(mac, message.Slice(mac1Offset, Kdf.MacSize)))
            return MacStatus.InvalidMac1;
        if (!underLoad)
            return MacStatus.Valid;

        // A cookie made from a secret older than the refresh time is no longer valid.
        if (_secretSet is not { } set || now - set > Constants.CookieRefreshTime)
            return MacStatus.NeedCookie;
        Span<byte> cookie = stackalloc byte[Kdf.MacSize];
        Kdf.Mac(cookie, _secret, source);
        Kdf.Mac(mac, cookie, message[..mac2Offset]);
        CryptographicOperations.ZeroMemory(cookie);
        return CryptographicOperations.FixedTimeEquals(mac, message.Slice(mac2Offset, Kdf.MacSize))
            ? MacStatus.Valid
            : MacStatus.NeedCookie;
    }

    /// <summary>
    /// Writes a 64-byte cookie reply to <paramref name="message"/> (whose mac1 was valid), for <paramref name="source"/>:
    /// τ = MAC(secret, source), encrypted with XChaCha20-Poly1305 under HASH("cookie--" || Spub), nonce random, ad = the message's mac1.
    /// </summary>
    public bool TryWriteReply(Span<byte> reply, ReadOnlySpan<byte> message, ReadOnlySpan<byte> source, TimeSpan now)
    {
        if (reply.Length != CookieReply.Size)
            throw new ArgumentException($"a cookie reply is {CookieReply.Size} bytes", nameof(reply));
        if (!MacLayout.TryGetOffsets(message, out int mac1Offset, out _))
            return false;

        if (_secretSet is not { } set || now - set > Constants.CookieRefreshTime)
        {
            _random.GetBytes(_secret);
            _secretSet = now;
        }

        uint sender = Messages.ReadIndex(message, 4); // the sender index sits at offset 4 in both handshake messages
        Span<byte> cookie = stackalloc byte[Kdf.MacSize];
        Kdf.Mac(cookie, _secret, source);

        reply.Clear();
        Messages.WriteType(reply, MessageType.CookieReply);
        Messages.WriteIndex(reply, CookieReply.ReceiverOffset, sender);
        Span<byte> nonce = reply.Slice(CookieReply.NonceOffset, CookieReply.NonceSize);
        _random.GetBytes(nonce);
        AeadAlgorithm.XChaCha20Poly1305.Encrypt(_cookieKey, nonce, message.Slice(mac1Offset, Kdf.MacSize), cookie,
            reply.Slice(CookieReply.CookieOffset, CookieReply.CookieSize));
        CryptographicOperations.ZeroMemory(cookie);
        return true;
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_secret);
        _cookieKey.Dispose();
    }

    public override string ToString() => "CookieChecker";
}

/// <summary>
/// Initiator side for one peer (whitepaper 5.4.4 and 5.4.7): writes mac1 on every handshake message,
/// and mac2 while a cookie received less than <see cref="Constants.CookieRefreshTime"/> ago is held.
/// Remembers the last mac1 sent so a cookie reply can be authenticated. Not thread-safe.
/// </summary>
internal sealed class CookieGenerator : IDisposable
{
    private readonly byte[] _mac1Key;
    // HASH("cookie--" || Spub), kept as bytes: a libsodium key object (guarded pages) per peer would cost ~12 KB
    // of memory each for something a peer uses only under attack. The key object is made per cookie reply.
    private readonly byte[] _cookieKey;
    private readonly byte[] _lastMac1 = new byte[Kdf.MacSize];
    private readonly byte[] _cookie = new byte[Kdf.MacSize];
    private bool _haveLastMac1;
    private TimeSpan? _cookieSet;

    public CookieGenerator(WireGuardKey peerPublicKey)
    {
        ArgumentNullException.ThrowIfNull(peerPublicKey);
        _mac1Key = MacLayout.LabelKey(Constants.LabelMac1, peerPublicKey.Bytes);
        _cookieKey = MacLayout.LabelKey(Constants.LabelCookie, peerPublicKey.Bytes);
    }

    public bool HasValidCookie(TimeSpan now) => _cookieSet is { } set && now - set <= Constants.CookieRefreshTime;

    /// <summary>Fills mac1 and mac2 of a handshake initiation or response written by <see cref="Handshake"/>.</summary>
    public void AddMacs(Span<byte> message, TimeSpan now)
    {
        if (!MacLayout.TryGetOffsets(message, out int mac1Offset, out int mac2Offset))
            throw new ArgumentException("not a handshake initiation or response", nameof(message));

        Span<byte> mac1 = message.Slice(mac1Offset, Kdf.MacSize);
        Kdf.Mac(mac1, _mac1Key, message[..mac1Offset]);
        mac1.CopyTo(_lastMac1);
        _haveLastMac1 = true;

        Span<byte> mac2 = message.Slice(mac2Offset, Kdf.MacSize);
        if (HasValidCookie(now))
            Kdf.Mac(mac2, _cookie, message[..mac2Offset]);
        else
            mac2.Clear();
    }

    /// <summary>
    /// Decrypts a cookie reply to our last handshake message and keeps the cookie for
    /// <see cref="Constants.CookieRefreshTime"/>. False, and nothing changes, if it does not authenticate.
    /// </summary>
    public bool ConsumeReply(ReadOnlySpan<byte> reply, TimeSpan now)
    {
        if (Messages.Classify(reply) != MessageType.CookieReply || !_haveLastMac1)
            return false;
        Span<byte> cookie = stackalloc byte[Kdf.MacSize];
        using var key = Key.Import(AeadAlgorithm.XChaCha20Poly1305, _cookieKey, KeyBlobFormat.RawSymmetricKey);
        bool ok = AeadAlgorithm.XChaCha20Poly1305.Decrypt(key, CookieReply.Nonce(reply), _lastMac1,
            CookieReply.EncryptedCookie(reply), cookie);
        if (ok)
        {
            cookie.CopyTo(_cookie);
            _cookieSet = now;
            _haveLastMac1 = false; // one reply per message sent
        }
        CryptographicOperations.ZeroMemory(cookie);
        return ok;
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_cookie);
        CryptographicOperations.ZeroMemory(_cookieKey);
    }

    public override string ToString() => "CookieGenerator";
}
