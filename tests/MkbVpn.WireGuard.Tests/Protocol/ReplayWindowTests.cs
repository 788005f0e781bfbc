using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class ReplayWindowTests
{
    [Fact]
    public void InOrder_AllAccepted_DuplicatesRefused()
    {
        var w = new ReplayWindow();
        for (ulong i = 0; i < 20000; i++)
            Assert.True(w.TryAccept(i));
        for (ulong i = 20000 - ReplayWindow.WindowSize; i < 20000; i++)
            Assert.False(w.TryAccept(i));
        Assert.Equal(19999ul, w.Newest);
    }

    [Fact]
    public void OutOfOrder_WithinWindow_AcceptedOnce()
    {
        var w = new ReplayWindow();
        Assert.True(w.TryAccept(1000));
        Assert.True(w.TryAccept(10));
        Assert.True(w.TryAccept(999));
        Assert.True(w.TryAccept(0));
        Assert.False(w.TryAccept(10));
        Assert.False(w.TryAccept(999));
        Assert.False(w.TryAccept(1000));
        Assert.False(w.TryAccept(0));
        Assert.True(w.TryAccept(500));
    }

    [Fact]
    public void WindowEdge_IsExact()
    {
        var w = new ReplayWindow();
        ulong newest = 100_000;
        Assert.True(w.TryAccept(newest));
        Assert.True(w.TryAccept(newest - ReplayWindow.WindowSize));
        Assert.False(w.TryAccept(newest - ReplayWindow.WindowSize - 1));
        Assert.Equal(8128ul, ReplayWindow.WindowSize);
    }

    [Fact]
    public void BigJump_ClearsOldBits_AndRefusesTooOld()
    {
        var w = new ReplayWindow();
        for (ulong i = 0; i < 64 * 5; i++)
            Assert.True(w.TryAccept(i));

        ulong jump = 1UL << 40;
        Assert.True(w.TryAccept(jump));
        Assert.False(w.TryAccept(5));
        // Counters that share ring slots with the old ones must be fresh after the jump.
        Assert.True(w.TryAccept(jump - 1));
        Assert.True(w.TryAccept(jump - 64));
        Assert.True(w.TryAccept(jump - ReplayWindow.WindowSize));
        Assert.False(w.TryAccept(jump - 1));
    }

    [Fact]
    public void JumpOfExactlyOneRing_ReusesTheSlotCleared()
    {
        var w = new ReplayWindow();
        Assert.True(w.TryAccept(64));           // block 1, ring slot 1, bit 0
        Assert.True(w.TryAccept(64 * 129));     // block 129, ring slot 1 again: cleared, so fresh
        Assert.False(w.TryAccept(64 * 129));
        Assert.True(w.TryAccept(64 * 129 - 1)); // block 128, slot 0
        Assert.False(w.TryAccept(64));          // 8192 behind: too old
    }

    [Fact]
    public void RejectAfterMessages_IsRefused()
    {
        var w = new ReplayWindow();
        Assert.False(w.TryAccept(Constants.RejectAfterMessages));
        Assert.False(w.TryAccept(ulong.MaxValue));
        Assert.True(w.TryAccept(Constants.RejectAfterMessages - 1));
        Assert.False(w.TryAccept(Constants.RejectAfterMessages - 1));
        Assert.True(w.TryAccept(Constants.RejectAfterMessages - 2));
    }

    [Fact]
    public void MightAccept_AgreesWithTryAccept_WithoutChangingState()
    {
        var w = new ReplayWindow();
        var rng = new Random(99);
        ulong newest = 0;
        for (int i = 0; i < 20000; i++)
        {
            ulong counter = rng.Next(10) == 0 ? newest + (ulong)rng.Next(1, 20000) : newest - Math.Min(newest, (ulong)rng.Next(0, 9000));
            bool might = w.MightAccept(counter);
            Assert.Equal(might, w.MightAccept(counter)); // read-only
            Assert.Equal(might, w.TryAccept(counter));
            newest = w.Newest;
        }
        Assert.False(w.MightAccept(Constants.RejectAfterMessages));
    }

    [Fact]
    public void Reset_ForgetsEverything()
    {
        var w = new ReplayWindow();
        Assert.True(w.TryAccept(7));
        w.Reset();
        Assert.True(w.TryAccept(7));
    }
}

public sealed class KernelReplayVectorTests
{
    [Fact]
    public void MixedScenario_MatchesKernelSelfTest()
    {
        var w = new ReplayWindow();
        int step = 0;
        foreach (var (counter, accepted) in Vectors.KernelReplayVectors.Mixed)
        {
            step++;
            Assert.True(accepted == w.TryAccept(counter), $"step {step}: counter {counter} should be {(accepted ? "accepted" : "refused")}");
        }
        Assert.Equal(34, step);
    }

    [Fact]
    public void Sweeps_MatchKernelSelfTest()
    {
        int scenario = 0;
        foreach (var sweep in Vectors.KernelReplayVectors.Sweeps())
        {
            scenario++;
            var w = new ReplayWindow();
            for (int i = 0; i < sweep.Length; i++)
                Assert.True(sweep[i].Item2 == w.TryAccept(sweep[i].Item1), $"scenario {scenario}, step {i}: counter {sweep[i].Item1}");
        }
        Assert.Equal(6, scenario);
    }
}
