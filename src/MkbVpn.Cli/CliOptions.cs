using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using MkbVpn.Clients;
using MkbVpn.Json;

namespace MkbVpn.Cli;

/// <summary>Options shared by the verbs, and the one place that turns failures into exit codes.</summary>
internal static class CliOptions
{
    public static readonly Option<string?> DataDir = new("--data-dir")
    {
        Description = $"Data directory (default: ${Paths.DataDirVariable} or {Paths.DefaultDataDir})",
        Recursive = true,
        HelpName = "DIR",
    };

    public static readonly Option<string?> Store = new("--store")
    {
        Description = $"The registry in PostgreSQL: postgresql://USER@HOST/DATABASE or key=value words, no password (default: ${Storage.StoreLocation.Variable}, else SQLite in the data directory)",
        Recursive = true,
        HelpName = "LOCATION",
    };

    /// <summary>The data directory and the store the command line names.</summary>
    public static Paths PathsOf(ParseResult p) => new(p.GetValue(DataDir), p.GetValue(Store));

    public static Option<bool> Json() => new("--json") { Description = "Print JSON for scripts" };

    public static Argument<string[]> Names(string verb) => new("NAME")
    {
        Description = $"Client name(s) to {verb}",
        Arity = ArgumentArity.OneOrMore,
    };

    public static IEnumerable<string> CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var r = parsed.CommandResult; r is not null && r.Command is not RootCommand; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command.Name);
        return names;
    }

    /// <summary>The service on this host, wired once here: the real interfaces, ip/nft, privileges, lock and clock.</summary>
    public static ClientService Service(ParseResult p) =>
        new(PathsOf(p), ServiceHost.Live()) { LockWait = LockWaitFromEnvironment(), Note = line => Console.Error.WriteLine($"mkb-vpn: note: {line}") };

    /// <summary>$MKB_VPN_LOCK_TIMEOUT (seconds) when set; else the service's default (<see cref="ClientService.LockTimeout"/>).</summary>
    private static TimeSpan? LockWaitFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("MKB_VPN_LOCK_TIMEOUT"), out int s) && s >= 0 ? TimeSpan.FromSeconds(s) : null;

    /// <summary>Runs a verb: one line on stderr and its exit code for anything that goes wrong.</summary>
    public static void SetHandler(this Command command, Func<ParseResult, int> action)
    {
        command.SetAction(p =>
        {
            try
            {
                // --store reaches what builds its own Paths (the web host) through the variable it reads.
                if (p.GetValue(Store) is { Length: > 0 } store)
                    Environment.SetEnvironmentVariable(Storage.StoreLocation.Variable, store);
                return action(p);
            }
            catch (FieldException e)
            {
                Console.Error.WriteLine($"mkb-vpn: error: {AsFlag(e)}");
                return e.ExitCode;
            }
            catch (UserInputException e)
            {
                Console.Error.WriteLine($"mkb-vpn: error: {e.Message}");
                return e.ExitCode;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"mkb-vpn: error: {e.Message}");
                return ExitCodes.Failure;
            }
            catch (UnauthorizedAccessException e)
            {
                Console.Error.WriteLine($"mkb-vpn: error: permission denied ({e.Message}); run as root");
                return ExitCodes.NeedsRoot;
            }
            catch (Exception e) when (Environment.GetEnvironmentVariable("MKB_VPN_DEBUG") is null)
            {
                Console.Error.WriteLine($"mkb-vpn: internal error: {e.GetType().Name}: {e.Message.Split('\n')[0]} (set MKB_VPN_DEBUG=1 for details)");
                return ExitCodes.Failure;
            }
        });
    }

    /// <summary>The service names its fields; on the command line they are flags (or the positional words).</summary>
    private static readonly Dictionary<string, string> FieldFlags = new(StringComparer.Ordinal)
    {
        ["expires"] = "--expires", ["dns"] = "--dns", ["allowed-ips"] = "--allowed-ips", ["keepalive"] = "--keepalive",
        ["group"] = "--group", ["groups"] = "--group", ["rename"] = "--rename", ["port"] = "--port", ["proto"] = "--proto",
        ["description"] = "--description", ["since"] = "--since", ["limit"] = "--limit", ["who"] = "WHO", ["to"] = "TO",
        ["destination"] = "DEST", ["id"] = "ID", ["name"] = "NAME", ["address"] = "--address", ["full-tunnel"] = "--full-tunnel",
        ["subnet"] = "--subnet", ["subnet6"] = "--subnet6", ["internal-network"] = "--internal-network", ["mtu"] = "--mtu",
        ["interface"] = "--interface", ["endpoint"] = "--endpoint", ["gateway"] = "--gateway", ["listen-port"] = "--listen-port",
        ["until"] = "--until", ["step"] = "--step", ["history-minutes"] = "--history-minutes", ["history-hours"] = "--history-hours",
    };

    private static string AsFlag(FieldException e)
    {
        string prefix = e.Field + ": ";
        return FieldFlags.TryGetValue(e.Field, out var flag) && e.Message.StartsWith(prefix, StringComparison.Ordinal)
            ? flag + ": " + e.Message[prefix.Length..]
            : e.Message;
    }

    /// <summary>Prints one of the shared shapes (<see cref="MkbVpnJson"/>, the API's too): generated, no reflection.
    /// Indented, and as the API writes strings: "+" and "->" as they are, not \u002B and -\u003E.</summary>
    public static void WriteJson<T>(T value, JsonTypeInfo<T> shape)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            JsonSerializer.Serialize(writer, value, shape);
        Console.Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    public static string Ago(DateTimeOffset? t, DateTimeOffset now)
    {
        if (t is not { } v)
            return "never";
        var d = now - v;
        if (d < TimeSpan.Zero) d = TimeSpan.Zero;
        return d.TotalSeconds < 60 ? $"{(int)d.TotalSeconds}s ago"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes}m ago"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours}h ago"
            : $"{(int)d.TotalDays}d ago";
    }

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{n / 1024.0 / 1024:0.0} MiB",
        _ => $"{n / 1024.0 / 1024 / 1024:0.00} GiB",
    };

    /// <summary>After a listing that left out client rows which do not parse: one line each on stderr, and the
    /// database exit code (8), so that a script sees the store needs attention while an admin still sees everyone else.</summary>
    public static int ReportDamaged(IReadOnlyList<string>? damaged)
    {
        if (damaged is null || damaged.Count == 0)
            return 0;
        foreach (var line in damaged)
            Console.Error.WriteLine($"mkb-vpn: {line}");
        return ExitCodes.Database;
    }

    /// <summary>Prints rows as aligned columns.</summary>
    public static void Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        // One write for the whole table: Console.Out flushes after every call (10,000 rows: 10,000 system calls).
        var text = new System.Text.StringBuilder();
        foreach (var r in all)
        {
            int start = text.Length;
            for (int i = 0; i < r.Count; i++)
            {
                if (i > 0)
                    text.Append("  ");
                text.Append(r[i]);
                if (i < r.Count - 1)
                    text.Append(' ', widths[i] - r[i].Length);
            }
            int end = text.Length;
            while (end > start && text[end - 1] == ' ')
                end--;
            text.Length = end;
            text.Append(Environment.NewLine);
        }
        Console.Out.Write(text.ToString());
    }
}
