using MkbVpn.Audit;

namespace MkbVpn.Storage;

/// <summary>The audit log: append-only (triggers refuse updates and deletes).</summary>
public sealed partial class Store
{
    public void AppendAudit(DateTimeOffset at, Actor actor, string action, string? target, string? client, string? detail, string outcome = AuditEntry.Ok) =>
        Execute("""
            INSERT INTO audit_log (at, actor, via, action, target, client, detail, outcome)
            VALUES (@at, @actor, @via, @action, @target, @client, @detail, @outcome)
            """,
            ("@at", Time(at)), ("@actor", actor.Name), ("@via", actor.Via), ("@action", action), ("@target", target),
            ("@client", client), ("@detail", detail), ("@outcome", outcome));

    /// <summary>Entries newest first, filtered by client (exact name, any case) and start time.</summary>
    public (IReadOnlyList<AuditEntry> Items, int Total) QueryAudit(string? client, DateTimeOffset? since, int offset, int limit)
    {
        // Only the filters given: PostgreSQL cannot type a parameter that is only ever compared with NULL.
        var filters = new List<string>();
        var args = new List<(string, object?)>();
        if (client is not null)
        {
            filters.Add($"{_d.NoCase("client")} = {_d.NoCase("@client")}");
            args.Add(("@client", client));
        }
        if (since is { } s)
        {
            filters.Add("at >= @since");
            args.Add(("@since", Time(s)));
        }
        string where = filters.Count == 0 ? "" : "WHERE " + string.Join(" AND ", filters);
        int total;
        using (var count = Command($"SELECT count(*) FROM audit_log {where}", [.. args]))
            total = Convert.ToInt32(Scalar(count), System.Globalization.CultureInfo.InvariantCulture);
        using var cmd = Command($"SELECT id, at, actor, via, action, target, client, detail, outcome FROM audit_log {where} ORDER BY id DESC LIMIT @limit OFFSET @offset",
            [.. args, ("@limit", limit), ("@offset", offset)]);
        using var r = Reader(cmd);
        var list = new List<AuditEntry>();
        while (r.Read())
        {
            list.Add(new AuditEntry(Int64(r, 0), ParseTime(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4),
                r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), r.GetString(8)));
        }
        return (list, total);
    }
}
