using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class TimersTests
{
    private static readonly TimeSpan T0 = TimeSpan.FromHours(1);
    private static TimeSpan S(double seconds) => T0 + TimeSpan.FromSeconds(seconds);

    private static Timers NewTimers(TimeSpan persistent = default) =>
        new(new ScriptedRandom(new byte[4], new byte[4], new byte[4], new byte[4]), persistent); // jitter 0 for the first four

    [Fact]
    public void NothingPending_NothingToDo()
    {
        var t = NewTimers();
        Assert.Equal(TimerActions.None, t.Tick(S(10_000)));
        Assert.Null(t.NextDeadline);
    }

    [Fact]
    public void Retransmit_AfterRekeyTimeout_ThenGiveUpAfterAttemptTime()
    {
        var t = NewTimers();
        t.HandshakeInitiated(T0, isRetry: false);
        Assert.Equal(TimerActions.None, t.Tick(S(4.9)));
        Assert.Equal(TimerActions.RetransmitHandshake, t.Tick(S(5)));
        Assert.Equal(TimerActions.None, t.Tick(S(5)));

        TimeSpan now = S(5);
        int retransmits = 1;
        while (true)
        {
            t.HandshakeInitiated(now, isRetry: true);
            now += TimeSpan.FromSeconds(5.4);
            var a = t.Tick(now);
            if (a.HasFlag(TimerActions.GiveUpHandshake))
                break;
            Assert.Equal(TimerActions.RetransmitHandshake, a);
            retransmits++;
            Assert.True(retransmits < 100);
        }
        Assert.Equal(Constants.MaxHandshakeAttempts + 1, retransmits); // wireguard-go: attempts > MaxTimerHandshakes gives up
        // Giving up arms key erasure.
        Assert.NotNull(t.NextDeadline);
        Assert.Equal(TimerActions.ZeroKeys, t.Tick(now + Constants.ZeroKeysAfter));
    }

    [Fact]
    public void Retransmit_HasBoundedJitter()
    {
        var random = new ScriptedRandom(new byte[] { 0xff, 0xff, 0xff, 0xff });
        var t = new Timers(random);
        t.HandshakeInitiated(T0, isRetry: false);
        TimeSpan deadline = t.NextDeadline!.Value;
        Assert.InRange(deadline - T0, Constants.RekeyTimeout, Constants.RekeyTimeout + Constants.MaxRekeyJitter);
        Assert.NotEqual(Constants.RekeyTimeout, deadline - T0); // 0xffffffff % 334 = 333 ms of jitter
    }

    [Fact]
    public void HandshakeComplete_StopsRetransmit()
    {
        var t = NewTimers();
        t.HandshakeInitiated(T0, isRetry: false);
        t.HandshakeComplete();
        Assert.Equal(TimerActions.None, t.Tick(S(60)));
        Assert.Equal(0, t.HandshakeAttempts);
    }

    [Fact]
    public void Keepalive_AfterReceiveWithoutSend()
    {
        var t = NewTimers();
        t.DataReceived(T0);
        Assert.Equal(TimerActions.None, t.Tick(S(9.9)));
        Assert.Equal(TimerActions.SendKeepalive, t.Tick(S(10)));
        Assert.Equal(TimerActions.None, t.Tick(S(30)));
    }

    [Fact]
    public void Keepalive_CancelledBySend_AndRepeatedIfMoreDataCame()
    {
        var t = NewTimers();
        t.DataReceived(T0);
        t.AnyAuthenticatedPacketSent();
        Assert.Equal(TimerActions.None, t.Tick(S(11)));

        t.DataReceived(S(20));
        t.DataReceived(S(21)); // keepalive timer already pending: one more is needed afterwards
        Assert.Equal(TimerActions.SendKeepalive, t.Tick(S(30)));
        Assert.Equal(TimerActions.SendKeepalive, t.Tick(S(40)));
        Assert.Equal(TimerActions.None, t.Tick(S(60)));
    }

    [Fact]
    public void NewHandshake_WhenSentDataGetsNoReply()
    {
        var t = NewTimers();
        t.DataSent(T0);
        t.DataSent(S(3)); // does not push the deadline back
        Assert.Equal(TimerActions.None, t.Tick(S(14.9)));
        Assert.Equal(TimerActions.SendHandshakeInitiation, t.Tick(S(15)));

        t.DataSent(S(20));
        t.AnyAuthenticatedPacketReceived();
        Assert.Equal(TimerActions.None, t.Tick(S(40)));
    }

    [Fact]
    public void ZeroKeys_AfterThreeRejectAfterTimes()
    {
        var t = NewTimers();
        t.SessionDerived(T0);
        Assert.Equal(TimerActions.None, t.Tick(T0 + Constants.ZeroKeysAfter - TimeSpan.FromTicks(1)));
        Assert.Equal(TimerActions.ZeroKeys, t.Tick(T0 + TimeSpan.FromSeconds(540)));
    }

    [Fact]
    public void PersistentKeepalive_RestartsOnEveryTraversal()
    {
        var t = NewTimers(TimeSpan.FromSeconds(25));
        t.AnyAuthenticatedPacketTraversal(T0);
        t.AnyAuthenticatedPacketTraversal(S(10));
        Assert.Equal(TimerActions.None, t.Tick(S(30)));
        Assert.Equal(TimerActions.SendKeepalive, t.Tick(S(35)));

        var off = NewTimers();
        off.AnyAuthenticatedPacketTraversal(T0);
        Assert.Equal(TimerActions.None, off.Tick(S(1000)));
    }

    [Fact]
    public void Stop_ClearsEverything()
    {
        var t = NewTimers(TimeSpan.FromSeconds(25));
        t.HandshakeInitiated(T0, false);
        t.DataReceived(T0);
        t.DataSent(T0);
        t.SessionDerived(T0);
        t.AnyAuthenticatedPacketTraversal(T0);
        t.Stop();
        Assert.Null(t.NextDeadline);
        Assert.Equal(TimerActions.None, t.Tick(S(10_000)));
    }

    [Fact]
    public void RekeyPredicates_FollowSection6_2()
    {
        using var initiator = new Keypair(new byte[32], new byte[32], 1, 2, isInitiator: true, T0);
        using var responder = new Keypair(new byte[32], new byte[32], 3, 4, isInitiator: false, T0);
        Assert.False(Timers.ShouldRekeyAfterSend(initiator, S(119)));
        Assert.True(Timers.ShouldRekeyAfterSend(initiator, S(120)));
        Assert.False(Timers.ShouldRekeyAfterSend(responder, S(170)));
        Assert.False(Timers.ShouldRekeyAfterReceive(initiator, S(164)));
        Assert.True(Timers.ShouldRekeyAfterReceive(initiator, S(165)));
        Assert.False(Timers.ShouldRekeyAfterReceive(responder, S(179)));
    }
}
