namespace MkbVpn.WireGuard.Tun;

/// <summary>One IP packet in a caller's buffer: <c>Buffer[Offset..Offset+Length]</c>.</summary>
internal readonly record struct TunPacket(byte[] Buffer, int Offset, int Length)
{
    public ReadOnlySpan<byte> Span => Buffer.AsSpan(Offset, Length);
}

/// <summary>
/// A layer-3 tunnel device (IFF_TUN, no packet information header): IP packets in and out.
/// Reads are batched into caller buffers; one reader thread and any number of writers.
/// </summary>
internal interface ITun : IDisposable
{
    /// <summary>The interface name (as the kernel assigned it).</summary>
    string Name { get; }

    /// <summary>The interface's current MTU.</summary>
    int Mtu { get; }

    /// <summary>
    /// Blocks until at least one packet is available, then reads as many as are ready (up to the batch's
    /// capacity) into <c>batch.Buffers[i][PacketBatch.Headroom..]</c>. Returns the count, or 0 when the device
    /// is closed or the interface was removed (then <see cref="IsClosed"/> is true).
    /// </summary>
    int Read(PacketBatch batch);

    /// <summary>Writes one IP packet to the system. Returns false if it was dropped.</summary>
    bool Write(ReadOnlySpan<byte> packet);

    /// <summary>
    /// Writes several IP packets (in order); a device with offloads may coalesce consecutive TCP segments of
    /// one flow into one write. Returns how many packets were dropped.
    /// </summary>
    int Write(ReadOnlySpan<TunPacket> packets);

    /// <summary>True once the device was disposed or the interface disappeared.</summary>
    bool IsClosed { get; }
}
