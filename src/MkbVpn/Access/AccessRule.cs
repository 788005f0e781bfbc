using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MkbVpn.Access;

/// <summary>Whom a rule names: every client, the members of a group, or one client.</summary>
public enum SubjectKind
{
    Everyone,
    Group,
    Client,
}

/// <summary>The transport protocol a rule allows.</summary>
public enum Protocol
{
    Any,
    Tcp,
    Udp,
    Icmp,
}

/// <summary>
/// One allow rule: WHO may reach TO (an internal network, the server, or a CIDR inside the
/// internal networks) over a protocol and port range. Rules only ever allow; a client may reach
/// the union of the rules that name it, its groups, or everyone.
/// </summary>
public sealed record AccessRule
{
    /// <summary>The target word for all internal networks.</summary>
    public const string Internal = "internal";

    /// <summary>The target word for the server's own tunnel addresses.</summary>
    public const string Server = "server";

    public required long Id { get; init; }
    public required SubjectKind Subject { get; init; }
    /// <summary>The group's or client's id (null for everyone).</summary>
    public long? SubjectId { get; init; }
    /// <summary>The group's or client's name (null for everyone).</summary>
    public string? SubjectName { get; init; }
    /// <summary>"internal", "server", or a network in canonical CIDR form.</summary>
    public required string Target { get; init; }
    public required Protocol Protocol { get; init; }
    public int? PortFrom { get; init; }
    public int? PortTo { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    public string Who => Subject switch
    {
        SubjectKind.Everyone => "everyone",
        SubjectKind.Group => $"group:{SubjectName}",
        _ => $"client:{SubjectName}",
    };

    public bool HasPorts => PortFrom is not null;

    public string PortText => PortFrom is not { } a ? "" : PortTo is { } b && b != a ? $"{a}-{b}" : a.ToString(CultureInfo.InvariantCulture);

    /// <summary>"tcp/443", "udp", "icmp", "any", "tcp+udp/53".</summary>
    public string ServiceText => (Protocol, HasPorts) switch
    {
        (Protocol.Any, false) => "any",
        (Protocol.Any, true) => $"tcp+udp/{PortText}",
        (var p, false) => ProtocolName(p),
        (var p, true) => $"{ProtocolName(p)}/{PortText}",
    };

    /// <summary>"group:staff -> 198.51.100.10/32 tcp/443".</summary>
    public override string ToString() => $"{Who} -> {Target} {ServiceText}";

    /// <summary>Same meaning (subject, target, protocol, ports), whatever the id.</summary>
    public bool SameAs(AccessRule o) =>
        Subject == o.Subject && SubjectId == o.SubjectId && Target == o.Target && Protocol == o.Protocol && PortFrom == o.PortFrom && PortTo == o.PortTo;

    public bool AppliesToPort(int port) => PortFrom is not { } a || (port >= a && port <= (PortTo ?? a));

    public static string ProtocolName(Protocol p) => p switch
    {
        Protocol.Tcp => "tcp",
        Protocol.Udp => "udp",
        Protocol.Icmp => "icmp",
        _ => "any",
    };

    public static bool TryParseProtocol(string? text, out Protocol protocol)
    {
        protocol = (text ?? "any").Trim().ToLowerInvariant() switch
        {
            "any" or "all" or "" => Protocol.Any,
            "tcp" => Protocol.Tcp,
            "udp" => Protocol.Udp,
            "icmp" or "icmpv6" or "ping" => Protocol.Icmp,
            _ => (Protocol)(-1),
        };
        return Enum.IsDefined(protocol);
    }

    /// <summary>The networks a target stands for on this server, per family.</summary>
    public static IReadOnlyList<IPNetwork> Resolve(string target, Clients.ServerSettings server) => target switch
    {
        Internal => server.InternalNetworks,
        Server => [.. new[] { server.ServerAddress4, server.ServerAddress6 }.OfType<IPAddress>().Select(a => new IPNetwork(a, a.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))],
        _ => [IPNetwork.Parse(target)],
    };
}

/// <summary>A group of clients that rules can name.</summary>
public sealed record Group(long Id, string Name, string Description, DateTimeOffset CreatedAt, int Members = 0, int Rules = 0);

/// <summary>Group name rules: 1-32 of a-z A-Z 0-9 _ . -, starting with a letter or digit; unique without regard to case.</summary>
public static class GroupName
{
    public const int MaxLength = 32;

    public static string? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name))
            return "group name is empty";
        if (name.Length > MaxLength)
            return $"group name is {name.Length} characters; at most {MaxLength} are allowed";
        if (!char.IsAsciiLetterOrDigit(name[0]))
            return $"group name '{UserInputException.Shown(name, 40)}' must start with a letter or digit";
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
                return $"group name '{UserInputException.Shown(name, 40)}' may only contain letters, digits and _ . -";
        return null;
    }
}
