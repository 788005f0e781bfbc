using System.Text;

namespace MkbVpn.Configs;

/// <summary>
/// The wg-quick INI dialect: [Interface] and [Peer] sections of "Key = Value" lines, '#' comments.
/// Parsing keeps the order of sections and keys; keys compare without regard to case, as wg-quick does.
/// </summary>
public sealed class WgQuickConfig
{
    public List<Section> Sections { get; } = [];

    public Section? Interface => Sections.FirstOrDefault(s => s.Name.Equals("Interface", StringComparison.OrdinalIgnoreCase));

    public IEnumerable<Section> Peers => Sections.Where(s => s.Name.Equals("Peer", StringComparison.OrdinalIgnoreCase));

    public sealed class Section(string name)
    {
        public string Name { get; } = name;
        public List<KeyValuePair<string, string>> Entries { get; } = [];

        public string? this[string key] =>
            Entries.Where(e => e.Key.Equals(key, StringComparison.OrdinalIgnoreCase)).Select(e => e.Value).FirstOrDefault();

        /// <summary>All values of a key, comma lists flattened (Address, AllowedIPs and DNS may repeat).</summary>
        public IEnumerable<string> All(string key) =>
            Entries.Where(e => e.Key.Equals(key, StringComparison.OrdinalIgnoreCase))
                   .SelectMany(e => e.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        public Section Add(string key, object? value)
        {
            if (value is not null && $"{value}" is { Length: > 0 } text)
                Entries.Add(new(key, text));
            return this;
        }
    }

    public Section AddSection(string name)
    {
        var s = new Section(name);
        Sections.Add(s);
        return s;
    }

    public static WgQuickConfig Parse(string text)
    {
        var config = new WgQuickConfig();
        Section? current = null;
        int lineNo = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw;
            int hash = line.IndexOf('#');
            if (hash >= 0)
                line = line[..hash];
            line = line.Trim();
            if (line.Length == 0)
                continue;
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                string name = line[1..^1].Trim();
                if (!name.Equals("Interface", StringComparison.OrdinalIgnoreCase) && !name.Equals("Peer", StringComparison.OrdinalIgnoreCase))
                    throw new FormatException($"line {lineNo}: unknown section [{name}]");
                current = config.AddSection(name);
                continue;
            }
            int eq = line.IndexOf('=');
            if (eq <= 0)
                throw new FormatException($"line {lineNo}: expected 'Key = Value'");
            if (current is null)
                throw new FormatException($"line {lineNo}: key outside of a section");
            string key = line[..eq].Trim();
            string value = line[(eq + 1)..].Trim();
            current.Entries.Add(new(key, value));
        }
        return config;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var s in Sections)
        {
            if (sb.Length > 0)
                sb.Append('\n');
            sb.Append('[').Append(s.Name).Append("]\n");
            foreach (var (k, v) in s.Entries)
                sb.Append(k).Append(" = ").Append(v).Append('\n');
        }
        return sb.ToString();
    }
}
