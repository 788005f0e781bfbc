using System.Data.Common;
using MkbVpn.Clients;

namespace MkbVpn.Storage;

/// <summary>One page of clients, filtered in SQL, for the web page and the REST API.</summary>
public sealed partial class Store
{
    /// <summary>
    /// Clients whose name or address contains <paramref name="text"/> (case-insensitive), optionally
    /// only enabled or only blocked ones, ordered by name; and how many match in all. With <paramref name="damaged"/>,
    /// a row that does not parse is described there and left out (as <see cref="ListClients(List{string})"/>); without,
    /// it fails the query (exit 8).
    /// </summary>
    public (IReadOnlyList<Client> Items, int Total) QueryClients(string? text, bool? enabled, int offset, int limit, List<string>? damaged = null)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (!string.IsNullOrEmpty(text))
        {
            where.Add($@"(name {_d.Like} @q ESCAPE '\' OR address4 {_d.Like} @q ESCAPE '\' OR address6 {_d.Like} @q ESCAPE '\')");
            args.Add(("@q", "%" + text.Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_") + "%"));
        }
        if (enabled is { } e)
        {
            where.Add("enabled = @en");
            args.Add(("@en", e ? 1 : 0));
        }
        string filter = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        int total;
        using (var count = Command($"SELECT count(*) FROM clients {filter}", [.. args]))
            total = Convert.ToInt32(Scalar(count), System.Globalization.CultureInfo.InvariantCulture);
        using var cmd = Command($"SELECT {ClientColumns} FROM clients {filter} ORDER BY {_d.NoCase("name")} LIMIT @limit OFFSET @offset",
            [.. args, ("@limit", limit), ("@offset", offset)]);
        return (Rows(cmd, ReadClient, "clients", damaged is null ? null : DamagedRow(damaged)), total);
    }

    /// <summary>How many clients there are, and how many of them are enabled.</summary>
    public (int Total, int Enabled) CountClients()
    {
        using var cmd = Command("SELECT count(*), coalesce(sum(enabled), 0) FROM clients");
        using var r = Reader(cmd);
        r.Read();
        return ((int)Int64(r, 0), (int)Int64(r, 1));
    }
}
