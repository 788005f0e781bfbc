using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class RateLimiterTests
{
    private static readonly TimeSpan T0 = TimeSpan.FromHours(1);
    private static readonly byte[] V4 = { 192, 0, 2, 1 };
    private static readonly byte[] OtherV4 = { 192, 0, 2, 2 };

    [Fact]
    public void Burst_ThenSteadyRate()
    {
        var limiter = new HandshakeRateLimiter();
        for (int i = 0; i < Constants.HandshakeBurstPerSource; i++)
            Assert.True(limiter.Allow(V4, T0));
        Assert.False(limiter.Allow(V4, T0));
        Assert.True(limiter.Allow(OtherV4, T0)); // per source

        // 20 per second: one more every 50 ms.
        Assert.False(limiter.Allow(V4, T0 + TimeSpan.FromMilliseconds(40)));
        Assert.True(limiter.Allow(V4, T0 + TimeSpan.FromMilliseconds(50)));
        Assert.False(limiter.Allow(V4, T0 + TimeSpan.FromMilliseconds(60)));

        int allowed = 0;
        for (int ms = 100; ms <= 1100; ms += 10)
            if (limiter.Allow(V4, T0 + TimeSpan.FromMilliseconds(ms)))
                allowed++;
        Assert.InRange(allowed, 19, 21);
    }

    [Fact]
    public void Ipv6_IsLimitedPerSlash64()
    {
        var limiter = new HandshakeRateLimiter();
        var a = new byte[16];
        var b = new byte[16];
        a[0] = b[0] = 0x20;
        a[15] = 1;
        b[15] = 2;      // same /64
        var c = (byte[])a.Clone();
        c[7] = 9;       // another /64
        for (int i = 0; i < Constants.HandshakeBurstPerSource; i++)
            Assert.True(limiter.Allow(i % 2 == 0 ? a : b, T0));
        Assert.False(limiter.Allow(b, T0));
        Assert.True(limiter.Allow(c, T0));
        Assert.False(limiter.Allow(new byte[5], T0));
    }

    [Fact]
    public void IdleSources_AreForgotten()
    {
        var limiter = new HandshakeRateLimiter();
        limiter.Allow(V4, T0);
        limiter.Allow(OtherV4, T0);
        Assert.Equal(2, limiter.TrackedSources);
        limiter.Sweep(T0 + TimeSpan.FromSeconds(2));
        Assert.Equal(0, limiter.TrackedSources);
    }

    [Fact]
    public void UnderLoad_WhileTheBacklogIsAnEighthOfTheQueue_AndForASecondAfter()
    {
        var load = new HandshakeLoad();
        // Any rate the workers keep up with is not load: no backlog, no cookies.
        for (int i = 0; i < 10_000; i++)
            Assert.False(load.Observe(i % Constants.UnderLoadQueueLength, T0 + TimeSpan.FromTicks(i)));
        Assert.True(load.Observe(Constants.UnderLoadQueueLength, T0 + TimeSpan.FromMilliseconds(200)));
        Assert.True(load.Observe(0, T0 + TimeSpan.FromMilliseconds(1100)));
        Assert.False(load.Observe(0, T0 + TimeSpan.FromMilliseconds(1200)));
    }
}
