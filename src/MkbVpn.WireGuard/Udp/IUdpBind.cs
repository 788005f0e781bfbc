using System.Net;
using System.Net.Sockets;

namespace MkbVpn.WireGuard.Udp;

/// <summary>
/// The UDP side of a device (after wireguard-go's conn.Bind): one listening port, IPv4 and IPv6,
/// batched receive into caller buffers with the source address, send to a raw socket address.
/// One receiving thread; sends from any thread.
/// </summary>
internal interface IUdpBind : IDisposable
{
    /// <summary>The bound port (the one chosen by the system when 0 was asked for).</summary>
    int Port { get; }

    /// <summary>The address family of addresses this bind produces and accepts.</summary>
    AddressFamily Family { get; }

    /// <summary>
    /// Blocks until at least one datagram arrives, then receives as many as are ready (up to the batch's
    /// capacity) into <c>batch.Buffers[i]</c>, <c>batch.Lengths[i]</c> and <c>batch.Addresses[i]</c>.
    /// Returns the count, or 0 once the bind is closed.
    /// </summary>
    int Receive(PacketBatch batch);

    /// <summary>Sends one datagram. Returns false if the system refused it (counted by the caller as dropped).</summary>
    bool Send(ReadOnlySpan<byte> datagram, SocketAddress destination);

    /// <summary>
    /// Sends several datagrams (pinned buffers) with as few system calls as the bind can (sendmmsg, UDP GSO).
    /// Returns how many could not be sent.
    /// </summary>
    int SendBatch(ReadOnlySpan<OutgoingDatagram> datagrams);

    /// <summary>The raw form of <paramref name="endpoint"/> for this bind's family (IPv4 mapped on a dual-stack socket).</summary>
    SocketAddress ToSocketAddress(IPEndPoint endpoint);

    /// <summary>Sets the firewall mark on outgoing packets (SO_MARK); 0 clears it.</summary>
    void SetFwmark(uint mark);
}
