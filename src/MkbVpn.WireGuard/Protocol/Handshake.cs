using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>Outcome of a handshake step. Only <see cref="Ok"/> changes state.</summary>
internal enum HandshakeStatus
{
    Ok,
    /// <summary>The message does not fit the current state (e.g. a response without an initiation).</summary>
    WrongState,
    /// <summary>The response names a session index that is not ours.</summary>
    WrongIndex,
    /// <summary>An AEAD field did not authenticate.</summary>
    DecryptionFailed,
    /// <summary>A Diffie-Hellman result was all zeros (low-order point).</summary>
    ZeroDiffieHellman,
    /// <summary>The initiation was encrypted by a static key other than this peer's.</summary>
    UnknownPeer,
    /// <summary>The TAI64N timestamp is not greater than the greatest seen from this peer (replay).</summary>
    ReplayedTimestamp,
    /// <summary>Initiations from this peer arrive faster than <see cref="Constants.HandshakeInitiationRate"/>.</summary>
    Flood,
}

/// <summary>
/// The local interface's static key and what is derived from it once: its public key and the
/// responder's initial handshake hash HASH(HASH(HASH(Construction) || Identifier) || Spub).
/// </summary>
internal sealed class StaticIdentity : IDisposable
{
    private readonly byte[] _private = new byte[32];

    public StaticIdentity(WireGuardKey privateKey)
    {
        ArgumentNullException.ThrowIfNull(privateKey);
        privateKey.Bytes.CopyTo(_private);
        PublicKey = WireGuardKeys.PublicKeyOf(privateKey);
        ResponderInitialHash = new byte[Kdf.HashSize];
        Kdf.Hash(ResponderInitialHash, NoiseStart.InitialHash, PublicKey.Bytes);
    }

    public WireGuardKey PublicKey { get; }
    internal ReadOnlySpan<byte> PrivateKey => _private;
    internal byte[] ResponderInitialHash { get; }

    public void Dispose() => CryptographicOperations.ZeroMemory(_private);

    public override string ToString() => "StaticIdentity";
}

/// <summary>The fixed start of every handshake (section 5.4.2): Ci = HASH(Construction), Hi = HASH(Ci || Identifier).</summary>
internal static class NoiseStart
{
    public static readonly byte[] InitialChainingKey = Compute(out InitialHash);
    public static readonly byte[] InitialHash;

    private static byte[] Compute(out byte[] hash)
    {
        var chainingKey = new byte[Kdf.HashSize];
        hash = new byte[Kdf.HashSize];
        Kdf.Hash(chainingKey, Encoding.ASCII.GetBytes(Constants.Construction));
        Kdf.Hash(hash, chainingKey, Encoding.ASCII.GetBytes(Constants.Identifier));
        return chainingKey;
    }
}

/// <summary>
/// An initiation opened with the local static key (section 5.4.2, responder side, up to msg.static):
/// it reveals which peer sent it so the device can route it to that peer's <see cref="Handshake"/>.
/// Holds intermediate secrets; dispose it.
/// </summary>
internal sealed class OpenedInitiation : IDisposable
{
    internal readonly byte[] ChainingKey = new byte[Kdf.HashSize];
    internal readonly byte[] Hash = new byte[Kdf.HashSize];
    internal readonly byte[] RemoteEphemeral = new byte[32];
    internal readonly byte[] EncryptedTimestamp = new byte[HandshakeInitiation.TimestampSize];
    private readonly byte[] _remoteStatic = new byte[32];

    internal Span<byte> RemoteStaticBuffer => _remoteStatic;

    /// <summary>The initiator's static public key, authenticated by the AEAD.</summary>
    public WireGuardKey RemoteStatic => WireGuardKey.FromBytes(_remoteStatic);
    public uint SenderIndex { get; internal set; }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(ChainingKey);
        CryptographicOperations.ZeroMemory(Hash);
    }
}

/// <summary>
/// Noise_IKpsk2 (whitepaper 5.4.2 to 5.4.5) for one peer: initiator and responder. Messages are written
/// and read without their MAC fields, which <see cref="CookieGenerator"/> and <see cref="CookieChecker"/> own.
/// Time and randomness are passed in. Not thread-safe: the owner serialises calls.
/// </summary>
internal sealed class Handshake : IDisposable
{
    private enum State { Zeroed, InitiationCreated, InitiationConsumed, ResponseCreated, ResponseConsumed }

    private readonly StaticIdentity _local;
    private readonly byte[] _remoteStatic = new byte[32];
    private readonly byte[] _presharedKey = new byte[32];
    private readonly byte[] _staticStatic = new byte[32];     // DH(Spriv_local, Spub_remote), precomputed
    private readonly bool _staticStaticValid;
    private readonly byte[] _initiatorInitialHash = new byte[Kdf.HashSize]; // HASH(h0 || Spub_remote)

    private readonly byte[] _hash = new byte[Kdf.HashSize];
    private readonly byte[] _chainingKey = new byte[Kdf.HashSize];
    private readonly byte[] _localEphemeral = new byte[32];
    private readonly byte[] _remoteEphemeral = new byte[32];
    private readonly byte[] _latestTimestamp = new byte[Messages.TimestampSize];
    private TimeSpan? _lastInitiationConsumed;
    private State _state;

    public Handshake(StaticIdentity local, WireGuardKey remoteStatic, WireGuardKey? presharedKey)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remoteStatic);
        _local = local;
        remoteStatic.Bytes.CopyTo(_remoteStatic);
        presharedKey?.Bytes.CopyTo(_presharedKey);
        _staticStaticValid = WireGuardKeys.TryAgree(local.PrivateKey, _remoteStatic, _staticStatic);
        Kdf.Hash(_initiatorInitialHash, NoiseStart.InitialHash, _remoteStatic);
    }

    public uint LocalIndex { get; private set; }
    public uint RemoteIndex { get; private set; }

    /// <summary>False when the peer's static key is a low-order point: no handshake can succeed.</summary>
    public bool IsUsable => _staticStaticValid;

    public bool IsInitiationPending => _state == State.InitiationCreated;

    // ---------------------------------------------------------------------------------------------
    // Initiator: 5.4.2
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Writes a handshake initiation (all but mac1/mac2) into <paramref name="message"/>, 148 bytes.
    /// <paramref name="wallClock"/> feeds the TAI64N timestamp; <paramref name="random"/> the ephemeral key.
    /// </summary>
    public HandshakeStatus CreateInitiation(Span<byte> message, uint localIndex, DateTimeOffset wallClock, RandomNumberGenerator random)
    {
        if (message.Length != HandshakeInitiation.Size)
            throw new ArgumentException($"an initiation is {HandshakeInitiation.Size} bytes", nameof(message));
        if (!_staticStaticValid)
            return HandshakeStatus.ZeroDiffieHellman;

        Span<byte> key = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[Messages.TimestampSize];
        try
        {
            message.Clear();
            NoiseStart.InitialChainingKey.CopyTo(_chainingKey);
            _initiatorInitialHash.CopyTo(_hash);

            NewEphemeral(random, _localEphemeral, message.Slice(HandshakeInitiation.EphemeralOffset, 32));
            ReadOnlySpan<byte> ephemeralPublic = message.Slice(HandshakeInitiation.EphemeralOffset, 32);
            Kdf.Kdf1(_chainingKey, _chainingKey, ephemeralPublic);
            MixHash(_hash, ephemeralPublic);

            if (!WireGuardKeys.TryAgree(_localEphemeral, _remoteStatic, dh))
                return Fail(HandshakeStatus.ZeroDiffieHellman);
            Kdf.Kdf2(_chainingKey, key, _chainingKey, dh);
            Span<byte> encryptedStatic = message.Slice(HandshakeInitiation.StaticOffset, HandshakeInitiation.StaticSize);
            Seal(key, _local.PublicKey.Bytes, _hash, encryptedStatic);
            MixHash(_hash, encryptedStatic);

            Kdf.Kdf2(_chainingKey, key, _chainingKey, _staticStatic);
            Tai64N.Write(timestamp, wallClock);
            Span<byte> encryptedTimestamp = message.Slice(HandshakeInitiation.TimestampOffset, HandshakeInitiation.TimestampSize);
            Seal(key, timestamp, _hash, encryptedTimestamp);
            MixHash(_hash, encryptedTimestamp);

            Messages.WriteType(message, MessageType.HandshakeInitiation);
            Messages.WriteIndex(message, HandshakeInitiation.SenderOffset, localIndex);
            LocalIndex = localIndex;
            _state = State.InitiationCreated;
            return HandshakeStatus.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(dh);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Responder: 5.4.2, consuming the initiation
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Opens an initiation with the local static key, up to and including the initiator's static key.
    /// The caller checks the MACs first, then routes by <see cref="OpenedInitiation.RemoteStatic"/>.
    /// </summary>
    public static HandshakeStatus OpenInitiation(StaticIdentity local, ReadOnlySpan<byte> message, out OpenedInitiation? opened)
    {
        opened = null;
        if (Messages.Classify(message) != MessageType.HandshakeInitiation)
            return HandshakeStatus.WrongState;

        var result = new OpenedInitiation();
        Span<byte> key = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        try
        {
            NoiseStart.InitialChainingKey.CopyTo(result.ChainingKey);
            local.ResponderInitialHash.CopyTo(result.Hash);

            ReadOnlySpan<byte> ephemeral = HandshakeInitiation.Ephemeral(message);
            ephemeral.CopyTo(result.RemoteEphemeral);
            Kdf.Kdf1(result.ChainingKey, result.ChainingKey, ephemeral);
            MixHash(result.Hash, ephemeral);

            if (!WireGuardKeys.TryAgree(local.PrivateKey, ephemeral, dh))
            {
                result.Dispose();
                return HandshakeStatus.ZeroDiffieHellman;
            }
            Kdf.Kdf2(result.ChainingKey, key, result.ChainingKey, dh);
            ReadOnlySpan<byte> encryptedStatic = HandshakeInitiation.EncryptedStatic(message);
            if (!Open(key, encryptedStatic, result.Hash, result.RemoteStaticBuffer))
            {
                result.Dispose();
                return HandshakeStatus.DecryptionFailed;
            }
            MixHash(result.Hash, encryptedStatic);

            HandshakeInitiation.EncryptedTimestamp(message).CopyTo(result.EncryptedTimestamp);
            result.SenderIndex = HandshakeInitiation.Sender(message);
            opened = result;
            return HandshakeStatus.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(dh);
        }
    }

    /// <summary>
    /// Finishes consuming an opened initiation for this peer: the static-static step, the timestamp,
    /// replay and flood checks. On success this handshake is the responder's; any own initiation is dropped.
    /// </summary>
    public HandshakeStatus ConsumeInitiation(OpenedInitiation opened, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(opened);
        if (!CryptographicOperations.FixedTimeEquals(opened.RemoteStaticBuffer, _remoteStatic))
            return HandshakeStatus.UnknownPeer;
        if (!_staticStaticValid)
            return HandshakeStatus.ZeroDiffieHellman;

        Span<byte> chainingKey = stackalloc byte[Kdf.HashSize];
        Span<byte> hash = stackalloc byte[Kdf.HashSize];
        Span<byte> key = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[Messages.TimestampSize];
        try
        {
            Kdf.Kdf2(chainingKey, key, opened.ChainingKey, _staticStatic);
            if (!Open(key, opened.EncryptedTimestamp, opened.Hash, timestamp))
                return HandshakeStatus.DecryptionFailed;
            Kdf.Hash(hash, opened.Hash, opened.EncryptedTimestamp);

            if (timestamp.SequenceCompareTo(_latestTimestamp) <= 0)
                return HandshakeStatus.ReplayedTimestamp;
            if (_lastInitiationConsumed is { } last && now - last <= Constants.HandshakeInitiationRate)
                return HandshakeStatus.Flood;

            timestamp.CopyTo(_latestTimestamp);
            _lastInitiationConsumed = now;
            chainingKey.CopyTo(_chainingKey);
            hash.CopyTo(_hash);
            opened.RemoteEphemeral.CopyTo(_remoteEphemeral);
            CryptographicOperations.ZeroMemory(_localEphemeral);
            RemoteIndex = opened.SenderIndex;
            _state = State.InitiationConsumed;
            return HandshakeStatus.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainingKey);
            CryptographicOperations.ZeroMemory(hash);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Responder: 5.4.3, creating the response
    // ---------------------------------------------------------------------------------------------

    /// <summary>Writes a handshake response (all but mac1/mac2) into <paramref name="message"/>, 92 bytes.</summary>
    public HandshakeStatus CreateResponse(Span<byte> message, uint localIndex, RandomNumberGenerator random)
    {
        if (message.Length != HandshakeResponse.Size)
            throw new ArgumentException($"a response is {HandshakeResponse.Size} bytes", nameof(message));
        if (_state != State.InitiationConsumed)
            return HandshakeStatus.WrongState;

        Span<byte> key = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        try
        {
            message.Clear();
            Span<byte> ephemeralPublic = message.Slice(HandshakeResponse.EphemeralOffset, 32);
            NewEphemeral(random, _localEphemeral, ephemeralPublic);
            Kdf.Kdf1(_chainingKey, _chainingKey, ephemeralPublic);
            MixHash(_hash, ephemeralPublic);

            if (!WireGuardKeys.TryAgree(_localEphemeral, _remoteEphemeral, dh))
                return Fail(HandshakeStatus.ZeroDiffieHellman);
            Kdf.Kdf1(_chainingKey, _chainingKey, dh);
            if (!WireGuardKeys.TryAgree(_localEphemeral, _remoteStatic, dh))
                return Fail(HandshakeStatus.ZeroDiffieHellman);
            Kdf.Kdf1(_chainingKey, _chainingKey, dh);

            Kdf.Kdf3(_chainingKey, tau, key, _chainingKey, _presharedKey);
            MixHash(_hash, tau);
            Span<byte> empty = message.Slice(HandshakeResponse.EmptyOffset, HandshakeResponse.EmptySize);
            Seal(key, ReadOnlySpan<byte>.Empty, _hash, empty);
            MixHash(_hash, empty);

            Messages.WriteType(message, MessageType.HandshakeResponse);
            Messages.WriteIndex(message, HandshakeResponse.SenderOffset, localIndex);
            Messages.WriteIndex(message, HandshakeResponse.ReceiverOffset, RemoteIndex);
            LocalIndex = localIndex;
            _state = State.ResponseCreated;
            return HandshakeStatus.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(dh);
            CryptographicOperations.ZeroMemory(tau);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Initiator: 5.4.3, consuming the response
    // ---------------------------------------------------------------------------------------------

    /// <summary>Consumes a handshake response (MACs already checked). State changes only on success.</summary>
    public HandshakeStatus ConsumeResponse(ReadOnlySpan<byte> message)
    {
        if (Messages.Classify(message) != MessageType.HandshakeResponse)
            return HandshakeStatus.WrongState;
        if (_state != State.InitiationCreated)
            return HandshakeStatus.WrongState;
        if (HandshakeResponse.Receiver(message) != LocalIndex)
            return HandshakeStatus.WrongIndex;

        Span<byte> chainingKey = stackalloc byte[Kdf.HashSize];
        Span<byte> hash = stackalloc byte[Kdf.HashSize];
        Span<byte> key = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        try
        {
            _chainingKey.CopyTo(chainingKey);
            _hash.CopyTo(hash);

            ReadOnlySpan<byte> ephemeral = HandshakeResponse.Ephemeral(message);
            Kdf.Kdf1(chainingKey, chainingKey, ephemeral);
            MixHash(hash, ephemeral);

            if (!WireGuardKeys.TryAgree(_localEphemeral, ephemeral, dh))
                return HandshakeStatus.ZeroDiffieHellman;
            Kdf.Kdf1(chainingKey, chainingKey, dh);
            if (!WireGuardKeys.TryAgree(_local.PrivateKey, ephemeral, dh))
                return HandshakeStatus.ZeroDiffieHellman;
            Kdf.Kdf1(chainingKey, chainingKey, dh);

            Kdf.Kdf3(chainingKey, tau, key, chainingKey, _presharedKey);
            MixHash(hash, tau);
            ReadOnlySpan<byte> empty = HandshakeResponse.EncryptedEmpty(message);
            if (!Open(key, empty, hash, Span<byte>.Empty))
                return HandshakeStatus.DecryptionFailed;
            MixHash(hash, empty);

            chainingKey.CopyTo(_chainingKey);
            hash.CopyTo(_hash);
            ephemeral.CopyTo(_remoteEphemeral);
            RemoteIndex = HandshakeResponse.Sender(message);
            _state = State.ResponseConsumed;
            return HandshakeStatus.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainingKey);
            CryptographicOperations.ZeroMemory(hash);
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(dh);
            CryptographicOperations.ZeroMemory(tau);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // 5.4.5: transport keys
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// After <see cref="ConsumeResponse"/> (initiator) or <see cref="CreateResponse"/> (responder):
    /// derives the transport keypair, (Tsend_i = Trecv_r, Trecv_i = Tsend_r) = KDF2(C, ε), and zeroes
    /// the handshake state. Null in any other state.
    /// </summary>
    public Keypair? BeginSession(TimeSpan now)
    {
        bool isInitiator;
        if (_state == State.ResponseConsumed)
            isInitiator = true;
        else if (_state == State.ResponseCreated)
            isInitiator = false;
        else
            return null;

        Span<byte> first = stackalloc byte[32];
        Span<byte> second = stackalloc byte[32];
        try
        {
            Kdf.Kdf2(first, second, _chainingKey, ReadOnlySpan<byte>.Empty);
            var keypair = isInitiator
                ? new Keypair(first, second, LocalIndex, RemoteIndex, isInitiator: true, now)
                : new Keypair(second, first, LocalIndex, RemoteIndex, isInitiator: false, now);
            Clear();
            return keypair;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(first);
            CryptographicOperations.ZeroMemory(second);
        }
    }

    /// <summary>Replaces the pre-shared key (null: none) for handshake steps from now on; nothing else changes.</summary>
    public void SetPresharedKey(WireGuardKey? presharedKey)
    {
        if (presharedKey is null)
            CryptographicOperations.ZeroMemory(_presharedKey);
        else
            presharedKey.Bytes.CopyTo(_presharedKey);
    }

    /// <summary>Forgets the handshake in progress (not the replay/flood history).</summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_hash);
        CryptographicOperations.ZeroMemory(_chainingKey);
        CryptographicOperations.ZeroMemory(_localEphemeral);
        CryptographicOperations.ZeroMemory(_remoteEphemeral);
        _state = State.Zeroed;
    }

    public void Dispose()
    {
        Clear();
        CryptographicOperations.ZeroMemory(_presharedKey);
        CryptographicOperations.ZeroMemory(_staticStatic);
    }

    public override string ToString() => $"Handshake(state={_state}, local={LocalIndex:x8})";

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    private HandshakeStatus Fail(HandshakeStatus status)
    {
        Clear();
        return status;
    }

    private static void MixHash(Span<byte> hash, ReadOnlySpan<byte> data) => Kdf.Hash(hash, hash, data);

    private static void NewEphemeral(RandomNumberGenerator random, Span<byte> privateKey, Span<byte> publicKey)
    {
        random.GetBytes(privateKey);
        privateKey[0] &= 248;
        privateKey[31] &= 127;
        privateKey[31] |= 64;
        WireGuardKeys.PublicKeyOf(privateKey, publicKey);
    }

    // AEAD(key, 0, plaintext, ad): each handshake key encrypts exactly once, with counter 0.
    private static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> ad, Span<byte> output)
    {
        Debug.Assert(output.Length == plaintext.Length + Messages.AeadTagSize);
        Span<byte> nonce = stackalloc byte[Keypair.NonceSize];
        nonce.Clear();
        using var aead = new ChaCha20Poly1305(key);
        aead.Encrypt(nonce, plaintext, output[..plaintext.Length], output[plaintext.Length..], ad);
    }

    private static bool Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, ReadOnlySpan<byte> ad, Span<byte> plaintext)
    {
        Debug.Assert(input.Length == plaintext.Length + Messages.AeadTagSize);
        Span<byte> nonce = stackalloc byte[Keypair.NonceSize];
        nonce.Clear();
        using var aead = new ChaCha20Poly1305(key);
        try
        {
            aead.Decrypt(nonce, input[..plaintext.Length], input[plaintext.Length..], plaintext, ad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }
}

/// <summary>
/// TAI64N (section 5.4.2; cr.yp.to/libtai/tai64.html): 8-byte big-endian 2^62 + 10 + Unix seconds, then
/// 4-byte big-endian nanoseconds, rounded down (<see cref="Constants.TimestampWhitenerMask"/>).
/// Big endian makes byte order equal time order.
/// </summary>
internal static class Tai64N
{
    private const ulong Base = 0x400000000000000a;

    public static void Write(Span<byte> output, DateTimeOffset time)
    {
        Debug.Assert(output.Length == Messages.TimestampSize);
        long ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long remainder);
        if (remainder < 0)
        {
            seconds--;
            remainder += TimeSpan.TicksPerSecond;
        }
        uint nanoseconds = (uint)(remainder * 100) & ~Constants.TimestampWhitenerMask;
        BinaryPrimitives.WriteUInt64BigEndian(output, Base + (ulong)seconds);
        BinaryPrimitives.WriteUInt32BigEndian(output[8..], nanoseconds);
    }
}
