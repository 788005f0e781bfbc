namespace MkbVpn.Audit;

/// <summary>Who acts: a person (the Unix user behind sudo, an admin, a token) or the service itself, and through what.</summary>
public sealed record Actor(string Name, string Via)
{
    public const string Cli = "cli";
    public const string Script = "script";
    public const string Api = "api";
    public const string Page = "page";
    public const string ServiceVia = "service";

    /// <summary>The service acting on its own (expiry, restore of a lost interface).</summary>
    public static readonly Actor System = new("system", ServiceVia);

    /// <summary>
    /// The person at the command line: the user who ran sudo (SUDO_USER) when there is one, else the
    /// process's user. The mkb-stack scripts set MKB_VPN_VIA=script so the log says they did it.
    /// </summary>
    public static Actor FromEnvironment()
    {
        string name = Environment.GetEnvironmentVariable("SUDO_USER") is { Length: > 0 } sudo ? sudo : Environment.UserName;
        string via = Environment.GetEnvironmentVariable("MKB_VPN_VIA") == Script ? Script : Cli;
        return new Actor(Clean(name), via);
    }

    private static string Clean(string s) => new([.. s.Take(64).Select(c => char.IsControl(c) ? '?' : c)]);
}

/// <summary>One line of the audit log. Never a key, a password or a token.</summary>
public sealed record AuditEntry(
    long Id,
    DateTimeOffset At,
    string Actor,
    string Via,
    string Action,
    string? Target,
    string? Client,
    string? Detail,
    string Outcome)
{
    public const string Ok = "ok";
}
