namespace MkbVpn.Clients;

/// <summary>
/// Client name rules. A name becomes the client's config file name (NAME.conf), and wg-quick
/// on Linux only loads a file whose name is a valid interface name: at most 15 characters of
/// a-z A-Z 0-9 _ = + . -. We also require a letter or digit first, so a name never looks like
/// a command-line option or a hidden file. Names are unique without regard to case, so that
/// "Alice" and "alice" cannot both exist (their files would be confused on case-insensitive
/// file systems and by people).
/// </summary>
public static class ClientName
{
    public const int MaxLength = 15;

    public static bool IsValid(string? name) => Validate(name) is null;

    /// <summary>Returns null when valid, else a one-line reason.</summary>
    public static string? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name))
            return "client name is empty";
        if (name.Length > MaxLength)
            return $"client name '{UserInputException.Shown(name, 40)}' is {name.Length} characters; at most {MaxLength} are allowed (it becomes a WireGuard interface name)";
        if (!char.IsAsciiLetterOrDigit(name[0]))
            return $"client name '{UserInputException.Shown(name, 40)}' must start with a letter or digit";
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '=' or '+' or '.' or '-'))
                return $"client name '{UserInputException.Shown(name, 40)}' may only contain letters, digits and _ = + . -";
        }
        return null;
    }

    public static void EnsureValid(string? name)
    {
        if (Validate(name) is { } reason)
            throw new UserInputException(reason);
    }

    /// <summary>The name of a request (the API's "name" member), valid or an error of that field.</summary>
    public static string RequireValid(string? name, string field = "name") =>
        Validate(name) is { } reason ? throw new FieldException(field, reason) : name!;
}
