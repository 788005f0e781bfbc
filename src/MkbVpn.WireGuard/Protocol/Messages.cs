using System.Buffers.Binary;
using System.Diagnostics;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>Whitepaper section 5.4: the message type, the first 4 bytes (one type byte, three zero bytes), little endian.</summary>
internal enum MessageType : uint
{
    None = 0,
    HandshakeInitiation = 1,
    HandshakeResponse = 2,
    CookieReply = 3,
    TransportData = 4,
}

/// <summary>
/// The four wire formats of whitepaper sections 5.4.2 to 5.4.7: sizes, offsets and span readers/writers.
/// Integers are little endian; every reader checks the length before it reads.
/// </summary>
internal static class Messages
{
    public const int TypeSize = 4;
    public const int IndexSize = 4;
    public const int KeySize = 32;
    public const int AeadTagSize = 16;
    public const int MacSize = 16;
    public const int TimestampSize = 12;

    /// <summary>
    /// Classifies a datagram: known type, zero reserved bytes, exact size for handshake messages and
    /// at least the minimum size for transport data. Anything else is <see cref="MessageType.None"/>.
    /// </summary>
    public static MessageType Classify(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length < TypeSize)
            return MessageType.None;
        var type = (MessageType)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
        return type switch
        {
            MessageType.HandshakeInitiation when datagram.Length == HandshakeInitiation.Size => type,
            MessageType.HandshakeResponse when datagram.Length == HandshakeResponse.Size => type,
            MessageType.CookieReply when datagram.Length == CookieReply.Size => type,
            MessageType.TransportData when datagram.Length >= TransportData.MinSize => type,
            _ => MessageType.None,
        };
    }

    internal static void WriteType(Span<byte> message, MessageType type)
    {
        Debug.Assert(message.Length >= TypeSize);
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)type);
    }

    internal static uint ReadIndex(ReadOnlySpan<byte> message, int offset) =>
        BinaryPrimitives.ReadUInt32LittleEndian(message.Slice(offset, IndexSize));

    internal static void WriteIndex(Span<byte> message, int offset, uint index) =>
        BinaryPrimitives.WriteUInt32LittleEndian(message.Slice(offset, IndexSize), index);
}

/// <summary>
/// Section 5.4.2, 148 bytes: type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16).
/// </summary>
internal static class HandshakeInitiation
{
    public const int Size = 148;
    public const int SenderOffset = 4;
    public const int EphemeralOffset = 8;
    public const int StaticOffset = 40;
    public const int StaticSize = Messages.KeySize + Messages.AeadTagSize;
    public const int TimestampOffset = 88;
    public const int TimestampSize = Messages.TimestampSize + Messages.AeadTagSize;
    public const int Mac1Offset = 116;
    public const int Mac2Offset = 132;

    public static uint Sender(ReadOnlySpan<byte> m) => Messages.ReadIndex(m, SenderOffset);
    public static ReadOnlySpan<byte> Ephemeral(ReadOnlySpan<byte> m) => m.Slice(EphemeralOffset, Messages.KeySize);
    public static ReadOnlySpan<byte> EncryptedStatic(ReadOnlySpan<byte> m) => m.Slice(StaticOffset, StaticSize);
    public static ReadOnlySpan<byte> EncryptedTimestamp(ReadOnlySpan<byte> m) => m.Slice(TimestampOffset, TimestampSize);
}

/// <summary>
/// Section 5.4.3, 92 bytes: type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16).
/// </summary>
internal static class HandshakeResponse
{
    public const int Size = 92;
    public const int SenderOffset = 4;
    public const int ReceiverOffset = 8;
    public const int EphemeralOffset = 12;
    public const int EmptyOffset = 44;
    public const int EmptySize = Messages.AeadTagSize;
    public const int Mac1Offset = 60;
    public const int Mac2Offset = 76;

    public static uint Sender(ReadOnlySpan<byte> m) => Messages.ReadIndex(m, SenderOffset);
    public static uint Receiver(ReadOnlySpan<byte> m) => Messages.ReadIndex(m, ReceiverOffset);
    public static ReadOnlySpan<byte> Ephemeral(ReadOnlySpan<byte> m) => m.Slice(EphemeralOffset, Messages.KeySize);
    public static ReadOnlySpan<byte> EncryptedEmpty(ReadOnlySpan<byte> m) => m.Slice(EmptyOffset, EmptySize);
}

/// <summary>
/// Section 5.4.7, 64 bytes: type(4) receiver(4) nonce(24) cookie(16+16).
/// </summary>
internal static class CookieReply
{
    public const int Size = 64;
    public const int ReceiverOffset = 4;
    public const int NonceOffset = 8;
    public const int NonceSize = 24;
    public const int CookieOffset = 32;
    public const int CookieSize = Messages.MacSize + Messages.AeadTagSize;

    public static uint Receiver(ReadOnlySpan<byte> m) => Messages.ReadIndex(m, ReceiverOffset);
    public static ReadOnlySpan<byte> Nonce(ReadOnlySpan<byte> m) => m.Slice(NonceOffset, NonceSize);
    public static ReadOnlySpan<byte> EncryptedCookie(ReadOnlySpan<byte> m) => m.Slice(CookieOffset, CookieSize);
}

/// <summary>
/// Section 5.4.6: type(4) receiver(4) counter(8) then the encrypted, padded packet with its 16-byte tag.
/// A keepalive carries an empty packet, so the smallest message is 32 bytes.
/// </summary>
internal static class TransportData
{
    public const int ReceiverOffset = 4;
    public const int CounterOffset = 8;
    public const int HeaderSize = 16;
    public const int MinSize = HeaderSize + Messages.AeadTagSize;

    public static uint Receiver(ReadOnlySpan<byte> m) => Messages.ReadIndex(m, ReceiverOffset);
    public static ulong Counter(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(CounterOffset, 8));
    public static ReadOnlySpan<byte> Encrypted(ReadOnlySpan<byte> m) => m[HeaderSize..];

    /// <summary>The padded plaintext length for <paramref name="packetLength"/> bytes (section 5.4.6).</summary>
    public static int PaddedLength(int packetLength) =>
        (packetLength + Constants.PaddingMultiple - 1) & ~(Constants.PaddingMultiple - 1);

    /// <summary>
    /// Section 5.4.6 with the interface MTU: the padding never takes a packet past the MTU (a 1420-byte packet
    /// on a 1420 MTU is sent unpadded, 1452 bytes on the wire, as wireguard-go and the kernel), so a full-size
    /// packet fits a 1500-byte IPv6 underlay. A packet longer than the MTU is padded as its last MTU-sized
    /// unit would be. <paramref name="mtu"/> 0: no MTU known, plain padding.
    /// </summary>
    public static int PaddedLength(int packetLength, int mtu)
    {
        if (mtu <= 0)
            return PaddedLength(packetLength);
        int last = packetLength > mtu ? packetLength % mtu : packetLength;
        int padded = Math.Min(PaddedLength(last), mtu);
        return packetLength + (padded - last);
    }

    /// <summary>The message size for <paramref name="packetLength"/> bytes of IP packet.</summary>
    public static int MessageSize(int packetLength) => HeaderSize + PaddedLength(packetLength) + Messages.AeadTagSize;

    public static void WriteHeader(Span<byte> m, uint receiver, ulong counter)
    {
        Debug.Assert(m.Length >= HeaderSize);
        Messages.WriteType(m, MessageType.TransportData);
        Messages.WriteIndex(m, ReceiverOffset, receiver);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(CounterOffset, 8), counter);
    }
}
