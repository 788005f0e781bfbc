using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace MkbVpn.Storage;

/// <summary>
/// The backup file: one file holding a snapshot of the store, a format version and a checksum,
/// optionally encrypted under a passphrase.
///
///   offset  size  field
///        0     8  magic "MKBVPNBK"
///        8     2  format version (1), little endian
///       10     2  flags: bit 0 = encrypted
///       12     4  schema version of the store inside
///       16     8  created, unix seconds
///       24     8  payload length
///       32    48  encrypted only: Argon2id salt (16), memory KiB (4), passes (4), XChaCha20-Poly1305 nonce (24)
///        …     n  payload: the SQLite database, or its ciphertext + 16-byte tag (the header is the associated data)
///      end    32  SHA-256 of everything before it
///
/// The checksum finds truncation and damage before any key is derived; the AEAD tag
/// authenticates an encrypted file against deliberate change and a wrong passphrase.
/// </summary>
public static class BackupFile
{
    public const ushort FormatVersion = 1;
    public const string Extension = ".mkbbak";
    private const int HeaderSize = 32;
    private const int KdfSize = 48;
    private const int SaltSize = 16;
    private const int NonceSize = 24;
    private const int TagSize = 16;
    private const int ChecksumSize = 32;
    private const ushort Encrypted = 1;
    private static ReadOnlySpan<byte> Magic => "MKBVPNBK"u8;

    /// <summary>Argon2id cost: 64 MiB, 3 passes (libsodium's "moderate" is 256 MiB; this stays usable on a small office host).</summary>
    public const int MemoryKiB = 64 * 1024;
    public const int Passes = 3;

    public sealed record Contents(byte[] Database, int SchemaVersion, DateTimeOffset Created, bool WasEncrypted);

    public static byte[] Write(byte[] database, int schemaVersion, DateTimeOffset created, string? passphrase)
    {
        bool encrypt = passphrase is not null;
        int headerLength = HeaderSize + (encrypt ? KdfSize : 0);
        int payloadLength = database.Length + (encrypt ? TagSize : 0);
        var file = new byte[headerLength + payloadLength + ChecksumSize];
        var span = file.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt16LittleEndian(span[8..], FormatVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(span[10..], encrypt ? Encrypted : (ushort)0);
        BinaryPrimitives.WriteInt32LittleEndian(span[12..], schemaVersion);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], created.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], payloadLength);
        var payload = span.Slice(headerLength, payloadLength);
        if (encrypt)
        {
            var kdf = span.Slice(HeaderSize, KdfSize);
            RandomNumberGenerator.Fill(kdf[..SaltSize]);
            BinaryPrimitives.WriteInt32LittleEndian(kdf[16..], MemoryKiB);
            BinaryPrimitives.WriteInt32LittleEndian(kdf[20..], Passes);
            RandomNumberGenerator.Fill(kdf[24..]);
            using var key = DeriveKey(passphrase!, kdf[..SaltSize], MemoryKiB, Passes);
            AeadAlgorithm.XChaCha20Poly1305.Encrypt(key, kdf[24..], span[..headerLength], database, payload);
        }
        else
        {
            database.CopyTo(payload);
        }
        SHA256.HashData(span[..^ChecksumSize], span[^ChecksumSize..]);
        return file;
    }

    /// <summary>Checks and opens a backup; every failure is one line naming <paramref name="shownAs"/>. Nothing is changed.</summary>
    public static Contents Read(byte[] file, string shownAs, Func<string?> passphrase)
    {
        var span = file.AsSpan();
        if (span.Length < Magic.Length || !span[..Magic.Length].SequenceEqual(Magic))
            throw new UserInputException($"{shownAs} is not an mkb-vpn backup");
        if (span.Length < HeaderSize + ChecksumSize)
            throw new UserInputException($"{shownAs} is truncated (only {span.Length} bytes)");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(span[8..]);
        if (version != FormatVersion)
            throw new UserInputException($"{shownAs}: backup format version {version} is unknown (this mkb-vpn reads version {FormatVersion})");
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span[10..]);
        bool encrypted = (flags & Encrypted) != 0;
        int schema = BinaryPrimitives.ReadInt32LittleEndian(span[12..]);
        long created = BinaryPrimitives.ReadInt64LittleEndian(span[16..]);
        long payloadLength = BinaryPrimitives.ReadInt64LittleEndian(span[24..]);
        int headerLength = HeaderSize + (encrypted ? KdfSize : 0);
        long expected = headerLength + payloadLength + ChecksumSize;
        if ((flags & ~Encrypted) != 0 || payloadLength < 0 || expected > span.Length)
            throw new UserInputException(expected > span.Length && (flags & ~Encrypted) == 0 && payloadLength >= 0
                ? $"{shownAs} is truncated ({span.Length} of {expected} bytes)"
                : $"{shownAs} is damaged (its header does not add up)");
        if (expected != span.Length)
            throw new UserInputException($"{shownAs} is damaged ({span.Length - expected} bytes more than its header says)");
        Span<byte> sum = stackalloc byte[ChecksumSize];
        SHA256.HashData(span[..^ChecksumSize], sum);
        if (!CryptographicOperations.FixedTimeEquals(sum, span[^ChecksumSize..]))
            throw new UserInputException($"{shownAs} is damaged or was altered (checksum mismatch)");
        var payload = span.Slice(headerLength, (int)payloadLength);
        string? pass = passphrase();
        if (!encrypted)
        {
            if (pass is not null)
                throw new UserInputException($"{shownAs} is not encrypted; leave out --passphrase-file");
            return new Contents(payload.ToArray(), schema, DateTimeOffset.FromUnixTimeSeconds(created), false);
        }
        if (pass is null)
            throw new UserInputException($"{shownAs} is encrypted: give its passphrase with --passphrase-file FILE");
        var kdf = span.Slice(HeaderSize, KdfSize);
        int memory = BinaryPrimitives.ReadInt32LittleEndian(kdf[16..]);
        int passes = BinaryPrimitives.ReadInt32LittleEndian(kdf[20..]);
        if (memory is < 8 * 1024 or > 4 * 1024 * 1024 || passes is < 1 or > 64)
            throw new UserInputException($"{shownAs} is damaged (key derivation cost out of range)");
        if (payload.Length < TagSize)
            throw new UserInputException($"{shownAs} is truncated");
        using var key = DeriveKey(pass, kdf[..SaltSize], memory, passes);
        var plain = new byte[payload.Length - TagSize];
        if (!AeadAlgorithm.XChaCha20Poly1305.Decrypt(key, kdf[24..], span[..headerLength], payload, plain))
            throw new UserInputException($"{shownAs}: wrong passphrase, or the file was altered");
        return new Contents(plain, schema, DateTimeOffset.FromUnixTimeSeconds(created), true);
    }

    private static Key DeriveKey(string passphrase, ReadOnlySpan<byte> salt, int memoryKiB, int passes)
    {
        var argon = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            DegreeOfParallelism = 1,
            MemorySize = memoryKiB,
            NumberOfPasses = passes,
        });
        byte[] secret = Encoding.UTF8.GetBytes(passphrase);
        try
        {
            return argon.DeriveKey(secret, salt, AeadAlgorithm.XChaCha20Poly1305);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>Reads a passphrase file: its first line, which must not be empty.</summary>
    public static string ReadPassphrase(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"--passphrase-file: cannot read {path}");
        }
        string line = text.Split('\n')[0].TrimEnd('\r');
        if (line.Length == 0)
            throw new UserInputException($"--passphrase-file: {path} is empty");
        return line;
    }
}
