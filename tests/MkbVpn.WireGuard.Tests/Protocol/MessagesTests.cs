using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class MessagesTests
{
    [Fact]
    public void Sizes_MatchWhitepaper()
    {
        Assert.Equal(148, HandshakeInitiation.Size);
        Assert.Equal(HandshakeInitiation.Size, HandshakeInitiation.Mac2Offset + Messages.MacSize);
        Assert.Equal(HandshakeInitiation.Mac1Offset, HandshakeInitiation.TimestampOffset + HandshakeInitiation.TimestampSize);
        Assert.Equal(92, HandshakeResponse.Size);
        Assert.Equal(HandshakeResponse.Size, HandshakeResponse.Mac2Offset + Messages.MacSize);
        Assert.Equal(64, CookieReply.Size);
        Assert.Equal(CookieReply.Size, CookieReply.CookieOffset + CookieReply.CookieSize);
        Assert.Equal(32, TransportData.MinSize);
    }

    [Theory]
    [InlineData(1, 148, 1)]
    [InlineData(2, 92, 2)]
    [InlineData(3, 64, 3)]
    [InlineData(4, 32, 4)]
    [InlineData(4, 1500, 4)]
    [InlineData(1, 147, 0)]
    [InlineData(1, 149, 0)]
    [InlineData(2, 148, 0)]
    [InlineData(3, 92, 0)]
    [InlineData(4, 31, 0)]
    [InlineData(5, 148, 0)]
    [InlineData(0, 148, 0)]
    public void Classify_ChecksTypeAndLength(byte type, int length, uint expected)
    {
        var datagram = new byte[length];
        datagram[0] = type;
        Assert.Equal((MessageType)expected, Messages.Classify(datagram));
    }

    [Fact]
    public void Classify_RejectsNonZeroReservedAndShortInput()
    {
        var datagram = new byte[148];
        datagram[0] = 1;
        datagram[2] = 1;
        Assert.Equal(MessageType.None, Messages.Classify(datagram));
        Assert.Equal(MessageType.None, Messages.Classify(new byte[] { 4, 0, 0 }));
        Assert.Equal(MessageType.None, Messages.Classify(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void TransportHeader_IsLittleEndian()
    {
        var m = new byte[TransportData.MinSize];
        TransportData.WriteHeader(m, 0x11223344, 0x0102030405060708);
        Assert.Equal(new byte[] { 4, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 8, 7, 6, 5, 4, 3, 2, 1 }, m[..16]);
        Assert.Equal(0x11223344u, TransportData.Receiver(m));
        Assert.Equal(0x0102030405060708ul, TransportData.Counter(m));
        Assert.Equal(MessageType.TransportData, Messages.Classify(m));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 32)]
    [InlineData(1420, 1424)]
    public void Padding_RoundsUpToSixteen(int length, int padded)
    {
        Assert.Equal(padded, TransportData.PaddedLength(length));
        Assert.Equal(16 + padded + 16, TransportData.MessageSize(length));
    }

    [Fact]
    public void HandshakeReaders_ReadAtSpecOffsets()
    {
        var m = new byte[HandshakeResponse.Size];
        Messages.WriteType(m, MessageType.HandshakeResponse);
        Messages.WriteIndex(m, HandshakeResponse.SenderOffset, 7);
        Messages.WriteIndex(m, HandshakeResponse.ReceiverOffset, 9);
        m[12] = 0xEE;
        Assert.Equal(7u, HandshakeResponse.Sender(m));
        Assert.Equal(9u, HandshakeResponse.Receiver(m));
        Assert.Equal(0xEE, HandshakeResponse.Ephemeral(m)[0]);
        Assert.Equal(new byte[] { 2, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0 }, m[..12]);
    }
}
