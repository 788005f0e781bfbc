using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Interop;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// A transport keypair (whitepaper 5.4.5 and 5.4.6): one ChaCha20-Poly1305 object per direction
/// (<see cref="TransportAead"/>: a libcrypto context set up once per key),
/// created once and reused for every packet; a send counter; a receive replay window; the
/// local and remote session indices. Not thread-safe apart from the send counter.
/// </summary>
internal sealed class Keypair : IDisposable
{
    public const int NonceSize = 12;
    public const int TagSize = 16;

    /// <summary>Most crypto lanes a keypair serves (see <see cref="SealOnLane"/>).</summary>
    public const int MaxLanes = 16;

    private readonly TransportAead _send;
    private readonly TransportAead _receive;
    // Lanes: one AEAD object per thread that seals or opens outside the peer's lock (an AEAD object is not
    // thread-safe). Made on a lane's first use (only busy sessions on busy hosts get more than none), from the
    // keys kept here, erased on dispose.
    private readonly byte[] _sendKey = new byte[32];
    private readonly byte[] _receiveKey = new byte[32];
    private readonly TransportAead?[] _sendLanes = new TransportAead?[MaxLanes];
    private readonly TransportAead?[] _receiveLanes = new TransportAead?[MaxLanes];
    private readonly Lock _lanesSync = new();
    private long _sendCounter = -1;
    private volatile bool _disposed;

    /// <summary>Takes copies of the keys; the caller zeroes its own.</summary>
    public Keypair(ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, uint localIndex, uint remoteIndex, bool isInitiator, TimeSpan created)
    {
        Debug.Assert(sendKey.Length == 32 && receiveKey.Length == 32);
        _send = TransportAead.Create(sendKey, encrypt: true);
        _receive = TransportAead.Create(receiveKey, encrypt: false);
        sendKey.CopyTo(_sendKey);
        receiveKey.CopyTo(_receiveKey);
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        IsInitiator = isInitiator;
        Created = created;
    }

    public uint LocalIndex { get; }
    public uint RemoteIndex { get; }
    public bool IsInitiator { get; }
    public TimeSpan Created { get; }
    public ReplayWindow ReceiveWindow { get; } = new();

    /// <summary>Counters handed out so far (the next counter to be used).</summary>
    public ulong SendCount => unchecked((ulong)(Interlocked.Read(ref _sendCounter) + 1));

    public bool IsDisposed => _disposed;

    public TimeSpan Age(TimeSpan now) => now - Created;

    /// <summary>Whether the keypair may still send and receive (Reject-After-Time, section 6.1).</summary>
    public bool IsExpired(TimeSpan now) => _disposed || now - Created >= Constants.RejectAfterTime;

    /// <summary>Reserves the next send counter; false once Reject-After-Messages is reached (section 6.1).</summary>
    public bool TryReserveSendCounter(out ulong counter)
    {
        counter = unchecked((ulong)Interlocked.Increment(ref _sendCounter));
        return !_disposed && counter < Constants.RejectAfterMessages;
    }

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same memory) and writes the tag.</summary>
    public void Seal(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Debug.Assert(!_disposed);
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        _send.Encrypt(nonce, plaintext, ciphertext, tag);
    }

    /// <summary>Decrypts and authenticates; false, with the output cleared, when the tag does not verify.</summary>
    public bool TryOpen(ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        if (_disposed)
            return false;
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        return _receive.TryDecrypt(nonce, ciphertext, tag, plaintext);
    }

    /// <summary>
    /// <see cref="Seal"/> for a thread outside the peer's lock: lane <paramref name="lane"/> belongs to one thread
    /// at a time. False (nothing may be sent: the buffer holds plaintext) if the keypair was erased meanwhile.
    /// </summary>
    public bool SealOnLane(int lane, ulong counter, Span<byte> body, Span<byte> tag)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        try
        {
            if (Lane(_sendLanes, _sendKey, encrypt: true, lane) is not { } aead)
                return false;
            aead.Encrypt(nonce, body, body, tag);
            return !_disposed;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary><see cref="TryOpen"/> for a thread outside the peer's lock, on its own lane.</summary>
    public bool TryOpenOnLane(int lane, ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        try
        {
            if (Lane(_receiveLanes, _receiveKey, encrypt: false, lane) is not { } aead)
                return false;
            return aead.TryDecrypt(nonce, ciphertext, tag, plaintext) && !_disposed;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    private TransportAead? Lane(TransportAead?[] lanes, byte[] key, bool encrypt, int lane)
    {
        Debug.Assert(lane is >= 0 and < MaxLanes);
        if (Volatile.Read(ref lanes[lane]) is { } existing)
            return existing;
        lock (_lanesSync)
        {
            if (_disposed)
                return null;
            return lanes[lane] ??= TransportAead.Create(key, encrypt);
        }
    }

    /// <summary>Section 5.4.6: 32 bits of zeros followed by the 64-bit little-endian counter.</summary>
    public static void WriteNonce(Span<byte> nonce, ulong counter)
    {
        Debug.Assert(nonce.Length == NonceSize);
        BinaryPrimitives.WriteUInt32LittleEndian(nonce, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        lock (_lanesSync)
        {
            _disposed = true;
            CryptographicOperations.ZeroMemory(_sendKey);
            CryptographicOperations.ZeroMemory(_receiveKey);
        }
        _send.Dispose();
        _receive.Dispose();
        // A lane still in use finishes its call (the handle is released after it) and reports failure.
        foreach (TransportAead? aead in _sendLanes)
            aead?.Dispose();
        foreach (TransportAead? aead in _receiveLanes)
            aead?.Dispose();
    }

    public override string ToString() => $"Keypair(local={LocalIndex:x8}, remote={RemoteIndex:x8}, initiator={IsInitiator})";
}

/// <summary>
/// The keypairs of one peer (whitepaper 6.1 and wireguard-go's keypair rotation): <see cref="Current"/>
/// sends; <see cref="Previous"/> still receives packets in flight; <see cref="Next"/> is a responder's
/// fresh keypair, confirmed (promoted to current) by the first data packet received on it.
/// </summary>
internal sealed class Keypairs : IDisposable
{
    private readonly SessionIndexTable? _indices;
    private readonly object _owner;

    /// <param name="indices">Where the keypairs' local indices are registered; each is released when its keypair is erased.</param>
    /// <param name="owner">The owner the indices were registered for.</param>
    public Keypairs(SessionIndexTable? indices = null, object? owner = null)
    {
        _indices = indices;
        _owner = owner ?? this;
    }

    public Keypair? Current { get; private set; }
    public Keypair? Previous { get; private set; }
    public Keypair? Next { get; private set; }

    /// <summary>Installs a keypair just derived from a completed handshake.</summary>
    public void Install(Keypair keypair)
    {
        if (keypair.IsInitiator)
        {
            // The initiator can use its keypair at once; an unconfirmed next keypair is displaced.
            if (Next is not null)
            {
                Retire(Previous);
                Previous = Next;
                Next = null;
                Retire(Current);
            }
            else
            {
                Retire(Previous);
                Previous = Current;
            }
            Current = keypair;
        }
        else
        {
            // The responder waits for the initiator's first data packet before it sends with the new keys.
            Retire(Next);
            Next = keypair;
            Retire(Previous);
            Previous = null;
        }
    }

    /// <summary>The keypair with local index <paramref name="localIndex"/>, if any.</summary>
    public Keypair? Find(uint localIndex)
    {
        if (Current?.LocalIndex == localIndex) return Current;
        if (Next?.LocalIndex == localIndex) return Next;
        if (Previous?.LocalIndex == localIndex) return Previous;
        return null;
    }

    /// <summary>
    /// Called after a data packet authenticated on <paramref name="keypair"/>. If it was the next keypair,
    /// the handshake is confirmed: next becomes current, current becomes previous. Returns true on rotation.
    /// </summary>
    public bool ReceivedWith(Keypair keypair)
    {
        if (Next is null || !ReferenceEquals(keypair, Next))
            return false;
        Retire(Previous);
        Previous = Current;
        Current = Next;
        Next = null;
        return true;
    }

    /// <summary>Zeroes (disposes) all keypairs: Reject-After-Time x 3 passed, or the peer is removed.</summary>
    public void Clear()
    {
        Retire(Previous);
        Retire(Current);
        Retire(Next);
        Previous = Current = Next = null;
    }

    public void Dispose() => Clear();

    // Erases a keypair's keys and frees its session index.
    private void Retire(Keypair? keypair)
    {
        if (keypair is null)
            return;
        keypair.Dispose();
        _indices?.Release(keypair.LocalIndex, _owner);
    }
}
