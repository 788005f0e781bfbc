using System.Runtime.InteropServices;
using System.Text;
using MkbVpn.WireGuard.Interop;

namespace MkbVpn.WireGuard.Tun;

/// <summary>
/// A Linux TUN interface: /dev/net/tun, TUNSETIFF with IFF_TUN | IFF_NO_PI, the descriptor non-blocking
/// and waited on with poll(2) together with an eventfd that <see cref="Dispose"/> signals. The interface
/// exists while the descriptor is open (not persistent), so closing it removes the interface. Removal of
/// the interface by someone else (<c>ip link del</c>) is noticed by a failing read or by the name
/// vanishing (checked whenever the device is idle for <see cref="IdleCheck"/>).
/// <para>
/// With offloads (the default), the interface is opened with IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO
/// for IPv4 and IPv6): the system's TCP sends us segments of up to 64 KiB, which <see cref="Offload"/> cuts
/// into MTU-sized, checksummed packets here, so the TCP stack runs once per 64 KiB instead of once per packet.
/// Every read and write then carries a 10-byte virtio_net_hdr (ours are all zero: plain packets).
/// </para>
/// </summary>
internal sealed unsafe class LinuxTun : ITun
{
    /// <summary>wireguard-go's DefaultMTU: 1500 minus the IPv6 + UDP + WireGuard overhead.</summary>
    public const int DefaultMtu = 1420;
    private const int IdleCheck = 500;

    private readonly int _fd;
    private readonly int _wake;
    private readonly Lock _readLock = new();
    private readonly Lock _writeLock = new();
    private readonly bool _vnet;
    private volatile bool _closed;
    private bool _disposed;

    // A TCP super packet being cut into segments across Read calls (when a batch fills up first).
    private byte[] _super = GC.AllocateUninitializedArray<byte>(PacketBatch.BufferSize, pinned: true);
    private int _superLength;
    private int _superHeaders;
    private bool _superIsV6;
    private int _superGso;
    private int _superNext;
    private int _superCount;

    private LinuxTun(int fd, int wake, string name, bool vnet)
    {
        _fd = fd;
        _wake = wake;
        Name = name;
        _vnet = vnet;
    }

    /// <summary>True when the interface runs with TSO / checksum offload (IFF_VNET_HDR).</summary>
    public bool Offloads => _vnet;

    public string Name { get; }
    public bool IsClosed => _closed;

    public int Mtu => GetMtu(Name);

    /// <summary>Creates (or attaches to) the TUN interface <paramref name="name"/> and sets its MTU.</summary>
    public static LinuxTun Create(string name, int mtu = DefaultMtu, bool offloads = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) >= Libc.IFNAMSIZ)
            throw new ArgumentException($"interface name longer than {Libc.IFNAMSIZ - 1} bytes", nameof(name));
        int fd = Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
            throw new IOException($"cannot open /dev/net/tun: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        byte* ifr = stackalloc byte[Libc.IfreqSize];
        new Span<byte>(ifr, Libc.IfreqSize).Clear();
        Encoding.UTF8.GetBytes(name, new Span<byte>(ifr, Libc.IFNAMSIZ - 1));
        *(short*)(ifr + Libc.IFNAMSIZ) = (short)(Libc.IFF_TUN | Libc.IFF_NO_PI | (offloads ? Libc.IFF_VNET_HDR : 0));
        if (Libc.Ioctl(fd, Libc.TUNSETIFF, ifr) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.Close(fd);
            throw new IOException($"cannot create TUN interface {name}: {Libc.ErrorText(errno)}");
        }
        string actual = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(ifr, Libc.IFNAMSIZ)).TrimEnd('\0');
        // The offload flags are the ioctl's argument itself. Without them the header stays, with no offload in it.
        bool tso = offloads && Libc.Ioctl(fd, Libc.TUNSETOFFLOAD, (byte*)(nint)(Libc.TUN_F_CSUM | Libc.TUN_F_TSO4 | Libc.TUN_F_TSO6)) == 0;
        int wake = Libc.EventFd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
        if (wake < 0)
        {
            Libc.Close(fd);
            throw new IOException("cannot create an eventfd");
        }
        var tun = new LinuxTun(fd, wake, actual, offloads) { _gro = tso };
        try
        {
            SetMtu(actual, mtu);
        }
        catch
        {
            tun.Dispose();
            throw;
        }
        return tun;
    }

    public int Read(PacketBatch batch)
    {
        lock (_readLock)
        {
            int count = TakeSegments(batch, 0);
            if (count == batch.Capacity)
                return count;
            // With the virtio header, read so that the packet itself starts at Headroom.
            int start = _vnet ? PacketBatch.Headroom - Offload.VirtioHeaderSize : PacketBatch.Headroom;
            while (!_closed)
            {
                byte[] buffer = batch.Buffers[count];
                nint n;
                fixed (byte* p = buffer)
                    n = Libc.Read(_fd, p + start, (nuint)(buffer.Length - start));
                if (n > 0)
                {
                    if (!_vnet)
                        batch.Lengths[count++] = (int)n;
                    else
                        count = AcceptOffloaded(batch, count, (int)n);
                    if (count == batch.Capacity)
                        return count;
                    continue;
                }
                int errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (n == 0 || (errno != Libc.EAGAIN && errno != Libc.EINTR))
                {
                    // EBADFD and friends: the interface is gone.
                    _closed = true;
                    return count;
                }
                if (errno == Libc.EINTR)
                    continue;
                if (count > 0)
                    return count;
                if (!WaitReadable())
                    _closed = true;
            }
            return 0;
        }
    }

    // A read with IFF_VNET_HDR sits in batch.Buffers[count] (header at Headroom - 10). Plain packets stay there
    // (checksum finished if asked); a TCP super packet is swapped out and cut into the following slots.
    private int AcceptOffloaded(PacketBatch batch, int count, int n)
    {
        int length = n - Offload.VirtioHeaderSize;
        if (length <= 0)
            return count;
        byte[] buffer = batch.Buffers[count];
        var header = Offload.VirtioHeader.Read(buffer.AsSpan(PacketBatch.Headroom - Offload.VirtioHeaderSize, Offload.VirtioHeaderSize));
        Span<byte> packet = buffer.AsSpan(PacketBatch.Headroom, length);
        byte gso = (byte)(header.GsoType & ~Offload.GsoEcn);
        if (gso == Offload.GsoNone)
        {
            if ((header.Flags & Offload.FlagNeedsChecksum) != 0 && !Offload.FinishChecksum(packet, header.ChecksumStart, header.ChecksumOffset))
                return count; // inconsistent offsets from the kernel: drop
            batch.Lengths[count] = length;
            return count + 1;
        }
        if (gso is not (Offload.GsoTcpV4 or Offload.GsoTcpV6) || header.GsoSize <= 0)
            return count;
        int headers = Offload.TcpHeadersLength(packet, out bool isV6);
        if (headers < 0)
            return count;
        // Swap the buffer with our spare (both pinned, same size): the slot gets a free buffer, no copy.
        batch.Buffers[count] = _super;
        _super = buffer;
        _superLength = length;
        _superHeaders = headers;
        _superIsV6 = isV6;
        _superGso = header.GsoSize;
        _superNext = 0;
        _superCount = Offload.SegmentCount(length, headers, header.GsoSize);
        return TakeSegments(batch, count);
    }

    private int TakeSegments(PacketBatch batch, int count)
    {
        while (_superNext < _superCount && count < batch.Capacity)
        {
            ReadOnlySpan<byte> packet = _super.AsSpan(PacketBatch.Headroom, _superLength);
            batch.Lengths[count] = Offload.WriteTcpSegment(packet, _superHeaders, _superIsV6, _superGso, _superNext++,
                batch.Buffers[count].AsSpan(PacketBatch.Headroom));
            count++;
        }
        return count;
    }

    // Returns false when the interface is gone (or the wait failed for good).
    private bool WaitReadable()
    {
        var fds = stackalloc Libc.PollFd[2];
        fds[0] = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        fds[1] = new Libc.PollFd { Fd = _wake, Events = Libc.POLLIN };
        int r = Libc.Poll(fds, 2, IdleCheck);
        if (r < 0)
            return Marshal.GetLastPInvokeError() == Libc.EINTR;
        if (fds[1].Revents != 0 || (fds[0].Revents & (Libc.POLLERR | Libc.POLLHUP | Libc.POLLNVAL)) != 0)
            return false;
        if (r == 0)
            return Libc.IfNameToIndex(Name) != 0;
        return true;
    }

    public bool Write(ReadOnlySpan<byte> packet)
    {
        lock (_writeLock)
        {
            if (_disposed)
                return false;
            fixed (byte* p = packet)
            {
                if (!_vnet)
                    return Libc.Write(_fd, p, (nuint)packet.Length) == packet.Length;
                // An all-zero virtio_net_hdr (no offload asked), then the packet: one writev, no copy.
                byte* zero = stackalloc byte[16];
                new Span<byte>(zero, 16).Clear();
                var iov = stackalloc LibcMsg.IoVec[2];
                iov[0] = new LibcMsg.IoVec { Base = zero, Length = Offload.VirtioHeaderSize };
                iov[1] = new LibcMsg.IoVec { Base = p, Length = (nuint)packet.Length };
                return Libc.WriteV(_fd, iov, 2) == Offload.VirtioHeaderSize + packet.Length;
            }
        }
    }

    private const int MaxCoalesced = 64;
    private volatile bool _gro = true;
    private readonly byte[] _groHeaders = GC.AllocateUninitializedArray<byte>(128, pinned: true);

    /// <summary>
    /// Writes packets in order. With offloads, runs of TCP segments of one flow go down as one GSO write (the
    /// receiving TCP stack then runs once per run, not once per packet), assembled with writev, no copy.
    /// The packets' buffers must be pinned (they come from a <see cref="PacketBatch"/>).
    /// </summary>
    public int Write(ReadOnlySpan<TunPacket> packets)
    {
        int failed = 0;
        if (!_vnet)
        {
            foreach (TunPacket p in packets)
                if (!Write(p.Span))
                    failed++;
            return failed;
        }
        lock (_writeLock)
        {
            if (_disposed)
                return packets.Length;
            byte* zeroHeader = stackalloc byte[16];
            new Span<byte>(zeroHeader, 16).Clear();
            var iov = stackalloc LibcMsg.IoVec[MaxCoalesced + 2];
            fixed (byte* headersCopy = _groHeaders)
            {
                for (int i = 0; i < packets.Length;)
                {
                    ReadOnlySpan<byte> first = packets[i].Span;
                    int end = i + 1;
                    int headers = Offload.TcpHeadersLength(first, out bool isV6);
                    int total = first.Length;
                    if (_gro && headers > 0 && headers <= _groHeaders.Length && first.Length > headers)
                    {
                        int gso = first.Length - headers;
                        while (end < packets.Length && end - i < MaxCoalesced && total + packets[end].Length - headers <= ushort.MaxValue &&
                               Offload.CanCoalesce(packets[end - 1].Span, packets[end].Span, headers, isV6, gso))
                        {
                            total += packets[end].Length - headers;
                            end++;
                        }
                    }

                    int count = end - i;
                    nint expected;
                    int iovCount;
                    if (count == 1)
                    {
                        iov[0] = new LibcMsg.IoVec { Base = zeroHeader, Length = Offload.VirtioHeaderSize };
                        iov[1] = new LibcMsg.IoVec { Base = Pointer(packets[i]), Length = (nuint)first.Length };
                        iovCount = 2;
                        expected = Offload.VirtioHeaderSize + first.Length;
                    }
                    else
                    {
                        first[..headers].CopyTo(_groHeaders);
                        bool push = (packets[end - 1].Span[(isV6 ? 40 : 20) + 13] & 0x08) != 0; // runs have no IPv4 options
                        byte* virtio = zeroHeader; // reused: this write's header
                        Offload.WriteCoalescedHeaders(new Span<byte>(virtio, Offload.VirtioHeaderSize), _groHeaders.AsSpan(0, headers), isV6, total, first.Length - headers, push);
                        iov[0] = new LibcMsg.IoVec { Base = virtio, Length = Offload.VirtioHeaderSize };
                        iov[1] = new LibcMsg.IoVec { Base = headersCopy, Length = (nuint)headers };
                        for (int k = 0; k < count; k++)
                            iov[2 + k] = new LibcMsg.IoVec { Base = Pointer(packets[i + k]) + headers, Length = (nuint)(packets[i + k].Length - headers) };
                        iovCount = 2 + count;
                        expected = Offload.VirtioHeaderSize + total;
                    }
                    if (Libc.WriteV(_fd, iov, iovCount) != expected)
                    {
                        if (count == 1 || Marshal.GetLastPInvokeError() != 22 /* EINVAL */)
                        {
                            failed += count; // e.g. EIO while the link is down: nothing to retry
                        }
                        else
                        {
                            // The system refuses our GSO writes: stop coalescing, write these one by one.
                            _gro = false;
                            for (int k = 0; k < count; k++)
                            {
                                iov[0] = new LibcMsg.IoVec { Base = zeroHeader, Length = Offload.VirtioHeaderSize };
                                new Span<byte>(zeroHeader, 16).Clear();
                                iov[1] = new LibcMsg.IoVec { Base = Pointer(packets[i + k]), Length = (nuint)packets[i + k].Length };
                                if (Libc.WriteV(_fd, iov, 2) != Offload.VirtioHeaderSize + packets[i + k].Length)
                                    failed++;
                            }
                        }
                    }
                    new Span<byte>(zeroHeader, 16).Clear();
                    i = end;
                }
            }
        }
        return failed;
    }

    private static byte* Pointer(TunPacket p) =>
        (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(p.Buffer)) + p.Offset;

    public static int GetMtu(string name)
    {
        byte* ifr = stackalloc byte[Libc.IfreqSize];
        new Span<byte>(ifr, Libc.IfreqSize).Clear();
        Encoding.UTF8.GetBytes(name, new Span<byte>(ifr, Libc.IFNAMSIZ - 1));
        int s = Libc.Socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.O_CLOEXEC, 0);
        if (s < 0)
            return DefaultMtu;
        try
        {
            return Libc.Ioctl(s, Libc.SIOCGIFMTU, ifr) < 0 ? DefaultMtu : *(int*)(ifr + Libc.IFNAMSIZ);
        }
        finally
        {
            Libc.Close(s);
        }
    }

    private static void SetMtu(string name, int mtu)
    {
        byte* ifr = stackalloc byte[Libc.IfreqSize];
        new Span<byte>(ifr, Libc.IfreqSize).Clear();
        Encoding.UTF8.GetBytes(name, new Span<byte>(ifr, Libc.IFNAMSIZ - 1));
        *(int*)(ifr + Libc.IFNAMSIZ) = mtu;
        int s = Libc.Socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.O_CLOEXEC, 0);
        if (s < 0)
            throw new IOException("cannot open a socket to set the MTU");
        try
        {
            if (Libc.Ioctl(s, Libc.SIOCSIFMTU, ifr) < 0)
                throw new IOException($"cannot set the MTU of {name}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        }
        finally
        {
            Libc.Close(s);
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _closed = true;
        ulong one = 1;
        Libc.Write(_wake, (byte*)&one, sizeof(ulong));
        // The reader leaves poll at once; close only when nobody can use the descriptor any more.
        lock (_readLock)
        lock (_writeLock)
        {
            if (_disposed)
                return;
            _disposed = true;
            Libc.Close(_fd);
            Libc.Close(_wake);
        }
    }
}
