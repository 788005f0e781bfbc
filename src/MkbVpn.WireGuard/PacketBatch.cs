using System.Net;
using System.Net.Sockets;

namespace MkbVpn.WireGuard;

/// <summary>
/// Reusable buffers for one batch of packets (TUN reads, UDP receives). Allocated once per I/O loop and
/// reused for every batch, so the packet path allocates nothing. Each buffer holds
/// <see cref="Headroom"/> spare bytes in front of the packet (room for the transport header, so a
/// packet read from the TUN is encrypted in place) and room for the largest packet plus the tag.
/// </summary>
internal sealed class PacketBatch
{
    /// <summary>Room in front of a TUN packet for the 16-byte transport data header.</summary>
    public const int Headroom = 16;

    /// <summary>Largest IP packet (and UDP payload) handled, plus headroom, padding and the AEAD tag.</summary>
    public const int BufferSize = 65536 + 64;

    public PacketBatch(int capacity, bool withAddresses = false, AddressFamily family = AddressFamily.InterNetworkV6)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Buffers = new byte[capacity][];
        Lengths = new int[capacity];
        SegmentSizes = new int[capacity];
        // Pinned (allocated on the pinned object heap): the native batched I/O takes their addresses.
        for (int i = 0; i < capacity; i++)
            Buffers[i] = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
        if (withAddresses)
        {
            Addresses = new SocketAddress[capacity];
            for (int i = 0; i < capacity; i++)
                Addresses[i] = new SocketAddress(family, Udp.Endpoints.MaxSocketAddressSize);
        }
    }

    public byte[][] Buffers { get; }

    /// <summary>Length of the packet in each buffer (not counting any headroom).</summary>
    public int[] Lengths { get; }

    /// <summary>
    /// UDP GRO: when non-zero, buffer i holds several datagrams of this size back to back (the last may be
    /// shorter), coalesced by the system. Zero: one datagram.
    /// </summary>
    public int[] SegmentSizes { get; }

    /// <summary>Source address of each received datagram (UDP batches only).</summary>
    public SocketAddress[]? Addresses { get; }

    public int Capacity => Buffers.Length;
}

/// <summary>One datagram to send: <c>Buffer[0..Length]</c> to <c>Destination</c>. Buffers come from a <see cref="PacketBatch"/> (pinned).</summary>
internal struct OutgoingDatagram
{
    public byte[] Buffer;
    public int Length;
    public SocketAddress Destination;
}
