using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace MkbVpn.WireGuard.Udp;

/// <summary>
/// An in-memory UDP network for tests (after wireguard-go's conn/bindtest): binds on one
/// <see cref="ChannelNetwork"/> deliver datagrams to each other by IPv4 address and port.
/// </summary>
internal sealed class ChannelNetwork
{
    private readonly ConcurrentDictionary<IPEndPoint, ChannelBind> _binds = new();
    private int _nextPort = 40000;

    /// <summary>Sees every datagram sent between binds (data, from, to): tests record and replay with it.</summary>
    public Action<byte[], IPEndPoint, IPEndPoint>? Tap { get; set; }

    /// <summary>Datagrams sent to an address nobody listens on.</summary>
    public int Undeliverable;

    /// <summary>Opens a bind on <paramref name="address"/>:<paramref name="port"/> (0: the next free port).</summary>
    public ChannelBind Open(IPAddress address, int port)
    {
        if (port == 0)
            port = Interlocked.Increment(ref _nextPort);
        var bind = new ChannelBind(this, new IPEndPoint(address, port));
        if (!_binds.TryAdd(bind.Local, bind))
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        return bind;
    }

    /// <summary>Injects a datagram as if sent from <paramref name="from"/> (for hostile-input tests).</summary>
    public bool Deliver(ReadOnlySpan<byte> datagram, IPEndPoint from, IPEndPoint to)
    {
        if (!_binds.TryGetValue(to, out ChannelBind? bind))
        {
            Interlocked.Increment(ref Undeliverable);
            return false;
        }
        byte[] copy = datagram.ToArray();
        Tap?.Invoke(copy, from, to);
        return bind.Enqueue(copy, from);
    }

    internal void Remove(ChannelBind bind) => _binds.TryRemove(new KeyValuePair<IPEndPoint, ChannelBind>(bind.Local, bind));
}

/// <summary>One endpoint of a <see cref="ChannelNetwork"/>.</summary>
internal sealed class ChannelBind : IUdpBind
{
    private readonly ChannelNetwork _network;
    private readonly BlockingCollection<(byte[] Data, IPEndPoint From)> _inbound = new(boundedCapacity: 4096);
    private readonly CancellationTokenSource _closed = new();

    internal ChannelBind(ChannelNetwork network, IPEndPoint local)
    {
        _network = network;
        Local = local;
    }

    public IPEndPoint Local { get; }
    public int Port => Local.Port;
    public AddressFamily Family => AddressFamily.InterNetwork;

    internal bool Enqueue(byte[] data, IPEndPoint from) => !_closed.IsCancellationRequested && _inbound.TryAdd((data, from));

    public int Receive(PacketBatch batch)
    {
        SocketAddress[] addresses = batch.Addresses ?? throw new ArgumentException("the batch has no address slots", nameof(batch));
        int count = 0;
        try
        {
            var item = _inbound.Take(_closed.Token);
            do
            {
                item.Data.CopyTo(batch.Buffers[count], 0);
                batch.Lengths[count] = item.Data.Length;
                SocketAddress raw = item.From.Serialize();
                if (addresses[count].Family != raw.Family)
                    addresses[count] = new SocketAddress(raw.Family, Endpoints.MaxSocketAddressSize);
                addresses[count].Size = raw.Size;
                raw.Buffer.Span[..raw.Size].CopyTo(addresses[count].Buffer.Span);
                count++;
            }
            while (count < batch.Capacity && _inbound.TryTake(out item));
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        return count;
    }

    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress destination)
    {
        if (_closed.IsCancellationRequested || Endpoints.ToEndPoint(destination) is not { } to)
            return false;
        return _network.Deliver(datagram, Local, to);
    }

    public int SendBatch(ReadOnlySpan<OutgoingDatagram> datagrams)
    {
        int failed = 0;
        foreach (OutgoingDatagram d in datagrams)
            if (!Send(d.Buffer.AsSpan(0, d.Length), d.Destination))
                failed++;
        return failed;
    }

    public SocketAddress ToSocketAddress(IPEndPoint endpoint) =>
        new IPEndPoint(endpoint.Address.IsIPv4MappedToIPv6 ? endpoint.Address.MapToIPv4() : endpoint.Address, endpoint.Port).Serialize();

    public void SetFwmark(uint mark)
    {
    }

    public void Dispose()
    {
        _network.Remove(this);
        _closed.Cancel();
    }
}
