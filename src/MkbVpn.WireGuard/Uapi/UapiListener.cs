using System.Net.Sockets;
using System.Text;
using MkbVpn.WireGuard.Device;

namespace MkbVpn.WireGuard.Uapi;

/// <summary>
/// The UAPI unix socket, <c>/var/run/wireguard/IFACE.sock</c>, as wireguard-go makes it: the directory
/// 0755, the socket 0700 (root only: get returns the private key), a stale socket replaced, a live one
/// refused ("unix socket in use"). Each connection is served on its own thread. Removing the socket file
/// is a request to stop: <see cref="Removed"/> is cancelled (checked every <see cref="WatchInterval"/>).
/// </summary>
internal sealed class UapiListener : IDisposable
{
    public const string DefaultDirectory = "/var/run/wireguard";
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(250);

    private readonly MkbVpn.WireGuard.Device.Device _device;
    private readonly EngineLog _log;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _removed = new();
    private readonly Thread _acceptThread;
    private readonly Timer _watch;
    private volatile bool _disposed;

    private UapiListener(MkbVpn.WireGuard.Device.Device device, string path, Socket socket, EngineLog log)
    {
        _device = device;
        Path = path;
        _socket = socket;
        _log = log;
        _acceptThread = new Thread(AcceptLoop) { Name = "wg-uapi", IsBackground = true };
        _watch = new Timer(_ => Watch(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public string Path { get; }

    /// <summary>Cancelled when the socket file disappears (or is replaced by something else).</summary>
    public CancellationToken Removed => _removed.Token;

    public static string SocketPath(string interfaceName, string directory = DefaultDirectory) =>
        System.IO.Path.Combine(directory, interfaceName + ".sock");

    /// <summary>Creates the socket and starts accepting. Throws <see cref="IOException"/> if another engine owns it.</summary>
    public static UapiListener Start(MkbVpn.WireGuard.Device.Device device, string interfaceName, string directory = DefaultDirectory, EngineLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = SocketPath(interfaceName, directory);
        if (File.Exists(path) && IsAnswering(path))
            throw new IOException($"unix socket in use: {path}");
        Socket socket = BindPrivately(path);
        var listener = new UapiListener(device, path, socket, log ?? EngineLog.None);
        listener._acceptThread.Start();
        listener._watch.Change(WatchInterval, WatchInterval);
        return listener;
    }

    // Safe by itself, whatever the process umask: the socket is bound inside a fresh directory that only root
    // can enter (0700), made 0700 there, and only then renamed into place (replacing a stale socket
    // atomically). At no moment can another user connect to it, so no key leaks through a get.
    private static Socket BindPrivately(string path)
    {
        const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        string directory = System.IO.Path.GetDirectoryName(path)!;
        string staging = System.IO.Path.Combine(directory, "." + System.IO.Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(staging, OwnerOnly);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            string stagedPath = System.IO.Path.Combine(staging, "s");
            socket.Bind(new UnixDomainSocketEndPoint(stagedPath));
            File.SetUnixFileMode(stagedPath, OwnerOnly);
            socket.Listen(16);
            File.Move(stagedPath, path, overwrite: true);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        finally
        {
            try
            {
                Directory.Delete(staging, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static bool IsAnswering(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Watch()
    {
        if (_disposed || _removed.IsCancellationRequested)
            return;
        if (!File.Exists(Path))
        {
            _log.Info("uapi_socket_removed", $"{Path} was removed");
            _removed.Cancel();
        }
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket client;
            try
            {
                client = _socket.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_disposed)
                    return;
                continue;
            }
            var thread = new Thread(() => ServeClient(client)) { Name = "wg-uapi-client", IsBackground = true };
            thread.Start();
        }
    }

    private void ServeClient(Socket client)
    {
        using (client)
        using (var stream = new NetworkStream(client, ownsSocket: false))
        using (var reader = new StreamReader(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 4096))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false), bufferSize: 64 * 1024) { NewLine = "\n", AutoFlush = false })
        {
            try
            {
                UapiProtocol.Serve(_device, reader, writer, _log);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // the client went away, or sent an overlong line
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _watch.Dispose();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        _socket.Dispose();
        _acceptThread.Join(TimeSpan.FromSeconds(2));
        if (_removed.IsCancellationRequested)
            return; // the path may belong to someone else by now
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
