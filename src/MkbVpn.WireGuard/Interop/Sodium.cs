using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Interop;

/// <summary>
/// X25519 straight from libsodium (the library NSec loads): the scalar multiplications on caller buffers,
/// without NSec's key objects, each of which is guarded memory (mmap + mprotect) made and freed per operation.
/// A handshake does four or five of them; through key objects they cost most of its time.
/// </summary>
internal static unsafe partial class Sodium
{
    static Sodium()
    {
        if (sodium_init() < 0)
            throw new InvalidOperationException("libsodium failed to initialise");
    }

    /// <summary>q = n·p; false (q unspecified) when the result is all zeros (a low-order point, RFC 7748 6.1).</summary>
    public static bool ScalarMult(Span<byte> q, ReadOnlySpan<byte> n, ReadOnlySpan<byte> p)
    {
        if (q.Length != 32 || n.Length != 32 || p.Length != 32)
            throw new ArgumentException("X25519 takes and gives 32-byte values");
        fixed (byte* qp = q, np = n, pp = p)
            return crypto_scalarmult_curve25519(qp, np, pp) == 0;
    }

    /// <summary>q = n·B, the public key of scalar n.</summary>
    public static void ScalarMultBase(Span<byte> q, ReadOnlySpan<byte> n)
    {
        if (q.Length != 32 || n.Length != 32)
            throw new ArgumentException("X25519 takes and gives 32-byte values");
        fixed (byte* qp = q, np = n)
            if (crypto_scalarmult_curve25519_base(qp, np) != 0)
                throw new CryptographicException("X25519 base point multiplication failed");
    }

    [LibraryImport("libsodium")]
    private static partial int sodium_init();

    [LibraryImport("libsodium")]
    private static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);

    [LibraryImport("libsodium")]
    private static partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);
}
