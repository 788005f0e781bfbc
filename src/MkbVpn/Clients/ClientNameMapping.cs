using System.Text;

namespace MkbVpn.Clients;

/// <summary>
/// Maps names other tools allow ("Dave's iPhone 15 Pro", "me@phone", 30 characters) to names our
/// rules accept (ClientName): other characters become '-', runs of '-' collapse, the name starts
/// with a letter or digit, is cut to 15 characters, and is made unique (case-insensitive) with a
/// "-2", "-3" … suffix. A missing name becomes "peer-N". Valid, unique names are kept as they are.
/// </summary>
public static class ClientNameMapping
{
    public static string Map(string? original, ISet<string> taken, int index)
    {
        string name = original is not null && ClientName.IsValid(original) ? original : Clean(original, index);
        string unique = name;
        for (int n = 2; taken.Contains(unique); n++)
        {
            string suffix = $"-{n}";
            unique = name[..Math.Min(name.Length, ClientName.MaxLength - suffix.Length)].TrimEnd('-', '.', '_', '=', '+') + suffix;
        }
        taken.Add(unique);
        return unique;
    }

    private static string Clean(string? original, int index)
    {
        var sb = new StringBuilder();
        foreach (char c in original ?? "")
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c is '_' or '=' or '+' or '.' or '-';
            char d = ok ? c : '-';
            if (d == '-' && sb.Length > 0 && sb[^1] == '-')
                continue;
            sb.Append(d);
        }
        string s = sb.ToString();
        int start = 0;
        while (start < s.Length && !char.IsAsciiLetterOrDigit(s[start]))
            start++;
        s = s[start..];
        if (s.Length > ClientName.MaxLength)
            s = s[..ClientName.MaxLength];
        s = s.TrimEnd('-', '.');
        return s.Length == 0 ? $"peer-{index + 1}" : s;
    }
}
