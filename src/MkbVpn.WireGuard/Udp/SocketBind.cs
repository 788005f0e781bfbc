using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MkbVpn.WireGuard.Interop;

namespace MkbVpn.WireGuard.Udp;

/// <summary>
/// A dual-stack UDP socket ([::]:port with IPV6_V6ONLY off; plain IPv4 where IPv6 is unavailable).
/// Receives with <c>Socket.ReceiveFrom(Span, SocketFlags, SocketAddress)</c> into reused buffers and
/// addresses: no allocation per datagram. On Linux, batches go through recvmmsg (one system call for all
/// that is queued) and sendmmsg with UDP GSO (UDP_SEGMENT: a run of equal-sized datagrams to one
/// endpoint goes down the stack as one); GSO switches itself off if the system refuses it.
/// </summary>
internal sealed unsafe class SocketBind : IUdpBind
{
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int EIO = 5;
    private const int MaxGsoSegments = 64;
    private const int MaxGsoBytes = 65000;
    private readonly Lock _txSync = new();
    private NativeBuffers? _rx;
    private NativeBuffers? _tx;
    private int[] _txGroups = [];
    private volatile bool _gso = true;
    private bool _gro;
    private int _disposedNative;

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

    /// <summary>The socket itself, for tests that set options on it.</summary>
    internal Socket Socket => _socket;

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
        try
        {
            // UDP GRO: the system may hand us runs of datagrams from one sender as one buffer (split by the device).
            socket.SetRawSocketOption(LibcMsg.SOL_UDP, LibcMsg.UDP_GRO, BitConverter.GetBytes(1));
            bind._gro = true;
        }
        catch (SocketException)
        {
        }
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
        int capacity = batch.Capacity;
        NativeBuffers rx = _rx is { } existing && existing.Capacity >= capacity ? existing : (_rx = Replace(_rx, capacity));
        bool added = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref added);
            int fd = (int)_socket.SafeHandle.DangerousGetHandle();
            for (int i = 0; i < capacity; i++)
            {
                rx.Iov[i] = new LibcMsg.IoVec { Base = Pointer(batch.Buffers[i]), Length = (nuint)batch.Buffers[i].Length };
                rx.Messages[i] = new LibcMsg.MMsgHdr
                {
                    Header = new LibcMsg.MsgHdr
                    {
                        Name = rx.Names + i * Endpoints.MaxSocketAddressSize,
                        NameLength = Endpoints.MaxSocketAddressSize,
                        Iov = rx.Iov + i,
                        IovLength = 1,
                        Control = _gro ? rx.Control + i * LibcMsg.CmsgU16Space : null,
                        ControlLength = _gro ? (nuint)LibcMsg.CmsgIntSpace : 0,
                    },
                };
                batch.SegmentSizes[i] = 0;
            }
            while (!_closed)
            {
                // Blocks for the first datagram, then takes what is queued without waiting.
                int n = LibcMsg.RecvMMsg(fd, rx.Messages, (uint)capacity, LibcMsg.MSG_WAITFORONE, null);
                if (_closed)
                    return 0; // a shutdown wakes the call with one empty "datagram"
                if (n > 0)
                {
                    for (int i = 0; i < n; i++)
                    {
                        batch.Lengths[i] = (int)rx.Messages[i].Length;
                        batch.SegmentSizes[i] = _gro ? GroSegmentSize(rx.Messages[i].Header, batch.Lengths[i]) : 0;
                        int nameLength = (int)Math.Min(rx.Messages[i].Header.NameLength, (uint)Endpoints.MaxSocketAddressSize);
                        SocketAddress address = addresses[i];
                        if (address.Buffer.Length < nameLength)
                            addresses[i] = address = new SocketAddress(_socket.AddressFamily, Endpoints.MaxSocketAddressSize);
                        new ReadOnlySpan<byte>(rx.Names + i * Endpoints.MaxSocketAddressSize, nameLength).CopyTo(address.Buffer.Span);
                        address.Size = nameLength;
                    }
                    return n;
                }
                if (n == 0 || _closed)
                    return 0;
                // EINTR, or an ICMP error reported for an earlier send (ECONNREFUSED): not fatal.
                int errno = Marshal.GetLastPInvokeError();
                if (errno is not (EINTR or 111 /* ECONNREFUSED */ or 113 /* EHOSTUNREACH */ or 101 /* ENETUNREACH */))
                    return 0;
            }
            return 0;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
        finally
        {
            if (added)
                _socket.SafeHandle.DangerousRelease();
        }
    }

    public int SendBatch(ReadOnlySpan<OutgoingDatagram> datagrams)
    {
        if (datagrams.Length == 0)
            return 0;
        if (datagrams.Length == 1)
            return Send(datagrams[0].Buffer.AsSpan(0, datagrams[0].Length), datagrams[0].Destination) ? 0 : 1;
        if (_closed)
            return datagrams.Length;
        lock (_txSync)
        {
            NativeBuffers tx = _tx is { } existing && existing.Capacity >= datagrams.Length ? existing : (_tx = Replace(_tx, datagrams.Length));
            if (_txGroups.Length < datagrams.Length + 1)
                _txGroups = new int[datagrams.Length + 1];

            // Group runs to one destination where every datagram but the last has the first one's size (GSO's rule).
            int messages = 0;
            int i = 0;
            while (i < datagrams.Length)
            {
                int start = i;
                int segment = datagrams[i].Length;
                int total = segment;
                i++;
                if (_gso)
                {
                    while (i < datagrams.Length && i - start < MaxGsoSegments && datagrams[i - 1].Length == segment &&
                           datagrams[i].Length <= segment && total + datagrams[i].Length <= MaxGsoBytes &&
                           datagrams[i].Destination.Equals(datagrams[start].Destination))
                    {
                        total += datagrams[i].Length;
                        i++;
                    }
                }
                SocketAddress destination = datagrams[start].Destination;
                byte* name = tx.Names + messages * Endpoints.MaxSocketAddressSize;
                int nameLength = Math.Min(destination.Size, Endpoints.MaxSocketAddressSize);
                destination.Buffer.Span[..nameLength].CopyTo(new Span<byte>(name, nameLength));
                for (int k = start; k < i; k++)
                    tx.Iov[k] = new LibcMsg.IoVec { Base = Pointer(datagrams[k].Buffer), Length = (nuint)datagrams[k].Length };
                var header = new LibcMsg.MsgHdr { Name = name, NameLength = (uint)nameLength, Iov = tx.Iov + start, IovLength = (nuint)(i - start) };
                if (i - start > 1)
                {
                    byte* control = tx.Control + messages * LibcMsg.CmsgU16Space;
                    new Span<byte>(control, LibcMsg.CmsgU16Space).Clear();
                    *(nuint*)control = LibcMsg.CmsgHeaderSize + sizeof(ushort);
                    *(int*)(control + 8) = LibcMsg.SOL_UDP;
                    *(int*)(control + 12) = LibcMsg.UDP_SEGMENT;
                    *(ushort*)(control + LibcMsg.CmsgHeaderSize) = (ushort)segment;
                    header.Control = control;
                    header.ControlLength = LibcMsg.CmsgU16Space;
                }
                tx.Messages[messages] = new LibcMsg.MMsgHdr { Header = header };
                _txGroups[messages] = start;
                messages++;
            }
            _txGroups[messages] = datagrams.Length;

            int failed = 0;
            bool added = false;
            try
            {
                _socket.SafeHandle.DangerousAddRef(ref added);
                int fd = (int)_socket.SafeHandle.DangerousGetHandle();
                int sent = 0;
                while (sent < messages)
                {
                    int r = LibcMsg.SendMMsg(fd, tx.Messages + sent, (uint)(messages - sent), 0);
                    if (r > 0)
                    {
                        sent += r;
                        continue;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR)
                        continue;
                    bool wasGso = tx.Messages[sent].Header.IovLength > 1;
                    if (wasGso && errno != EAGAIN)
                    {
                        // This GSO send was refused: its datagrams go one by one, this time only (one odd
                        // destination or packet must not cost every peer its offload). Only EIO, the driver's
                        // lack of checksum offload, is a property of the device: then GSO stays off (as wireguard-go).
                        if (errno == EIO)
                            _gso = false;
                        Interlocked.Increment(ref _gsoFallbacks);
                        for (int k = _txGroups[sent]; k < _txGroups[sent + 1]; k++)
                            if (!Send(datagrams[k].Buffer.AsSpan(0, datagrams[k].Length), datagrams[k].Destination))
                                failed++;
                        sent++;
                        continue;
                    }
                    failed += _txGroups[sent + 1] - _txGroups[sent];
                    sent++;
                }
            }
            catch (ObjectDisposedException)
            {
                return datagrams.Length;
            }
            finally
            {
                if (added)
                    _socket.SafeHandle.DangerousRelease();
            }
            return failed;
        }
    }

    // The UDP_GRO control message carries the size of the coalesced datagrams; absent or not smaller: one datagram.
    private static int GroSegmentSize(in LibcMsg.MsgHdr header, int length)
    {
        if (header.Control is null || header.ControlLength < LibcMsg.CmsgHeaderSize + sizeof(int))
            return 0;
        byte* c = header.Control;
        nuint cmsgLength = *(nuint*)c;
        if (cmsgLength < LibcMsg.CmsgHeaderSize + sizeof(int) || *(int*)(c + 8) != LibcMsg.SOL_UDP || *(int*)(c + 12) != LibcMsg.UDP_GRO)
            return 0;
        int segment = *(int*)(c + LibcMsg.CmsgHeaderSize);
        return segment > 0 && segment < length ? segment : 0;
    }

    /// <summary>True while sends use UDP GSO (it switches off for good only if the driver lacks checksum offload, EIO).</summary>
    public bool UsesGso => _gso;

    /// <summary>GSO sends the system refused, whose datagrams then went one by one.</summary>
    public long GsoFallbacks => Interlocked.Read(ref _gsoFallbacks);

    private long _gsoFallbacks;

    private static byte* Pointer(byte[] pinnedArray) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinnedArray));

    private static NativeBuffers Replace(NativeBuffers? old, int capacity)
    {
        old?.Dispose();
        return new NativeBuffers(capacity);
    }

    /// <summary>Unmanaged message headers, iovecs, address and control space for one batch of a given capacity.</summary>
    private sealed class NativeBuffers : IDisposable
    {
        public NativeBuffers(int capacity)
        {
            Capacity = capacity;
            Messages = (LibcMsg.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(LibcMsg.MMsgHdr)));
            Iov = (LibcMsg.IoVec*)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(LibcMsg.IoVec)));
            Names = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * Endpoints.MaxSocketAddressSize));
            Control = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * LibcMsg.CmsgU16Space));
        }

        public int Capacity { get; }
        public LibcMsg.MMsgHdr* Messages { get; }
        public LibcMsg.IoVec* Iov { get; }
        public byte* Names { get; }
        public byte* Control { get; }

        public void Dispose()
        {
            NativeMemory.Free(Messages);
            NativeMemory.Free(Iov);
            NativeMemory.Free(Names);
            NativeMemory.Free(Control);
        }
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
        // The native buffers are freed only once no receive or send can be using them: the receive thread
        // leaves Receive when the socket closes; sends hold _txSync. A leak of a few KiB per bind is the
        // fallback if a receive is still inside (it never touches them after returning).
        if (Interlocked.Exchange(ref _disposedNative, 1) == 0)
        {
            lock (_txSync)
            {
                _tx?.Dispose();
                _tx = null;
            }
        }
    }
}
