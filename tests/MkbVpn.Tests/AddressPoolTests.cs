using System.Net;
using MkbVpn.Addressing;

namespace MkbVpn.Tests;

public class AddressPoolTests
{
    private static readonly HashSet<UInt128> NoneSet = [];
    private static readonly List<UInt128> NoneList = [];

    private static AddressPool Pool(string cidr) => new(IPNetwork.Parse(cidr));

    private static UInt128 N(string ip) => AddressPool.ToNumber(IPAddress.Parse(ip));

    /// <summary>Allocates until the pool says full, like Add does within one batch.</summary>
    private static List<IPAddress> Drain(AddressPool pool, HashSet<UInt128> inUse, int max)
    {
        var got = new List<IPAddress>();
        for (int i = 0; i < max; i++)
        {
            var next = pool.Next(inUse, NoneList, NoneSet);
            if (next is null)
                break;
            Assert.True(inUse.Add(AddressPool.ToNumber(next)), $"{next} handed out twice");
            got.Add(next);
        }
        return got;
    }

    [Fact]
    public void Ipv4_24_server_is_dot1_and_first_client_is_dot2()
    {
        var pool = Pool("203.0.113.0/24");
        Assert.Equal(IPAddress.Parse("203.0.113.1"), pool.ServerAddress);
        Assert.Equal(IPAddress.Parse("203.0.113.2"), pool.Next(NoneSet, NoneList, NoneSet));
        Assert.Equal((UInt128)253, pool.Capacity);
    }

    [Fact]
    public void Ipv4_24_hands_out_dot2_to_dot254_and_never_network_server_or_broadcast()
    {
        var pool = Pool("203.0.113.0/24");
        var inUse = new HashSet<UInt128>();
        var got = Drain(pool, inUse, 1000);
        Assert.Equal(253, got.Count);
        Assert.Equal(IPAddress.Parse("203.0.113.2"), got[0]);
        Assert.Equal(IPAddress.Parse("203.0.113.254"), got[^1]);
        Assert.DoesNotContain(IPAddress.Parse("203.0.113.0"), got);
        Assert.DoesNotContain(IPAddress.Parse("203.0.113.1"), got);
        Assert.DoesNotContain(IPAddress.Parse("203.0.113.255"), got);
        Assert.Null(pool.Next(inUse, NoneList, NoneSet));   // exhausted
    }

    [Theory]
    [InlineData("203.0.113.0/31")]
    [InlineData("203.0.113.0/32")]
    [InlineData("fd00:1234::/127")]
    [InlineData("fd00:1234::/128")]
    public void Too_small_subnets_are_rejected_with_a_clear_message(string cidr)
    {
        var e = Assert.Throws<UserInputException>(() => Pool(cidr));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Contains("too small", e.Message);
        Assert.Contains(cidr, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Ipv4_30_holds_exactly_one_client()
    {
        // network .0, server .1, client .2, broadcast .3
        var pool = Pool("203.0.113.0/30");
        Assert.Equal((UInt128)1, pool.Capacity);
        var inUse = new HashSet<UInt128>();
        var got = Drain(pool, inUse, 10);
        Assert.Equal([IPAddress.Parse("203.0.113.2")], got);
        Assert.Null(pool.Next(inUse, NoneList, NoneSet));
    }

    [Fact]
    public void Ipv4_16_is_not_capped_at_a_24()
    {
        var pool = Pool("198.51.0.0/16");
        Assert.Equal((UInt128)(65536 - 3), pool.Capacity);
        var inUse = new HashSet<UInt128>();
        var got = Drain(pool, inUse, 300);
        Assert.Equal(300, got.Count);
        Assert.Equal(IPAddress.Parse("198.51.0.2"), got[0]);
        Assert.Equal(IPAddress.Parse("198.51.0.255"), got[253]);   // .255 of the first /24 is a normal host in a /16
        Assert.Equal(IPAddress.Parse("198.51.1.0"), got[254]);
        Assert.Equal(IPAddress.Parse("198.51.1.45"), got[^1]);
        Assert.True(pool.IsAssignable(IPAddress.Parse("198.51.200.7")));
        Assert.True(pool.IsAssignable(IPAddress.Parse("198.51.255.254")));
        Assert.False(pool.IsAssignable(IPAddress.Parse("198.51.255.255")));
    }

    [Fact]
    public void Ipv6_64_starts_at_2_and_allocates_sequentially()
    {
        var pool = Pool("fd00:1234:5678::/64");
        Assert.Equal(IPAddress.Parse("fd00:1234:5678::1"), pool.ServerAddress);
        var inUse = new HashSet<UInt128>();
        var got = Drain(pool, inUse, 3);
        Assert.Equal(
            [IPAddress.Parse("fd00:1234:5678::2"), IPAddress.Parse("fd00:1234:5678::3"), IPAddress.Parse("fd00:1234:5678::4")], got);
        Assert.True(pool.IsAssignable(IPAddress.Parse("fd00:1234:5678::ffff:ffff:ffff:ffff")));
        Assert.Equal((UInt128)ulong.MaxValue - 1, pool.Capacity);
    }

    [Fact]
    public void Ipv6_120_uses_the_last_address_too_and_then_is_full()
    {
        var pool = Pool("fd00:1234:5678::100/120");
        Assert.Equal((UInt128)254, pool.Capacity);   // ::102 .. ::1ff (no broadcast in IPv6)
        var inUse = new HashSet<UInt128>();
        var got = Drain(pool, inUse, 1000);
        Assert.Equal(254, got.Count);
        Assert.Equal(IPAddress.Parse("fd00:1234:5678::102"), got[0]);
        Assert.Equal(IPAddress.Parse("fd00:1234:5678::1ff"), got[^1]);
        Assert.Null(pool.Next(inUse, NoneList, NoneSet));
    }

    [Theory]
    [InlineData("203.0.113.2", true)]
    [InlineData("203.0.113.254", true)]
    [InlineData("203.0.113.0", false)]     // network
    [InlineData("203.0.113.1", false)]     // server
    [InlineData("203.0.113.255", false)]   // broadcast
    [InlineData("198.51.100.2", false)]    // other subnet
    [InlineData("fd00:1234:5678::2", false)]   // other family
    public void IsAssignable_ipv4(string address, bool expected) =>
        Assert.Equal(expected, Pool("203.0.113.0/24").IsAssignable(IPAddress.Parse(address)));

    [Theory]
    [InlineData("fd00:1234:5678::2", true)]
    [InlineData("fd00:1234:5678::ffff", true)]
    [InlineData("fd00:1234:5678::", false)]
    [InlineData("fd00:1234:5678::1", false)]
    [InlineData("fd00:1234:5679::2", false)]
    [InlineData("203.0.113.2", false)]
    public void IsAssignable_ipv6(string address, bool expected) =>
        Assert.Equal(expected, Pool("fd00:1234:5678::/64").IsAssignable(IPAddress.Parse(address)));

    [Fact]
    public void Released_addresses_are_skipped_while_never_used_ones_remain()
    {
        var pool = Pool("203.0.113.0/29");   // clients .2 .. .6
        var inUse = new HashSet<UInt128> { N("203.0.113.3") };
        var released = new List<UInt128> { N("203.0.113.2") };
        var releasedSet = new HashSet<UInt128>(released);
        Assert.Equal(IPAddress.Parse("203.0.113.4"), pool.Next(inUse, released, releasedSet));
    }

    [Fact]
    public void Released_addresses_are_reused_oldest_first_when_nothing_else_is_free()
    {
        var pool = Pool("203.0.113.0/29");   // clients .2 .. .6
        var inUse = new HashSet<UInt128> { N("203.0.113.2"), N("203.0.113.4"), N("203.0.113.6") };
        // .5 was released before .3
        var released = new List<UInt128> { N("203.0.113.5"), N("203.0.113.3") };
        var releasedSet = new HashSet<UInt128>(released);
        Assert.Equal(IPAddress.Parse("203.0.113.5"), pool.Next(inUse, released, releasedSet));
        inUse.Add(N("203.0.113.5"));
        Assert.Equal(IPAddress.Parse("203.0.113.3"), pool.Next(inUse, released, releasedSet));
        inUse.Add(N("203.0.113.3"));
        Assert.Null(pool.Next(inUse, released, releasedSet));
    }

    [Fact]
    public void Released_addresses_outside_the_pool_are_ignored()
    {
        var pool = Pool("203.0.113.0/30");   // only .2
        var inUse = new HashSet<UInt128> { N("203.0.113.2") };
        var released = new List<UInt128> { N("198.51.100.9"), N("203.0.113.3") /* broadcast */ };
        Assert.Null(pool.Next(inUse, released, new HashSet<UInt128>(released)));
    }

    [Fact]
    public void Next_is_fast_in_a_huge_ipv6_subnet_with_many_taken()
    {
        var pool = Pool("fd00:1234:5678::/64");
        var inUse = new HashSet<UInt128>();
        var first = AddressPool.ToNumber(IPAddress.Parse("fd00:1234:5678::2"));
        for (UInt128 i = 0; i < 5000; i++)
            inUse.Add(first + i);
        Assert.Equal(AddressPool.FromNumber(first + 5000, v4: false), pool.Next(inUse, NoneList, NoneSet));
    }

    [Fact]
    public void Validate_accepts_usable_subnets_and_refuses_tiny_ones()
    {
        AddressPool.Validate(IPNetwork.Parse("203.0.113.0/30"));
        AddressPool.Validate(IPNetwork.Parse("fd00:1234::/126"));
        Assert.Throws<UserInputException>(() => AddressPool.Validate(IPNetwork.Parse("203.0.113.0/31")));
    }

    [Fact]
    public void Ipv4_slash0_is_bounded_by_32_bits()
    {
        var pool = Pool("0.0.0.0/0");
        Assert.Equal((UInt128)uint.MaxValue - 2, pool.Capacity);   // 2^32 minus network, server, broadcast
        Assert.False(pool.IsAssignable(IPAddress.Parse("255.255.255.255")));
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("203.0.113.77")]
    [InlineData("255.255.255.255")]
    [InlineData("::")]
    [InlineData("fd00:1234:5678::abcd")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
    public void ToNumber_and_FromNumber_round_trip(string ip)
    {
        var a = IPAddress.Parse(ip);
        bool v4 = a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        Assert.Equal(a, AddressPool.FromNumber(AddressPool.ToNumber(a), v4));
    }
}
