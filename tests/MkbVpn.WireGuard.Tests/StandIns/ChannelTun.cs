using System.Collections.Concurrent;

namespace MkbVpn.WireGuard.Tun;

/// <summary>
/// An in-memory TUN device for tests (after wireguard-go's tun/tuntest): the test injects packets
/// "from the system" with <see cref="Inject"/> and takes what the device delivers from <see cref="Delivered"/>.
/// </summary>
internal sealed class ChannelTun : ITun
{
    private readonly BlockingCollection<byte[]> _inbound = new(boundedCapacity: 1024);
    private readonly CancellationTokenSource _closed = new();

    public ChannelTun(string name = "tun-test", int mtu = 1420)
    {
        Name = name;
        Mtu = mtu;
    }

    public string Name { get; }
    public int Mtu { get; }
    public bool IsClosed => _closed.IsCancellationRequested;

    /// <summary>Packets the device wrote to the "system".</summary>
    public BlockingCollection<byte[]> Delivered { get; } = new();

    /// <summary>Hands a packet to the device as if an application had sent it through the interface.</summary>
    public void Inject(ReadOnlySpan<byte> packet) => _inbound.Add(packet.ToArray());

    public int Read(PacketBatch batch)
    {
        int count = 0;
        try
        {
            byte[] first = _inbound.Take(_closed.Token);
            Store(batch, count++, first);
            while (count < batch.Capacity && _inbound.TryTake(out byte[]? next))
                Store(batch, count++, next);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        return count;
    }

    private static void Store(PacketBatch batch, int i, byte[] packet)
    {
        packet.CopyTo(batch.Buffers[i].AsSpan(PacketBatch.Headroom));
        batch.Lengths[i] = packet.Length;
    }

    public bool Write(ReadOnlySpan<byte> packet)
    {
        if (IsClosed)
            return false;
        Delivered.Add(packet.ToArray());
        return true;
    }

    public int Write(ReadOnlySpan<TunPacket> packets)
    {
        int failed = 0;
        foreach (TunPacket p in packets)
            if (!Write(p.Span))
                failed++;
        return failed;
    }

    /// <summary>Simulates the interface being deleted.</summary>
    public void Remove() => _closed.Cancel();

    public void Dispose()
    {
        _closed.Cancel();
    }
}
