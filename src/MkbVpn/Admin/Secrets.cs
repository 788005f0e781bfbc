using System.Security.Cryptography;
using System.Text;

namespace MkbVpn.Admin;

/// <summary>
/// Bearer secrets (API tokens, session cookies) are "PREFIX ID _ SECRET": the id finds the row,
/// the secret's SHA-256 is compared with the stored one in constant time. Only the hash is stored.
/// </summary>
public static class Secrets
{
    public const string TokenPrefix = "mkbv_";
    private const int IdBytes = 9;       // 12 base64url characters
    private const int SecretBytes = 32;

    public static (string Id, string Secret, string Whole) New(string prefix)
    {
        string id = Base64Url(RandomNumberGenerator.GetBytes(IdBytes));
        string secret = Base64Url(RandomNumberGenerator.GetBytes(SecretBytes));
        return (id, secret, prefix + id + "_" + secret);
    }

    /// <summary>Splits "PREFIX ID _ SECRET"; null when malformed.</summary>
    public static (string Id, string Secret)? Parse(string? whole, string prefix)
    {
        if (whole is null || whole.Length > 200 || !whole.StartsWith(prefix, StringComparison.Ordinal))
            return null;
        var rest = whole.AsSpan(prefix.Length);
        const int idLength = IdBytes * 4 / 3;
        if (rest.Length < idLength + 2 || rest[idLength] != '_')
            return null;
        return (rest[..idLength].ToString(), rest[(idLength + 1)..].ToString());
    }

    public static string HashOf(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares a presented secret with a stored hash in constant time.</summary>
    public static bool Matches(string secret, string storedHash)
    {
        var actual = Encoding.ASCII.GetBytes(HashOf(secret));
        var expected = Encoding.ASCII.GetBytes(storedHash);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
