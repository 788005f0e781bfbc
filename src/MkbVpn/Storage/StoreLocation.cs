using System.Globalization;
using Npgsql;

namespace MkbVpn.Storage;

/// <summary>
/// A PostgreSQL store as the admin names it (<c>--store</c> / <c>$MKB_VPN_STORE</c>): a libpq
/// connection URI (<c>postgresql://mkbvpn@db.example.com/mkbvpn?sslmode=verify-full</c>) or
/// key=value words (<c>host=db.example.com dbname=mkbvpn user=mkbvpn</c>, or Npgsql's
/// <c>Host=...;Database=...</c>). Never a password: that comes from a passfile (<c>passfile=</c>,
/// <c>$PGPASSFILE</c>, <c>~/.pgpass</c>) or <c>$PGPASSWORD</c>, which Npgsql reads itself, so it is
/// not on a command line, in a unit file or in any message.
/// </summary>
public sealed class StoreLocation
{
    public const string Variable = "MKB_VPN_STORE";

    private StoreLocation(string given, string connectionString, string shown)
    {
        Given = given;
        ConnectionString = connectionString;
        Shown = shown;
    }

    /// <summary>The location as the admin wrote it (it holds no password: <see cref="Parse"/> refuses one).</summary>
    public string Given { get; }

    /// <summary>For Npgsql; holds no password.</summary>
    internal string ConnectionString { get; }

    /// <summary>The location for messages: <c>postgresql://user@host:port/database</c>, no password, no options.</summary>
    public string Shown { get; }

    public override string ToString() => Shown;

    /// <summary>libpq's names (URI query and key=value words) and Npgsql's for them.</summary>
    private static readonly Dictionary<string, string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        ["host"] = "Host", ["hostaddr"] = "Host", ["port"] = "Port", ["dbname"] = "Database", ["user"] = "Username",
        ["passfile"] = "Passfile", ["sslmode"] = "SSL Mode", ["sslrootcert"] = "Root Certificate",
        ["sslcert"] = "SSL Certificate", ["sslkey"] = "SSL Key", ["connect_timeout"] = "Timeout",
        ["application_name"] = "Application Name", ["target_session_attrs"] = "Target Session Attributes",
    };

    private static readonly Dictionary<string, string> SslModes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["disable"] = "Disable", ["allow"] = "Allow", ["prefer"] = "Prefer", ["require"] = "Require",
        ["verify-ca"] = "VerifyCA", ["verify-full"] = "VerifyFull",
    };

    /// <summary>Parses a store location; one line (exit 2) for anything it refuses, a password above all.</summary>
    public static StoreLocation Parse(string value)
    {
        var b = new NpgsqlConnectionStringBuilder();
        try
        {
            if (value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
                ParseUri(value, b);
            else if (value.Contains(';'))
                ParseNpgsql(value, b);
            else if (value.Contains('='))
                ParseWords(value, b);
            else
                throw Refuse("expected a PostgreSQL connection URI (postgresql://USER@HOST/DATABASE) or key=value words (host=HOST dbname=DATABASE user=USER)");
        }
        catch (ArgumentException e)
        {
            // Npgsql's own words for a bad keyword or value; never the value itself.
            throw Refuse(e.Message.Split('\n')[0].Split(" (Parameter")[0]);
        }
        if (string.IsNullOrEmpty(b.Host))
            b.Host = Environment.GetEnvironmentVariable("PGHOST") is { Length: > 0 } h ? h : "localhost";
        if (string.IsNullOrEmpty(b.Database) && Environment.GetEnvironmentVariable("PGDATABASE") is { Length: > 0 } d)
            b.Database = d;
        if (string.IsNullOrEmpty(b.Username) && Environment.GetEnvironmentVariable("PGUSER") is { Length: > 0 } u)
            b.Username = u;
        if (string.IsNullOrEmpty(b.Database))
            throw Refuse("name the database (postgresql://USER@HOST/DATABASE, dbname=DATABASE or $PGDATABASE)");
        if (string.IsNullOrEmpty(b.ApplicationName))
            b.ApplicationName = "mkb-vpn";
        string shown = $"postgresql://{(string.IsNullOrEmpty(b.Username) ? "" : b.Username + "@")}{(b.Host!.Contains(':') && !b.Host.Contains(',') ? "[" + b.Host + "]" : b.Host)}:{b.Port.ToString(CultureInfo.InvariantCulture)}/{b.Database}";
        return new StoreLocation(value, b.ConnectionString, shown);
    }

    private static UserInputException Refuse(string why) => new($"--store: {why}", ExitCodes.UserError);

    private static UserInputException PasswordRefused() =>
        Refuse("a password must not be part of the store location (it would show in ps, shell history and unit files); put it in a passfile (passfile=/etc/mkb-vpn/pgpass, mode 0600), ~/.pgpass or $PGPASSWORD");

    private static void Set(NpgsqlConnectionStringBuilder b, string key, string value)
    {
        if (key.Equals("password", StringComparison.OrdinalIgnoreCase))
            throw PasswordRefused();
        if (!Keywords.TryGetValue(key, out var npgsql))
            throw Refuse($"'{key}' is not a setting mkb-vpn passes on (known: {string.Join(", ", Keywords.Keys)})");
        if (npgsql == "SSL Mode")
            value = SslModes.TryGetValue(value, out var mode) ? mode : throw Refuse($"sslmode '{value}' is not one of {string.Join(", ", SslModes.Keys)}");
        b[npgsql] = value;
    }

    private static void ParseUri(string value, NpgsqlConnectionStringBuilder b)
    {
        string rest = value[(value.IndexOf("://", StringComparison.Ordinal) + 3)..];
        string query = "";
        int q = rest.IndexOf('?');
        if (q >= 0)
            (rest, query) = (rest[..q], rest[(q + 1)..]);
        int slash = rest.IndexOf('/');
        string authority = slash >= 0 ? rest[..slash] : rest;
        string database = slash >= 0 ? rest[(slash + 1)..] : "";
        int at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            string user = authority[..at];
            if (user.Contains(':'))
                throw PasswordRefused();
            if (user.Length > 0)
                b.Username = Uri.UnescapeDataString(user);
            authority = authority[(at + 1)..];
        }
        if (authority.Length > 0)
        {
            // host, host:port, [v6]:port, or several of them separated by commas (libpq's failover list).
            var hosts = new List<string>();
            string? port = null;
            foreach (var part in authority.Split(','))
            {
                string host = part, p = "";
                if (part.StartsWith('['))
                {
                    int close = part.IndexOf(']');
                    if (close < 0)
                        throw Refuse("an IPv6 host in the URI needs its closing ']'");
                    host = part[1..close];
                    p = part[(close + 1)..].TrimStart(':');
                }
                else if (part.LastIndexOf(':') is int colon and >= 0)
                    (host, p) = (part[..colon], part[(colon + 1)..]);
                hosts.Add(Uri.UnescapeDataString(host));
                if (p.Length > 0)
                    port = p;
            }
            b.Host = string.Join(',', hosts.Where(h => h.Length > 0));
            if (port is not null)
                b.Port = int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is > 0 and < 65536 ? n : throw Refuse($"port '{port}' is not a port number");
        }
        if (database.Length > 0)
            b.Database = Uri.UnescapeDataString(database);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0)
                throw Refuse($"'{pair}' in the URI's query is not key=value");
            Set(b, Uri.UnescapeDataString(pair[..eq]), Uri.UnescapeDataString(pair[(eq + 1)..]));
        }
    }

    /// <summary>libpq's key=value words, separated by blanks (values with blanks in single quotes).</summary>
    private static void ParseWords(string value, NpgsqlConnectionStringBuilder b)
    {
        int i = 0;
        while (true)
        {
            while (i < value.Length && char.IsWhiteSpace(value[i]))
                i++;
            if (i >= value.Length)
                return;
            int eq = value.IndexOf('=', i);
            if (eq < 0)
                throw Refuse($"'{value[i..].Split(' ')[0]}' is not key=value");
            string key = value[i..eq].Trim();
            i = eq + 1;
            while (i < value.Length && value[i] == ' ')
                i++;
            var v = new System.Text.StringBuilder();
            if (i < value.Length && value[i] == '\'')
            {
                i++;
                while (i < value.Length && value[i] != '\'')
                {
                    if (value[i] == '\\' && i + 1 < value.Length)
                        i++;
                    v.Append(value[i++]);
                }
                if (i >= value.Length)
                    throw Refuse($"the value of '{key}' lacks its closing quote");
                i++;
            }
            else
            {
                while (i < value.Length && !char.IsWhiteSpace(value[i]))
                    v.Append(value[i++]);
            }
            Set(b, key, v.ToString());
        }
    }

    /// <summary>Npgsql's own form (Host=...;Database=...;Username=...).</summary>
    private static void ParseNpgsql(string value, NpgsqlConnectionStringBuilder b)
    {
        var given = new NpgsqlConnectionStringBuilder(value);
        if (given.Password is not null)
            throw PasswordRefused();
        b.ConnectionString = given.ConnectionString;
    }
}
