using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MkbVpn.Admin;

/// <summary>
/// Salted slow password hashes: PBKDF2-HMAC-SHA256 (OWASP 2023: at least 600,000 iterations),
/// stored as "pbkdf2-sha256$ITERATIONS$SALT$HASH" (base64). Compared in constant time.
/// </summary>
public static class Passwords
{
    public const int Iterations = 600_000;
    public const int MinLength = 10;
    public const int MaxLength = 1024;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;
    private const string Scheme = "pbkdf2-sha256";

    /// <summary>A hash of a random password, checked when the named admin does not exist, so timing tells nothing.</summary>
    private static readonly Lazy<string> Dummy = new(() => Hash(Convert.ToBase64String(RandomNumberGenerator.GetBytes(24))));

    public static string? Validate(string? password)
    {
        if (string.IsNullOrEmpty(password))
            return "the password is empty";
        if (password.Length < MinLength)
            return $"the password is too short: at least {MinLength} characters";
        if (password.Length > MaxLength)
            return $"the password is too long: at most {MaxLength} characters";
        return null;
    }

    public static string Hash(string password, int iterations = Iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Derive(password, salt, iterations);
        try
        {
            return string.Join('$', Scheme, iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(salt), Convert.ToBase64String(hash));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(hash);
        }
    }

    /// <summary>True when <paramref name="password"/> matches <paramref name="stored"/>; null stored checks a dummy (same time).</summary>
    public static bool Verify(string password, string? stored)
    {
        bool real = stored is not null;
        stored ??= Dummy.Value;
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != Scheme || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int iterations) || iterations < 1)
            return false;
        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(parts[2]);
            expected = Convert.FromBase64String(parts[3]);
        }
        catch (FormatException)
        {
            return false;
        }
        var actual = Derive(password, salt, iterations, expected.Length);
        bool same = CryptographicOperations.FixedTimeEquals(actual, expected);
        CryptographicOperations.ZeroMemory(actual);
        return same && real;
    }

    private static byte[] Derive(string password, byte[] salt, int iterations, int length = HashBytes)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            return Rfc2898DeriveBytes.Pbkdf2(bytes, salt, iterations, HashAlgorithmName.SHA256, length);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
