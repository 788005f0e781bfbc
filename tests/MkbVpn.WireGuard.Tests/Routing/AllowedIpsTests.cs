using System.Net;
using MkbVpn.WireGuard.Routing;

namespace MkbVpn.WireGuard.Tests.Routing;

public sealed class AllowedIpsTests
{
    private sealed class Peer(string name)
    {
        public override string ToString() => name;
    }

    private static readonly Peer A = new("a"), B = new("b"), C = new("c"), D = new("d");

    private static void Add(AllowedIps<Peer> t, string cidr, Peer p)
    {
        var parts = cidr.Split('/');
        t.Insert(IPAddress.Parse(parts[0]), int.Parse(parts[1]), p);
    }

    private static Peer? Get(AllowedIps<Peer> t, string address) => t.Lookup(IPAddress.Parse(address));

    [Fact]
    public void LongestPrefixWins_V4()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "10.0.0.0/8", A);
        Add(t, "10.1.0.0/16", B);
        Add(t, "10.1.2.3/32", C);
        Add(t, "0.0.0.0/0", D);
        Assert.Same(C, Get(t, "10.1.2.3"));
        Assert.Same(B, Get(t, "10.1.2.4"));
        Assert.Same(A, Get(t, "10.2.0.1"));
        Assert.Same(D, Get(t, "192.168.1.1"));
        Assert.Equal(4, t.Count);
    }

    [Fact]
    public void LongestPrefixWins_V6_AndFamiliesAreSeparate()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "fd00::/8", A);
        Add(t, "fd00:1::/32", B);
        Add(t, "fd00:1::5/128", C);
        Assert.Same(C, Get(t, "fd00:1::5"));
        Assert.Same(B, Get(t, "fd00:1::6"));
        Assert.Same(A, Get(t, "fdff::1"));
        Assert.Null(Get(t, "2001:db8::1"));
        Assert.Null(Get(t, "10.0.0.1"));

        Add(t, "0.0.0.0/0", D);
        Assert.Same(D, Get(t, "10.0.0.1"));
        Assert.Null(Get(t, "2001:db8::1"));
        Assert.Same(D, Get(t, "::ffff:10.0.0.1")); // v4-mapped is looked up as v4
    }

    [Fact]
    public void InsertOrder_DoesNotMatter()
    {
        string[] routes = { "10.0.0.0/8", "10.128.0.0/9", "10.0.0.0/24", "10.0.0.128/25", "10.0.0.7/32", "11.0.0.0/8", "0.0.0.0/1" };
        Peer[] peers = { A, B, C, D, A, B, C };
        string[] probes = { "10.0.0.7", "10.0.0.200", "10.0.0.1", "10.200.0.1", "10.1.1.1", "11.5.5.5", "12.0.0.1", "200.0.0.1" };
        var rng = new Random(42);
        Peer?[]? reference = null;
        for (int round = 0; round < 20; round++)
        {
            var order = Enumerable.Range(0, routes.Length).OrderBy(_ => rng.Next()).ToArray();
            var t = new AllowedIps<Peer>();
            foreach (int i in order)
                Add(t, routes[i], peers[i]);
            var results = probes.Select(p => Get(t, p)).ToArray();
            reference ??= results;
            Assert.Equal(reference, results);
        }
        Assert.Equal(new Peer?[] { A, D, C, B, A, B, C, null }, reference);
    }

    [Fact]
    public void HostBits_AreMasked_AndReinsertMovesTheRange()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "192.168.7.99/24", A);
        Assert.Same(A, Get(t, "192.168.7.1"));
        Assert.Equal((IPAddress.Parse("192.168.7.0"), 24), Assert.Single(t.EntriesFor(A)));

        Add(t, "192.168.7.0/24", B);
        Assert.Same(B, Get(t, "192.168.7.1"));
        Assert.Empty(t.EntriesFor(A));
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void RemoveByPeer_LeavesOthersIntact()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "10.0.0.0/8", A);
        Add(t, "10.1.0.0/16", B);
        Add(t, "10.1.1.0/24", A);
        Add(t, "fd00::/64", A);
        Add(t, "fd00::1/128", B);
        Assert.Equal(3, t.RemoveByPeer(A));
        Assert.Same(B, Get(t, "10.1.1.1"));
        Assert.Null(Get(t, "10.2.0.1"));
        Assert.Same(B, Get(t, "fd00::1"));
        Assert.Null(Get(t, "fd00::2"));
        Assert.Empty(t.EntriesFor(A));
        Assert.Equal(2, t.EntriesFor(B).Count());
        Assert.Equal(2, t.Count);
        Assert.Equal(0, t.RemoveByPeer(A));
    }

    [Fact]
    public void RemoveOneRange()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "10.0.0.0/8", A);
        Add(t, "10.1.0.0/16", B);
        Assert.True(t.Remove(IPAddress.Parse("10.1.0.0"), 16));
        Assert.Same(A, Get(t, "10.1.0.1"));
        Assert.False(t.Remove(IPAddress.Parse("10.1.0.0"), 16));
        Assert.False(t.Remove(IPAddress.Parse("10.0.0.0"), 9));
        Assert.True(t.Remove(IPAddress.Parse("10.0.0.0"), 8));
        Assert.Null(Get(t, "10.1.0.1"));
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void EntriesFor_ListsEveryRangeOfThePeer()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "10.8.0.2/32", A);
        Add(t, "fd42::2/128", A);
        Add(t, "192.168.50.0/24", A);
        Add(t, "10.8.0.3/32", B);
        var entries = t.EntriesFor(A).Select(e => $"{e.Address}/{e.Cidr}").OrderBy(s => s).ToArray();
        Assert.Equal(new[] { "10.8.0.2/32", "192.168.50.0/24", "fd42::2/128" }, entries);
    }

    [Fact]
    public void Lookup_ByRawBytes_AndRejectsOddLengths()
    {
        var t = new AllowedIps<Peer>();
        Add(t, "10.0.0.0/8", A);
        Assert.Same(A, t.Lookup(new byte[] { 10, 9, 8, 7 }));
        Assert.Null(t.Lookup(new byte[] { 11, 9, 8, 7 }));
        Assert.Null(t.Lookup(new byte[] { 10, 9, 8 }));
        Assert.Null(t.Lookup(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void InvalidPrefixLength_Throws()
    {
        var t = new AllowedIps<Peer>();
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Insert(IPAddress.Parse("10.0.0.0"), 33, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Insert(IPAddress.Parse("fd00::"), 129, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Insert(IPAddress.Parse("10.0.0.0"), -1, A));
    }

    [Fact]
    public void MatchesBruteForce_OnRandomTables()
    {
        var rng = new Random(7);
        var peers = Enumerable.Range(0, 8).Select(i => new Peer(i.ToString())).ToArray();
        for (int round = 0; round < 30; round++)
        {
            var t = new AllowedIps<Peer>();
            var table = new Dictionary<(uint, int), Peer>();
            for (int i = 0; i < 60; i++)
            {
                int cidr = rng.Next(0, 33);
                uint prefix = (uint)rng.Next() & (cidr == 0 ? 0 : uint.MaxValue << (32 - cidr)) & 0x0FFFFFFFu; // cluster in 0.0.0.0/4
                var peer = peers[rng.Next(peers.Length)];
                table[(prefix, cidr)] = peer;
                t.Insert(new IPAddress(BitConverter.GetBytes(prefix).Reverse().ToArray()), cidr, peer);
            }
            if (round % 2 == 1)
            {
                var gone = peers[rng.Next(peers.Length)];
                t.RemoveByPeer(gone);
                foreach (var k in table.Where(kv => kv.Value == gone).Select(kv => kv.Key).ToList())
                    table.Remove(k);
            }
            Assert.Equal(table.Count, t.Count);
            for (int probe = 0; probe < 300; probe++)
            {
                uint address = (uint)rng.Next() & 0x0FFFFFFFu;
                Peer? expected = table
                    .Where(kv => kv.Key.Item2 == 0 || (address >> (32 - kv.Key.Item2)) == (kv.Key.Item1 >> (32 - kv.Key.Item2)))
                    .OrderByDescending(kv => kv.Key.Item2)
                    .Select(kv => kv.Value)
                    .FirstOrDefault();
                Assert.Same(expected, t.Lookup(new IPAddress(BitConverter.GetBytes(address).Reverse().ToArray())));
            }
            // The per-peer index agrees with the table after inserts, moves and removals.
            foreach (var peer in peers)
            {
                var want = table.Where(kv => kv.Value == peer)
                    .Select(kv => $"{new IPAddress(BitConverter.GetBytes(kv.Key.Item1).Reverse().ToArray())}/{kv.Key.Item2}").Order().ToArray();
                var have = t.EntriesFor(peer).Select(e => $"{e.Address}/{e.Cidr}").Order().ToArray();
                Assert.Equal(want, have);
            }
        }
    }
}
