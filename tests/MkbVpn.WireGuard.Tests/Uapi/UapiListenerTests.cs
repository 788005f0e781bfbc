using System.Net;
using System.Net.Sockets;
using System.Text;
using MkbVpn.WireGuard.Tun;
using MkbVpn.WireGuard.Uapi;
using MkbVpn.WireGuard.Udp;

namespace MkbVpn.WireGuard.Tests.Uapi;

public sealed class UapiListenerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mkb-uapi-test-").FullName;
    private readonly ChannelNetwork _network = new();

    private MkbVpn.WireGuard.Device.Device NewDevice()
    {
        var device = new MkbVpn.WireGuard.Device.Device(new ChannelTun(), port => _network.Open(IPAddress.Parse("198.18.0.1"), port));
        device.Start();
        return device;
    }

    private static string Exchange(string path, string request)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.ReceiveTimeout = 5000;
        s.Connect(new UnixDomainSocketEndPoint(path));
        s.Send(Encoding.UTF8.GetBytes(request));
        var reply = new StringBuilder();
        var buffer = new byte[4096];
        while (!reply.ToString().EndsWith("\n\n", StringComparison.Ordinal))
        {
            int n = s.Receive(buffer);
            if (n == 0)
                break;
            reply.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return reply.ToString();
    }

    [Fact]
    public void Serves_the_protocol_on_a_private_socket_and_reports_its_removal()
    {
        using var device = NewDevice();
        using var listener = UapiListener.Start(device, "wgtest0", _dir);
        Assert.Equal(Path.Combine(_dir, "wgtest0.sock"), listener.Path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(listener.Path));
        Assert.Equal("errno=0\n\n", Exchange(listener.Path, "set=1\nlisten_port=51990\n\n"));
        Assert.Contains("listen_port=51990\n", Exchange(listener.Path, "get=1\n\n"));

        Assert.False(listener.Removed.IsCancellationRequested);
        File.Delete(listener.Path);
        Assert.True(listener.Removed.WaitHandle.WaitOne(TimeSpan.FromSeconds(5)), "removal of the socket file was not noticed");
    }

    [Fact]
    public void A_live_socket_is_refused_and_a_stale_one_replaced()
    {
        using var device = NewDevice();
        using (var first = UapiListener.Start(device, "wgtest1", _dir))
        {
            var e = Assert.Throws<IOException>(() => UapiListener.Start(device, "wgtest1", _dir));
            Assert.Contains("in use", e.Message);
        }
        Assert.False(File.Exists(Path.Combine(_dir, "wgtest1.sock")), "Dispose left the socket file");

        // A socket file nobody listens on (an engine that died) is replaced.
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            dead.Bind(new UnixDomainSocketEndPoint(Path.Combine(_dir, "wgtest1.sock")));
        using var second = UapiListener.Start(device, "wgtest1", _dir);
        Assert.Equal("errno=0\n\n", Exchange(second.Path, "set=1\n\n"));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "umask")]
    private static extern uint Umask(uint mask);

    [Fact]
    public void The_socket_is_private_even_when_the_process_umask_is_open()
    {
        using var device = NewDevice();
        uint old = Umask(0);
        UapiListener listener;
        try
        {
            listener = UapiListener.Start(device, "wgtest2", _dir);
        }
        finally
        {
            Umask(old);
        }
        using (listener)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(listener.Path));
            Assert.Equal([listener.Path], Directory.GetFileSystemEntries(_dir)); // no staging directory left behind
            Assert.Equal("errno=0\n\n", Exchange(listener.Path, "set=1\n\n"));
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
