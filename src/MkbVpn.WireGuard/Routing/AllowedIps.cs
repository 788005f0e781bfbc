using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace MkbVpn.WireGuard.Routing;

/// <summary>
/// Cryptokey routing (whitepaper section 2): the allowed-IPs table, one path-compressed binary trie
/// per address family, longest prefix wins. Used to pick the peer for an outgoing packet's destination
/// and to check an incoming packet's source. An address range belongs to at most one peer: inserting
/// it for another peer moves it. Lookups allocate nothing. Not thread-safe: the device serialises
/// writes against reads (or swaps tables).
/// </summary>
internal sealed class AllowedIps<TPeer> where TPeer : class
{
    private sealed class Node
    {
        public readonly byte[] Bits;   // the prefix, host bits zero
        public readonly int Cidr;
        public readonly Node?[] Children = new Node?[2];
        public TPeer? Peer;

        public Node(byte[] bits, int cidr, TPeer? peer)
        {
            Bits = bits;
            Cidr = cidr;
            Peer = peer;
        }
    }

    private Node? _v4;
    private Node? _v6;

    // Each peer's nodes, so that listing or removing a peer's ranges costs its own ranges, not the
    // whole table (a UAPI get of 10,000 peers would otherwise walk the trie 10,000 times).
    // Nodes that carry a peer keep their identity: insertion re-parents them, pruning drops only peerless ones.
    private readonly Dictionary<TPeer, List<Node>> _byPeer = new(ReferenceEqualityComparer.Instance);

    public int Count { get; private set; }

    /// <summary>Routes <paramref name="address"/>/<paramref name="cidr"/> to <paramref name="peer"/> (host bits are ignored).</summary>
    public void Insert(IPAddress address, int cidr, TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        byte[] bits = Canonical(address, cidr);
        ref Node? root = ref Root(bits.Length);
        Insert(ref root, bits, cidr, peer);
    }

    /// <summary>Removes one range; returns false if it was not present.</summary>
    public bool Remove(IPAddress address, int cidr) => Remove(address, cidr, owner: null);

    /// <summary>
    /// Removes one range if <paramref name="owner"/> holds it (null: whoever holds it); returns false if it was
    /// not present or belongs to another peer (UAPI allowed_ip=-PREFIX, as wireguard-go).
    /// </summary>
    public bool Remove(IPAddress address, int cidr, TPeer? owner)
    {
        byte[] bits = Canonical(address, cidr);
        ref Node? root = ref Root(bits.Length);
        Node? node = root;
        while (node is not null && node.Cidr <= cidr && PrefixMatches(node, bits))
        {
            if (node.Cidr == cidr)
            {
                if (node.Peer is null || (owner is not null && !EqualityComparer<TPeer>.Default.Equals(node.Peer, owner)))
                    return false;
                Unlink(node);
                node.Peer = null;
                Count--;
                root = Prune(root);
                return true;
            }
            node = node.Children[BitAt(bits, node.Cidr)];
        }
        return false;
    }

    /// <summary>Removes every range of <paramref name="peer"/> (peer removed or its allowed IPs replaced).</summary>
    public int RemoveByPeer(TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (!_byPeer.Remove(peer, out var nodes))
            return 0;   // nothing to clear, nothing to prune: adding a new peer stays cheap
        foreach (var node in nodes)
            node.Peer = null;
        Count -= nodes.Count;
        _v4 = Prune(_v4);
        _v6 = Prune(_v6);
        return nodes.Count;
    }

    /// <summary>The peer whose most specific range contains <paramref name="address"/> (4 or 16 bytes), or null.</summary>
    public TPeer? Lookup(ReadOnlySpan<byte> address)
    {
        Node? node = address.Length switch
        {
            4 => _v4,
            16 => _v6,
            _ => null,
        };
        TPeer? best = null;
        while (node is not null && PrefixMatches(node, address))
        {
            if (node.Peer is not null)
                best = node.Peer;
            if (node.Cidr == address.Length * 8)
                break;
            node = node.Children[BitAt(address, node.Cidr)];
        }
        return best;
    }

    public TPeer? Lookup(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (!address.TryWriteBytes(bytes, out int written))
            return null;
        return Lookup(bytes[..written]);
    }

    /// <summary>The ranges routed to <paramref name="peer"/> (wg's allowed-ips), IPv4 first, each in trie order.</summary>
    public IEnumerable<(IPAddress Address, int Cidr)> EntriesFor(TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (!_byPeer.TryGetValue(peer, out var nodes))
            return [];
        var sorted = nodes.ToArray();
        // Trie (pre-)order: IPv4 first, then by prefix bits, a containing range before what it contains.
        Array.Sort(sorted, static (a, b) =>
        {
            int c = a.Bits.Length.CompareTo(b.Bits.Length);
            if (c == 0)
                c = a.Bits.AsSpan().SequenceCompareTo(b.Bits);
            return c != 0 ? c : a.Cidr.CompareTo(b.Cidr);
        });
        return [.. sorted.Select(n => (new IPAddress(n.Bits), n.Cidr))];
    }

    public void Clear()
    {
        _v4 = _v6 = null;
        _byPeer.Clear();
        Count = 0;
    }

    // ---- trie ---------------------------------------------------------------------------------

    private ref Node? Root(int length)
    {
        if (length == 4)
            return ref _v4;
        return ref _v6;
    }

    private void Insert(ref Node? slot, byte[] bits, int cidr, TPeer peer)
    {
        while (true)
        {
            Node? node = slot;
            if (node is null)
            {
                slot = Link(new Node(bits, cidr, peer));
                Count++;
                return;
            }

            int common = CommonPrefix(node.Bits, bits, Math.Min(node.Cidr, cidr));
            if (common == node.Cidr)
            {
                if (node.Cidr == cidr)
                {
                    if (node.Peer is null)
                        Count++;
                    else
                        Unlink(node);
                    node.Peer = peer;
                    Link(node);
                    return;
                }
                slot = ref node.Children[BitAt(bits, node.Cidr)];
                continue;
            }

            if (common == cidr)
            {
                // The new range contains the node's: it becomes the node's parent.
                var parent = Link(new Node(bits, cidr, peer));
                parent.Children[BitAt(node.Bits, cidr)] = node;
                slot = parent;
                Count++;
                return;
            }

            // They diverge below both: a peerless branch node at the common prefix.
            var branch = new Node(Mask(bits, common), common, null);
            branch.Children[BitAt(bits, common)] = Link(new Node(bits, cidr, peer));
            branch.Children[BitAt(node.Bits, common)] = node;
            slot = branch;
            Count++;
            return;
        }
    }

    // Drops nodes that route nowhere and branch nowhere, and collapses peerless single-child nodes.
    private static Node? Prune(Node? node)
    {
        if (node is null)
            return null;
        node.Children[0] = Prune(node.Children[0]);
        node.Children[1] = Prune(node.Children[1]);
        if (node.Peer is not null)
            return node;
        if (node.Children[0] is null)
            return node.Children[1];
        if (node.Children[1] is null)
            return node.Children[0];
        return node;
    }

    private Node Link(Node node)
    {
        Debug.Assert(node.Peer is not null);
        if (!_byPeer.TryGetValue(node.Peer, out var list))
            _byPeer[node.Peer] = list = [];
        list.Add(node);
        return node;
    }

    private void Unlink(Node node)
    {
        Debug.Assert(node.Peer is not null);
        if (_byPeer.TryGetValue(node.Peer, out var list))
        {
            list.Remove(node);
            if (list.Count == 0)
                _byPeer.Remove(node.Peer);
        }
    }

    private static bool PrefixMatches(Node node, ReadOnlySpan<byte> address) =>
        address.Length == node.Bits.Length && CommonPrefix(node.Bits, address, node.Cidr) == node.Cidr;

    private static int CommonPrefix(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int maxBits)
    {
        Debug.Assert(a.Length == b.Length);
        int bits = 0;
        for (int i = 0; i < a.Length && bits < maxBits; i++)
        {
            int diff = a[i] ^ b[i];
            if (diff != 0)
            {
                bits += BitOperations.LeadingZeroCount((uint)diff) - 24;
                break;
            }
            bits += 8;
        }
        return Math.Min(bits, maxBits);
    }

    private static int BitAt(ReadOnlySpan<byte> bytes, int index) => (bytes[index >> 3] >> (7 - (index & 7))) & 1;

    private static byte[] Mask(ReadOnlySpan<byte> bytes, int cidr)
    {
        byte[] masked = bytes.ToArray();
        for (int i = 0; i < masked.Length; i++)
        {
            int keep = Math.Clamp(cidr - i * 8, 0, 8);
            masked[i] &= (byte)(0xFF00 >> keep);
        }
        return masked;
    }

    private static byte[] Canonical(IPAddress address, int cidr)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        int maxBits = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => 32,
            AddressFamily.InterNetworkV6 => 128,
            _ => throw new ArgumentException("only IPv4 and IPv6 addresses can be allowed IPs", nameof(address)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(cidr);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cidr, maxBits);
        return Mask(address.GetAddressBytes(), cidr);
    }
}
