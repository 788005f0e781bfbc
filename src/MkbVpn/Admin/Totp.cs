using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MkbVpn.Admin;

/// <summary>RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits), as authenticator apps use.</summary>
public static class Totp
{
    public const int StepSeconds = 30;
    public const int Digits = 6;

    public static string NewSecret() => Base32(RandomNumberGenerator.GetBytes(20));

    public static string Uri(string secret, string account, string issuer = "mkb-vpn") =>
        $"otpauth://totp/{System.Uri.EscapeDataString(issuer)}:{System.Uri.EscapeDataString(account)}?secret={secret}&issuer={System.Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits={Digits}&period={StepSeconds}";

    public static string Code(string secret, long step)
    {
        var key = FromBase32(secret);
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, step);
        Span<byte> mac = stackalloc byte[20];
        HMACSHA1.HashData(key, counter, mac);
        CryptographicOperations.ZeroMemory(key);
        int offset = mac[^1] & 0x0F;
        int binary = (BinaryPrimitives.ReadInt32BigEndian(mac[offset..]) & 0x7FFFFFFF) % 1_000_000;
        return binary.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
    }

    public static long StepAt(DateTimeOffset t) => t.ToUnixTimeSeconds() / StepSeconds;

    /// <summary>Accepts the code of the current step and one step either side (clock drift), in constant time.</summary>
    public static bool Verify(string secret, string? code, DateTimeOffset now) => Match(secret, code, now) is not null;

    /// <summary>
    /// The time step whose code <paramref name="code"/> is (the current one or one either side), or
    /// null. Every candidate is compared, in constant time. The caller remembers the step so the
    /// code is not accepted twice.
    /// </summary>
    public static long? Match(string secret, string? code, DateTimeOffset now)
    {
        if (code is null)
            return null;
        code = code.Replace(" ", "", StringComparison.Ordinal);
        if (code.Length != Digits || !code.All(char.IsAsciiDigit))
            return null;
        long? matched = null;
        long step = StepAt(now);
        var given = Encoding.ASCII.GetBytes(code);
        for (long s = step - 1; s <= step + 1; s++)
        {
            if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Code(secret, s)), given))
                matched = s;
        }
        return matched;
    }

    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static string Base32(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (byte b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0)
            sb.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        return sb.ToString();
    }

    public static byte[] FromBase32(string text)
    {
        var bytes = new List<byte>();
        int buffer = 0, bits = 0;
        foreach (char c in text.TrimEnd('=').ToUpperInvariant())
        {
            int v = Alphabet.IndexOf(c);
            if (v < 0)
                throw new FormatException("not base32");
            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8)
            {
                bytes.Add((byte)(buffer >> (bits - 8)));
                bits -= 8;
            }
        }
        return [.. bytes];
    }
}
