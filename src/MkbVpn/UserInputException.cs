namespace MkbVpn;

/// <summary>
/// A problem the user can fix: bad input, unknown client, full pool, missing prerequisite.
/// The message is one line, shown as is; it never contains secrets.
/// </summary>
public class UserInputException(string message, int exitCode = ExitCodes.UserError) : Exception(OneLine(message))
{
    public int ExitCode { get; } = exitCode;

    /// <summary>User input quoted in a message: at most <paramref name="max"/> characters, control characters as '?'.</summary>
    public static string Shown(string? text, int max = 60)
    {
        text ??= "";
        var chars = text.Take(max).Select(c => char.IsControl(c) ? '?' : c).ToArray();
        return new string(chars) + (text.Length > max ? "…" : "");
    }

    /// <summary>Messages quote user input; control characters in it must not break the one-line rule or a terminal.</summary>
    private static string OneLine(string message) =>
        string.Create(message.Length, message, (span, m) =>
        {
            for (int i = 0; i < m.Length; i++)
                span[i] = char.IsControl(m[i]) ? '?' : m[i];
        });
}

/// <summary>Process exit codes shared by the CLI and the mkb-stack scripts.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Something failed while applying (system command, live interface).</summary>
    public const int Failure = 1;
    /// <summary>Invalid usage or input; nothing was changed.</summary>
    public const int UserError = 2;
    /// <summary>Named client does not exist.</summary>
    public const int NotFound = 3;
    /// <summary>Name already taken.</summary>
    public const int Conflict = 4;
    /// <summary>Server not initialised (run mkb-vpn init).</summary>
    public const int NotInitialised = 5;
    /// <summary>Must run as root.</summary>
    public const int NeedsRoot = 6;
    /// <summary>A required tool (wg, wireguard-go, ip, nft) is missing.</summary>
    public const int MissingTool = 7;
    /// <summary>The database is locked or corrupt.</summary>
    public const int Database = 8;
    /// <summary>The address pool is exhausted.</summary>
    public const int PoolFull = 9;
    /// <summary>'access check': the client may not reach the destination (or only partly).</summary>
    public const int Denied = 10;
}

/// <summary>
/// Bad input in one named field of a request ("expires", "group", "port", ...). The service
/// names its own fields; the CLI shows them as its flags, the API as its JSON members.
/// The message starts with "FIELD: ".
/// </summary>
public sealed class FieldException(string field, string message, int exitCode = ExitCodes.UserError) : UserInputException(message, exitCode)
{
    public string Field { get; } = field;
}

/// <summary>
/// Another mkb-vpn command held the data directory's lock for longer than the caller would wait.
/// Nothing was attempted, so nothing is recorded in the audit log; the web server answers 503.
/// </summary>
public sealed class LockBusyException() : UserInputException("another mkb-vpn command is still running (lock held); try again", ExitCodes.Database);
