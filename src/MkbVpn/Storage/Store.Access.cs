using System.Data.Common;
using MkbVpn.Access;

namespace MkbVpn.Storage;

/// <summary>Groups, memberships and access rules.</summary>
public sealed partial class Store
{
    public IReadOnlyList<Group> ListGroups()
    {
        using var cmd = Command($"""
            SELECT g.id, g.name, g.description, g.created_at,
                   (SELECT count(*) FROM client_groups m WHERE m.group_id = g.id),
                   (SELECT count(*) FROM access_rules r WHERE r.group_id = g.id)
            FROM groups g ORDER BY {_d.NoCase("g.name")}
            """);
        using var r = Reader(cmd);
        var list = new List<Group>();
        while (r.Read())
            list.Add(new Group(Int64(r, 0), r.GetString(1), r.GetString(2), ParseTime(r.GetString(3)), Int32(r, 4), Int32(r, 5)));
        return list;
    }

    public Group? FindGroup(string name) =>
        ListGroups().FirstOrDefault(g => string.Equals(g.Name, name, StringComparison.OrdinalIgnoreCase));

    public Group InsertGroup(string name, string description, DateTimeOffset now)
    {
        try
        {
            using var cmd = Command("INSERT INTO groups (name, description, created_at) VALUES (@n, @d, @t) RETURNING id",
                ("@n", name), ("@d", description), ("@t", Time(now)));
            return new Group(Convert.ToInt64(Scalar(cmd), System.Globalization.CultureInfo.InvariantCulture), name, description, now);
        }
        catch (DbException e) when (_d.Violation(e) is not null)
        {
            throw new FieldException("name", $"name: a group named '{name}' already exists", ExitCodes.Conflict);
        }
    }

    public void DeleteGroup(long id) => Execute("DELETE FROM groups WHERE id = @id", ("@id", id));

    /// <summary>client id -> group ids, for every client that is in a group.</summary>
    public Dictionary<long, List<long>> LoadMemberships()
    {
        using var cmd = Command("SELECT client_id, group_id FROM client_groups ORDER BY client_id, group_id");
        using var r = Reader(cmd);
        var map = new Dictionary<long, List<long>>();
        while (r.Read())
        {
            long c = Int64(r, 0);
            if (!map.TryGetValue(c, out var list))
                map[c] = list = [];
            list.Add(Int64(r, 1));
        }
        return map;
    }

    public IReadOnlyList<string> GroupsOf(long clientId)
    {
        using var cmd = Command($"SELECT g.name FROM client_groups m JOIN groups g ON g.id = m.group_id WHERE m.client_id = @c ORDER BY {_d.NoCase("g.name")}", ("@c", clientId));
        using var r = Reader(cmd);
        var list = new List<string>();
        while (r.Read())
            list.Add(r.GetString(0));
        return list;
    }

    public void SetMemberships(long clientId, IEnumerable<long> groupIds)
    {
        Execute("DELETE FROM client_groups WHERE client_id = @c", ("@c", clientId));
        foreach (var g in groupIds.Distinct())
            Execute("INSERT INTO client_groups (client_id, group_id) VALUES (@c, @g)", ("@c", clientId), ("@g", g));
    }

    private const string RuleSelect = """
        SELECT r.id, r.subject, r.group_id, r.client_id, coalesce(g.name, c.name), r.target, r.proto, r.port_from, r.port_to, r.created_at
        FROM access_rules r LEFT JOIN groups g ON g.id = r.group_id LEFT JOIN clients c ON c.id = r.client_id
        """;

    public IReadOnlyList<AccessRule> ListRules()
    {
        using var cmd = Command($"{RuleSelect} ORDER BY r.id");
        using var r = Reader(cmd);
        var list = new List<AccessRule>();
        while (r.Read())
            list.Add(ReadRule(r));
        return list;
    }

    public AccessRule InsertRule(AccessRule rule)
    {
        using var cmd = Command("""
            INSERT INTO access_rules (subject, group_id, client_id, target, proto, port_from, port_to, created_at)
            VALUES (@s, @g, @c, @t, @p, @pf, @pt, @at) RETURNING id
            """,
            ("@s", rule.Subject.ToString().ToLowerInvariant()),
            ("@g", rule.Subject == SubjectKind.Group ? rule.SubjectId : null),
            ("@c", rule.Subject == SubjectKind.Client ? rule.SubjectId : null),
            ("@t", rule.Target), ("@p", AccessRule.ProtocolName(rule.Protocol)), ("@pf", rule.PortFrom), ("@pt", rule.PortTo), ("@at", Time(rule.CreatedAt)));
        try
        {
            return rule with { Id = Convert.ToInt64(Scalar(cmd), System.Globalization.CultureInfo.InvariantCulture) };
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    public void DeleteRule(long id) => Execute("DELETE FROM access_rules WHERE id = @id", ("@id", id));

    private static AccessRule ReadRule(DbDataReader r)
    {
        var subject = r.GetString(1) switch
        {
            "group" => SubjectKind.Group,
            "client" => SubjectKind.Client,
            _ => SubjectKind.Everyone,
        };
        AccessRule.TryParseProtocol(r.GetString(6), out var proto);
        return new AccessRule
        {
            Id = Int64(r, 0),
            Subject = subject,
            SubjectId = subject switch
            {
                SubjectKind.Group => Int64(r, 2),
                SubjectKind.Client => Int64(r, 3),
                _ => null,
            },
            SubjectName = r.IsDBNull(4) ? null : r.GetString(4),
            Target = r.GetString(5),
            Protocol = proto,
            PortFrom = r.IsDBNull(7) ? null : Int32(r, 7),
            PortTo = r.IsDBNull(8) ? null : Int32(r, 8),
            CreatedAt = ParseTime(r.GetString(9)),
        };
    }
}
