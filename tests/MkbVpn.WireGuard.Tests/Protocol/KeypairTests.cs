using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class KeypairTests
{
    private static readonly TimeSpan T0 = TimeSpan.FromHours(1);

    private static Keypair New(uint local, bool initiator, TimeSpan? created = null)
    {
        byte[] k = RandomNumberGenerator.GetBytes(32);
        return new Keypair(k, k, local, local + 1000, initiator, created ?? T0);
    }

    [Fact]
    public void Nonce_IsFourZeroBytesThenLittleEndianCounter()
    {
        var nonce = new byte[12];
        nonce.AsSpan().Fill(0xEE);
        Keypair.WriteNonce(nonce, 0x0102030405060708);
        Assert.Equal("000000000807060504030201", Convert.ToHexStringLower(nonce));
    }

    [Fact]
    public void SendCounter_CountsFromZero()
    {
        using var kp = New(1, true);
        Assert.Equal(0ul, kp.SendCount);
        Assert.True(kp.TryReserveSendCounter(out ulong c0));
        Assert.True(kp.TryReserveSendCounter(out ulong c1));
        Assert.Equal((0ul, 1ul), (c0, c1));
        Assert.Equal(2ul, kp.SendCount);
    }

    [Fact]
    public void Seal_InPlace_AndOpen_RejectsWrongCounterOrTag()
    {
        using var kp = New(1, true); // same key both ways: it can open what it seals
        byte[] buffer = "sixteen bytes!!!"u8.ToArray();
        byte[] original = (byte[])buffer.Clone();
        var tag = new byte[16];
        kp.Seal(5, buffer, buffer, tag);
        Assert.NotEqual(original, buffer);

        var plain = new byte[16];
        Assert.False(kp.TryOpen(6, buffer, tag, plain));
        Assert.True(kp.TryOpen(5, buffer, tag, plain));
        Assert.Equal(original, plain);
        tag[15] ^= 1;
        Assert.False(kp.TryOpen(5, buffer, tag, plain));
    }

    [Fact]
    public void Expiry_FollowsRejectAfterTime_AndDispose()
    {
        var kp = New(1, true);
        Assert.False(kp.IsExpired(T0 + Constants.RejectAfterTime - TimeSpan.FromTicks(1)));
        Assert.True(kp.IsExpired(T0 + Constants.RejectAfterTime));
        kp.Dispose();
        Assert.True(kp.IsExpired(T0));
        Assert.False(kp.TryReserveSendCounter(out _));
        Assert.False(kp.TryOpen(0, new byte[16], new byte[16], new byte[16]));
    }

    [Fact]
    public void Initiator_Install_MovesCurrentToPrevious()
    {
        using var set = new Keypairs();
        var k1 = New(1, true);
        var k2 = New(2, true);
        var k3 = New(3, true);
        set.Install(k1);
        Assert.Same(k1, set.Current);
        set.Install(k2);
        Assert.Same(k2, set.Current);
        Assert.Same(k1, set.Previous);
        set.Install(k3);
        Assert.Same(k2, set.Previous);
        Assert.True(k1.IsDisposed); // erased once it falls off the end
        Assert.Same(k2, set.Find(2));
        Assert.Null(set.Find(1));
    }

    [Fact]
    public void Responder_Install_WaitsInNext_UntilConfirmed()
    {
        using var set = new Keypairs();
        var k1 = New(1, true);
        var k2 = New(2, false);
        set.Install(k1);
        set.Install(k2);
        Assert.Same(k1, set.Current);
        Assert.Same(k2, set.Next);
        Assert.Null(set.Previous);

        Assert.False(set.ReceivedWith(k1));
        Assert.True(set.ReceivedWith(k2));
        Assert.Same(k2, set.Current);
        Assert.Same(k1, set.Previous);
        Assert.Null(set.Next);
        Assert.False(set.ReceivedWith(k2));
    }

    [Fact]
    public void Initiator_Install_DisplacesUnconfirmedNext()
    {
        using var set = new Keypairs();
        var current = New(1, true);
        var next = New(2, false);
        var mine = New(3, true);
        set.Install(current);
        set.Install(next);
        set.Install(mine);
        Assert.Same(mine, set.Current);
        Assert.Same(next, set.Previous);
        Assert.Null(set.Next);
        Assert.True(current.IsDisposed);
    }

    [Fact]
    public void Clear_DisposesAll()
    {
        var set = new Keypairs();
        var a = New(1, true);
        var b = New(2, true);
        var c = New(3, false);
        set.Install(a);
        set.Install(b);
        set.Install(c);
        set.Clear();
        Assert.True(a.IsDisposed && b.IsDisposed && c.IsDisposed);
        Assert.Null(set.Current);
        Assert.Null(set.Find(2));
    }
}
