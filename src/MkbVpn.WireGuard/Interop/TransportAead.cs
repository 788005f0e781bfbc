using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Interop;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439) for transport data, straight on OpenSSL's libcrypto (the library the BCL's own
/// <see cref="ChaCha20Poly1305"/> uses on Linux) with one cipher context per key, set up once: a packet costs a
/// nonce, the cipher pass, the final and the tag. The BCL object sets the key, clears the thread's error queue and
/// looks its parameters up by name on every call: a fifth of the engine's data-path time in the profile
/// (Device/README.md). Not thread-safe (one object per thread at a time, as the BCL's); <see cref="Dispose"/> while
/// another thread is inside a call waits for that call (the context is a <see cref="SafeHandle"/>), after which
/// calls throw <see cref="ObjectDisposedException"/>. When libcrypto 3 cannot be loaded, <see cref="Create"/>
/// gives the BCL implementation behind the same two methods.
/// </summary>
internal abstract partial class TransportAead : IDisposable
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;

    private static readonly bool s_evp = EvpAead.Probe();

    /// <summary>Whether transport data goes through the reused libcrypto context (false: the BCL object).</summary>
    public static bool UsesEvp => s_evp;

    public static TransportAead Create(ReadOnlySpan<byte> key, bool encrypt) =>
        s_evp ? new EvpAead(key, encrypt) : new BclAead(key);

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length, may be the same memory); writes the tag.</summary>
    public abstract void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag);

    /// <summary>Decrypts and authenticates; false, with <paramref name="plaintext"/> cleared, when the tag does not verify.</summary>
    public abstract bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext);

    public abstract void Dispose();

    private sealed class BclAead(ReadOnlySpan<byte> key) : TransportAead
    {
        private readonly ChaCha20Poly1305 _aead = new(key);

        public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
            _aead.Encrypt(nonce, plaintext, ciphertext, tag);

        public override bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
        {
            try
            {
                _aead.Decrypt(nonce, ciphertext, tag, plaintext);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                return false;
            }
        }

        public override void Dispose() => _aead.Dispose();
    }

    private sealed unsafe partial class EvpAead : TransportAead
    {
        private const string LibCrypto = "libcrypto.so.3";
        private const int EVP_CTRL_AEAD_GET_TAG = 0x10;
        private const int EVP_CTRL_AEAD_SET_TAG = 0x11;

        private readonly ContextHandle _ctx;
        private readonly int _encrypt;

        public EvpAead(ReadOnlySpan<byte> key, bool encrypt)
        {
            if (key.Length != KeySize)
                throw new ArgumentException("ChaCha20-Poly1305 takes a 32-byte key", nameof(key));
            _encrypt = encrypt ? 1 : 0;
            _ctx = EVP_CIPHER_CTX_new();
            if (_ctx.IsInvalid)
                throw new CryptographicException("EVP_CIPHER_CTX_new failed");
            fixed (byte* k = key)
            {
                if (EVP_CipherInit_ex(_ctx, EVP_chacha20_poly1305(), 0, k, null, _encrypt) != 1)
                {
                    ERR_clear_error();
                    _ctx.Dispose();
                    throw new CryptographicException("EVP_CipherInit_ex (ChaCha20-Poly1305 key) failed");
                }
            }
        }

        /// <summary>Whether libcrypto 3 is there and seals RFC 8439's section 2.8.2 example as the BCL does.</summary>
        public static bool Probe()
        {
            try
            {
                Span<byte> key = stackalloc byte[KeySize];
                Span<byte> nonce = stackalloc byte[NonceSize];
                for (int i = 0; i < KeySize; i++)
                    key[i] = (byte)(0x80 + i);
                nonce[0] = 7;
                nonce[4] = 0x40;
                ReadOnlySpan<byte> text = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip"u8;
                Span<byte> ours = stackalloc byte[text.Length + TagSize];
                Span<byte> bcl = stackalloc byte[text.Length + TagSize];
                using (var evp = new EvpAead(key, encrypt: true))
                    evp.Encrypt(nonce, text, ours[..text.Length], ours[text.Length..]);
                using (var reference = new ChaCha20Poly1305(key))
                    reference.Encrypt(nonce, text, bcl[..text.Length], bcl[text.Length..]);
                if (!ours.SequenceEqual(bcl))
                    return false;
                Span<byte> back = stackalloc byte[text.Length];
                using var open = new EvpAead(key, encrypt: false);
                if (!open.TryDecrypt(nonce, ours[..text.Length], ours[text.Length..], back) || !back.SequenceEqual(text))
                    return false;
                ours[^1] ^= 1;
                return !open.TryDecrypt(nonce, ours[..text.Length], ours[text.Length..], back);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CryptographicException)
            {
                return false;
            }
        }

        public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
        {
            Debug.Assert(_encrypt == 1 && nonce.Length == NonceSize && tag.Length == TagSize && ciphertext.Length == plaintext.Length);
            bool added = false;
            try
            {
                _ctx.DangerousAddRef(ref added);
                nint ctx = _ctx.DangerousGetHandle();
                byte empty = 0;
                fixed (byte* n = nonce, pp = plaintext, cp = ciphertext, t = tag)
                {
                    // An empty text (a keepalive) still needs valid pointers.
                    byte* p = pp == null ? &empty : pp, c = cp == null ? &empty : cp;
                    int outLength = 0, finalLength = 0;
                    if (EVP_CipherInit_ex(ctx, 0, 0, null, n, -1) != 1
                        || EVP_CipherUpdate(ctx, c, &outLength, p, plaintext.Length) != 1
                        || EVP_CipherFinal_ex(ctx, c + outLength, &finalLength) != 1
                        || outLength + finalLength != plaintext.Length
                        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TagSize, t) <= 0)
                    {
                        ERR_clear_error();
                        throw new CryptographicException("ChaCha20-Poly1305 encryption failed in libcrypto");
                    }
                }
            }
            finally
            {
                if (added)
                    _ctx.DangerousRelease();
            }
        }

        public override bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
        {
            Debug.Assert(_encrypt == 0 && nonce.Length == NonceSize && tag.Length == TagSize && ciphertext.Length == plaintext.Length);
            bool added = false;
            try
            {
                _ctx.DangerousAddRef(ref added);
                nint ctx = _ctx.DangerousGetHandle();
                byte empty = 0;
                fixed (byte* n = nonce, cp = ciphertext, t = tag, pp = plaintext)
                {
                    byte* p = pp == null ? &empty : pp, c = cp == null ? &empty : cp;
                    int outLength = 0, finalLength = 0;
                    // The tag is set before the cipher pass: libcrypto reads it at the final.
                    bool ok = EVP_CipherInit_ex(ctx, 0, 0, null, n, -1) == 1
                        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TagSize, t) > 0
                        && EVP_CipherUpdate(ctx, p, &outLength, c, ciphertext.Length) == 1
                        && EVP_CipherFinal_ex(ctx, p + outLength, &finalLength) == 1
                        && outLength + finalLength == ciphertext.Length;
                    if (!ok)
                    {
                        ERR_clear_error();
                        CryptographicOperations.ZeroMemory(plaintext);
                    }
                    return ok;
                }
            }
            finally
            {
                if (added)
                    _ctx.DangerousRelease();
            }
        }

        public override void Dispose() => _ctx.Dispose();

        public sealed class ContextHandle() : SafeHandle(0, ownsHandle: true)
        {
            public override bool IsInvalid => handle == 0;

            // EVP_CIPHER_CTX_free cleanses the key schedule.
            protected override bool ReleaseHandle()
            {
                EVP_CIPHER_CTX_free(handle);
                return true;
            }
        }

        [LibraryImport(LibCrypto)]
        private static partial ContextHandle EVP_CIPHER_CTX_new();

        [LibraryImport(LibCrypto)]
        private static partial void EVP_CIPHER_CTX_free(nint ctx);

        [LibraryImport(LibCrypto)]
        private static partial nint EVP_chacha20_poly1305();

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherInit_ex(ContextHandle ctx, nint cipher, nint engine, byte* key, byte* iv, int enc);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherInit_ex(nint ctx, nint cipher, nint engine, byte* key, byte* iv, int enc);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherUpdate(nint ctx, byte* output, int* outputLength, byte* input, int inputLength);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherFinal_ex(nint ctx, byte* output, int* outputLength);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CIPHER_CTX_ctrl(nint ctx, int type, int arg, byte* ptr);

        [LibraryImport(LibCrypto)]
        private static partial void ERR_clear_error();
    }
}
