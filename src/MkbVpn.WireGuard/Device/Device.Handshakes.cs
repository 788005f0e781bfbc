using System.Collections.Concurrent;
using System.Net;
using MkbVpn.WireGuard.Protocol;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Device;

/// <summary>
/// Handshake messages (initiations, responses, cookie replies) leave the receive loop for a bounded queue served
/// by one worker per core, as wireguard-go's RoutineHandshake: the Diffie-Hellman work spreads over the cores and
/// never stalls transport data, and the queue's backlog is what "under load" means (<see cref="HandshakeLoad"/>).
/// </summary>
internal sealed partial class Device
{
    private readonly BlockingCollection<HandshakeWork> _handshakes =
        new(new ConcurrentQueue<HandshakeWork>(), Constants.HandshakeQueueSize);

    private readonly record struct HandshakeWork(byte[] Message, SocketAddress Source);

    /// <summary>How many handshake workers run (one per core, as wireguard-go).</summary>
    public static int HandshakeWorkers => Math.Clamp(Environment.ProcessorCount, 1, 16);

    // Receive loop: a copy of the message goes to the queue; a full queue drops it (counted).
    private void EnqueueHandshake(ReadOnlySpan<byte> message, SocketAddress source)
    {
        if (!_handshakes.TryAdd(new HandshakeWork(message.ToArray(), Endpoints.Copy(source))))
            Interlocked.Increment(ref Counters.HandshakeQueueFull);
    }

    private void RoutineHandshakes()
    {
        var scratch = new byte[PacketBatch.BufferSize];
        var flushScratch = new byte[PacketBatch.BufferSize];
        try
        {
            foreach (HandshakeWork work in _handshakes.GetConsumingEnumerable(_stopped.Token))
                ReceiveHandshakeMessage(work.Message, work.Source, scratch, flushScratch);
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
    }

    /// <summary>Handshake messages waiting for a worker now.</summary>
    public int HandshakeBacklog => _handshakes.Count;
}
