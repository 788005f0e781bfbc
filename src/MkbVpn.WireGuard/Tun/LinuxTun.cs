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
    private volatile bool _closed;
    private bool _disposed;

    private LinuxTun(int fd, int wake, string name)
    {
        _fd = fd;
        _wake = wake;
        Name = name;
    }

    public string Name { get; }
    public bool IsClosed => _closed;

    public int Mtu => GetMtu(Name);

    /// <summary>Creates (or attaches to) the TUN interface <paramref name="name"/> and sets its MTU.</summary>
    public static LinuxTun Create(string name, int mtu = DefaultMtu)
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
        *(short*)(ifr + Libc.IFNAMSIZ) = Libc.IFF_TUN | Libc.IFF_NO_PI;
        if (Libc.Ioctl(fd, Libc.TUNSETIFF, ifr) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.Close(fd);
            throw new IOException($"cannot create TUN interface {name}: {Libc.ErrorText(errno)}");
        }
        string actual = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(ifr, Libc.IFNAMSIZ)).TrimEnd('\0');
        int wake = Libc.EventFd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
        if (wake < 0)
        {
            Libc.Close(fd);
            throw new IOException("cannot create an eventfd");
        }
        var tun = new LinuxTun(fd, wake, actual);
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
            int count = 0;
            while (!_closed)
            {
                byte[] buffer = batch.Buffers[count];
                nint n;
                fixed (byte* p = buffer)
                    n = Libc.Read(_fd, p + PacketBatch.Headroom, (nuint)(buffer.Length - PacketBatch.Headroom));
                if (n > 0)
                {
                    batch.Lengths[count++] = (int)n;
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
                return Libc.Write(_fd, p, (nuint)packet.Length) == packet.Length;
        }
    }

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
