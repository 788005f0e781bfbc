using System.Net;
using System.Net.Sockets;

namespace MkbVpn.WireGuard.Udp;

/// <summary>
/// A dual-stack UDP socket ([::]:port with IPV6_V6ONLY off; plain IPv4 where IPv6 is unavailable).
/// Receives with <c>Socket.ReceiveFrom(Span, SocketFlags, SocketAddress)</c> into reused buffers and
/// addresses: no allocation per datagram. A batch drains what the socket already holds.
/// </summary>
internal sealed class SocketBind : IUdpBind
{
    private const int SolSocket = 1;
    private const int SoMark = 36;
    private const int BufferBytes = 4 << 20;

    private readonly Socket _socket;
    private volatile bool _closed;

    private SocketBind(Socket socket)
    {
        _socket = socket;
        Port = ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public int Port { get; }
    public AddressFamily Family => _socket.AddressFamily;

    /// <summary>Binds <paramref name="port"/> (0: a random free port). Throws <see cref="SocketException"/> (AddressAlreadyInUse) if taken.</summary>
    public static SocketBind Open(int port, uint fwmark = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Socket socket;
        if (Socket.OSSupportsIPv6)
        {
            socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.DualMode = true;
                socket.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
            {
                socket.Dispose();
                socket = BindV4(port);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        else
        {
            socket = BindV4(port);
        }
        try
        {
            socket.ReceiveBufferSize = BufferBytes;
            socket.SendBufferSize = BufferBytes;
        }
        catch (SocketException)
        {
            // best effort, like wireguard-go
        }
        var bind = new SocketBind(socket);
        if (fwmark != 0)
            bind.SetFwmark(fwmark);
        return bind;
    }

    private static Socket BindV4(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Any, port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public int Receive(PacketBatch batch)
    {
        SocketAddress[] addresses = batch.Addresses ?? throw new ArgumentException("the batch has no address slots", nameof(batch));
        int count = 0;
        while (!_closed)
        {
            try
            {
                if (count > 0 && (count == batch.Capacity || _socket.Available == 0))
                    return count;
                SocketAddress address = addresses[count];
                if (address.Family != _socket.AddressFamily)
                    addresses[count] = address = new SocketAddress(_socket.AddressFamily, Endpoints.MaxSocketAddressSize);
                else
                    address.Size = address.Buffer.Length;
                int n = _socket.ReceiveFrom(batch.Buffers[count], SocketFlags.None, address);
                batch.Lengths[count++] = n;
            }
            catch (SocketException e) when (!_closed && e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize or SocketError.Interrupted)
            {
                // ICMP port unreachable for an earlier send, or an oversized datagram: skip it.
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return _closed ? 0 : count;
            }
        }
        return 0;
    }

    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress destination)
    {
        if (_closed || destination.Family != _socket.AddressFamily)
            return false;
        try
        {
            return _socket.SendTo(datagram, SocketFlags.None, destination) == datagram.Length;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public SocketAddress ToSocketAddress(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        IPAddress address = endpoint.Address;
        if (_socket.AddressFamily == AddressFamily.InterNetworkV6 && address.AddressFamily == AddressFamily.InterNetwork)
            address = address.MapToIPv6();
        else if (_socket.AddressFamily == AddressFamily.InterNetwork && address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        return new IPEndPoint(address, endpoint.Port).Serialize();
    }

    public void SetFwmark(uint mark)
    {
        try
        {
            _socket.SetRawSocketOption(SolSocket, SoMark, BitConverter.GetBytes(mark));
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot set fwmark: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        _closed = true;
        // Shutdown wakes a thread blocked in ReceiveFrom; Dispose alone may not on Linux.
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        _socket.Dispose();
    }
}
