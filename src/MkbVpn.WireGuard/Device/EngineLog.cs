using System.Globalization;

namespace MkbVpn.WireGuard.Device;

/// <summary>
/// The engine's log: one line per event to a writer (stderr for <c>mkb-vpn engine</c>), with a level and a
/// stable event name. Messages name peers by their local number ("peer 3"), never by key: no key,
/// public or secret, is ever written here.
/// </summary>
internal sealed class EngineLog
{
    private TextWriter? _output;
    private readonly Lock _sync = new();

    public EngineLog(TextWriter? output, bool verbose = false)
    {
        _output = output;
        Verbose = verbose;
    }

    public static EngineLog None { get; } = new(null);

    public bool Verbose { get; }

    /// <summary>Stops writing (a daemon whose stderr is gone).</summary>
    public void Detach()
    {
        lock (_sync)
            _output = null;
    }

    public void Info(string eventName, string message) => Write("INFO", eventName, message);

    public void Error(string eventName, string message) => Write("ERROR", eventName, message);

    public void Debug(string eventName, string message)
    {
        if (Verbose)
            Write("DEBUG", eventName, message);
    }

    private void Write(string level, string eventName, string message)
    {
        if (_output is null)
            return;
        string line = string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {eventName}: {message}");
        lock (_sync)
        {
            try
            {
                _output.WriteLine(line);
                _output.Flush();
            }
            catch (IOException)
            {
                // stderr gone (detached): logging must never stop the engine
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}
