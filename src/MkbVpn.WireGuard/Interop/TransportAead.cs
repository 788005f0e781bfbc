using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace MkbVpn.WireGuard.Interop;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439) for transport data, on OpenSSL's libcrypto (the library the BCL's own
/// <see cref="ChaCha20Poly1305"/> uses on Linux): RFC 8439's construction from libcrypto's ChaCha20 stream, keyed
/// once per key, and its Poly1305 MAC (<see cref="EvpAead"/>). The BCL object sets the key, clears the thread's error
/// queue and looks its parameters up by name on every call: a fifth of the engine's data-path time in the profile
/// (Device/README.md). Not thread-safe (one object per thread at a time, as the BCL's); <see cref="Dispose"/> while
/// another thread is inside a call waits for that call (the contexts are <see cref="SafeHandle"/>s), after which
/// calls throw <see cref="ObjectDisposedException"/>. When libcrypto 3 cannot be loaded (or disagrees with the BCL
/// at start-up), <see cref="Create"/> gives the BCL implementation behind the same two methods.
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

    private static unsafe void Xor(byte* input, byte* keystream, byte* output, int length) =>
        Xor(input, keystream, output, length, wide: true);

    /// <summary>The tests' entry to <see cref="Xor(byte*, byte*, byte*, int, bool)"/> over <paramref name="input"/>'s length.</summary>
    internal static unsafe void Xor(ReadOnlySpan<byte> input, ReadOnlySpan<byte> keystream, Span<byte> output, bool wide)
    {
        if (keystream.Length < input.Length || output.Length < input.Length)
            throw new ArgumentException("the keystream or the output is shorter than the input");
        fixed (byte* i = input, k = keystream, o = output)
            Xor(i, k, o, input.Length, wide);
    }

    /// <summary>output = input XOR keystream (input and output may be the same buffer); with 32-byte vector steps when
    /// <paramref name="wide"/> and the machine has them, else 16-byte ones (the tests check both).</summary>
    internal static unsafe void Xor(byte* input, byte* keystream, byte* output, int length, bool wide)
    {
        int i = 0;
        if (wide && Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= length; i += 32)
                Vector256.Store(Vector256.Load(input + i) ^ Vector256.Load(keystream + i), output + i);
        }
        // Four 16-byte vectors a step: what the NativeAOT engine (baseline x86-64) runs; 43 against 53 ns per
        // 1424-byte packet with one vector a step.
        for (; i + 64 <= length; i += 64)
        {
            Vector128<byte> a = Vector128.Load(input + i) ^ Vector128.Load(keystream + i);
            Vector128<byte> b = Vector128.Load(input + i + 16) ^ Vector128.Load(keystream + i + 16);
            Vector128<byte> c = Vector128.Load(input + i + 32) ^ Vector128.Load(keystream + i + 32);
            Vector128<byte> d = Vector128.Load(input + i + 48) ^ Vector128.Load(keystream + i + 48);
            Vector128.Store(a, output + i);
            Vector128.Store(b, output + i + 16);
            Vector128.Store(c, output + i + 32);
            Vector128.Store(d, output + i + 48);
        }
        for (; i + 16 <= length; i += 16)
            Vector128.Store(Vector128.Load(input + i) ^ Vector128.Load(keystream + i), output + i);
        for (; i < length; i++)
            output[i] = (byte)(input[i] ^ keystream[i]);
    }

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

    /// <summary>
    /// RFC 8439's construction (section 2.8) from two libcrypto primitives: the ChaCha20 stream on a context keyed
    /// once, and the Poly1305 MAC. One cipher call per packet makes the Poly1305 key (block 0) and the keystream for
    /// the whole packet (blocks 1..), always whole 64-byte blocks, into a per-thread buffer; the packet is XORed with
    /// it here; the MAC covers the ciphertext, its zero padding and the two lengths. Against libcrypto's AEAD on one
    /// context (nonce, cipher pass, final, tag) this skips the AEAD's per-packet parameter handling, its separate
    /// call for the Poly1305 key block, and its slow path for a last partial block (a 1424-byte packet cost more
    /// than a 1536-byte one): 705 against 925 ns per 1424-byte packet (Device/README.md).
    /// </summary>
    private sealed unsafe partial class EvpAead : TransportAead
    {
        private const string LibCrypto = "libcrypto.so.3";

        /// <summary>Keystream bytes made per cipher call (whole blocks); a packet up to Chunk - 64 bytes takes one call.</summary>
        private const int Chunk = 4096;

        private static readonly nint s_poly1305 = FetchPoly1305();

        // Input of the keystream calls (ChaCha20 of zeros is the keystream); read only.
        private static readonly byte[] s_zeros = GC.AllocateArray<byte>(Chunk, pinned: true);

        // The keystream of the packet in hand; its first 32 bytes (the one-time Poly1305 key) are wiped after use.
        [ThreadStatic]
        private static byte[]? t_keystream;

        private readonly ContextHandle _cipher;
        private readonly MacHandle _mac;
        private readonly bool _encrypt;

        public EvpAead(ReadOnlySpan<byte> key, bool encrypt)
        {
            if (key.Length != KeySize)
                throw new ArgumentException("ChaCha20-Poly1305 takes a 32-byte key", nameof(key));
            if (s_poly1305 == 0)
                throw new CryptographicException("libcrypto has no Poly1305 MAC");
            _encrypt = encrypt;
            _cipher = EVP_CIPHER_CTX_new();
            if (_cipher.IsInvalid)
                throw new CryptographicException("EVP_CIPHER_CTX_new failed");
            fixed (byte* k = key)
            {
                // Both directions run the cipher forwards: the keystream is made by encrypting zeros.
                if (EVP_CipherInit_ex(_cipher, EVP_chacha20(), 0, k, null, 1) != 1)
                {
                    ERR_clear_error();
                    _cipher.Dispose();
                    throw new CryptographicException("EVP_CipherInit_ex (ChaCha20 key) failed");
                }
            }
            _mac = EVP_MAC_CTX_new(s_poly1305);
            if (_mac.IsInvalid)
            {
                _cipher.Dispose();
                throw new CryptographicException("EVP_MAC_CTX_new (Poly1305) failed");
            }
        }

        private static nint FetchPoly1305()
        {
            try
            {
                return EVP_MAC_fetch(0, "POLY1305", null);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return 0;
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
            Debug.Assert(_encrypt && nonce.Length == NonceSize && tag.Length == TagSize && ciphertext.Length == plaintext.Length);
            bool cipherAdded = false, macAdded = false;
            byte[] keystream = t_keystream ??= GC.AllocateArray<byte>(Chunk, pinned: true);
            try
            {
                _cipher.DangerousAddRef(ref cipherAdded);
                _mac.DangerousAddRef(ref macAdded);
                nint cipher = _cipher.DangerousGetHandle(), mac = _mac.DangerousGetHandle();
                fixed (byte* n = nonce, p = plaintext, c = ciphertext, t = tag, ks = keystream, zeros = s_zeros)
                {
                    int length = plaintext.Length;
                    int first = Math.Min(length, Chunk - 64);
                    if (!Start(cipher, mac, n, ks, zeros, first))
                        Fail("encryption");
                    Xor(p, ks + 64, c, first);
                    if (!Rest(cipher, ks, zeros, p, c, first, length) || !Mac(mac, c, length, t))
                        Fail("encryption");
                }
            }
            finally
            {
                WipeKey(keystream);
                if (macAdded)
                    _mac.DangerousRelease();
                if (cipherAdded)
                    _cipher.DangerousRelease();
            }
        }

        public override bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
        {
            Debug.Assert(!_encrypt && nonce.Length == NonceSize && tag.Length == TagSize && ciphertext.Length == plaintext.Length);
            bool cipherAdded = false, macAdded = false;
            byte[] keystream = t_keystream ??= GC.AllocateArray<byte>(Chunk, pinned: true);
            try
            {
                _cipher.DangerousAddRef(ref cipherAdded);
                _mac.DangerousAddRef(ref macAdded);
                nint cipher = _cipher.DangerousGetHandle(), mac = _mac.DangerousGetHandle();
                Span<byte> expected = stackalloc byte[TagSize];
                fixed (byte* n = nonce, c = ciphertext, p = plaintext, e = expected, ks = keystream, zeros = s_zeros)
                {
                    int length = ciphertext.Length;
                    int first = Math.Min(length, Chunk - 64);
                    // Authenticate before anything is written: the ciphertext may be the plaintext's own memory.
                    bool ok = Start(cipher, mac, n, ks, zeros, first) && Mac(mac, c, length, e)
                        && TagsEqual(expected, tag);
                    if (ok)
                    {
                        Xor(c, ks + 64, p, first);
                        ok = Rest(cipher, ks, zeros, c, p, first, length);
                    }
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
                WipeKey(keystream);
                if (macAdded)
                    _mac.DangerousRelease();
                if (cipherAdded)
                    _cipher.DangerousRelease();
            }
        }

        /// <summary>Sets the nonce (block counter 0), makes block 0 and the keystream for the first <paramref name="first"/> bytes, keys the MAC with block 0's first 32 bytes.</summary>
        private static bool Start(nint cipher, nint mac, byte* nonce, byte* ks, byte* zeros, int first)
        {
            byte* iv = stackalloc byte[16]; // libcrypto's ChaCha20 IV: the 32-bit block counter (little-endian), then the nonce
            *(uint*)iv = 0;
            Buffer.MemoryCopy(nonce, iv + 4, 12, 12);
            int made = 0;
            return EVP_CipherInit_ex(cipher, 0, 0, null, iv, -1) == 1
                && EVP_CipherUpdate(cipher, ks, &made, zeros, 64 + WholeBlocks(first)) == 1
                && EVP_MAC_init(mac, ks, 32, 0) == 1;
        }

        /// <summary>XORs the keystream over the bytes after the first chunk, a chunk per cipher call.</summary>
        private static bool Rest(nint cipher, byte* ks, byte* zeros, byte* input, byte* output, int done, int length)
        {
            while (done < length)
            {
                int count = Math.Min(length - done, Chunk), made = 0;
                if (EVP_CipherUpdate(cipher, ks, &made, zeros, WholeBlocks(count)) != 1)
                    return false;
                Xor(input + done, ks, output + done, count);
                done += count;
            }
            return true;
        }

        /// <summary>Poly1305 over the ciphertext, its zero padding to 16 bytes, and the lengths (no associated data).</summary>
        private static bool Mac(nint mac, byte* ciphertext, int length, byte* tag)
        {
            byte* tail = stackalloc byte[32];
            new Span<byte>(tail, 32).Clear();
            int pad = (16 - (length & 15)) & 15;
            *(ulong*)(tail + pad + 8) = (ulong)length; // little-endian: the engine runs on little-endian machines only
            nuint written = 0;
            return (length == 0 || EVP_MAC_update(mac, ciphertext, (nuint)length) == 1)
                && EVP_MAC_update(mac, tail, (nuint)(pad + 16)) == 1
                && EVP_MAC_final(mac, tag, &written, TagSize) == 1
                && written == TagSize;
        }

        /// <summary>
        /// The two tags compared in constant time: one XOR of the 16 bytes and one test of the whole result (no branch
        /// on any byte). Same guarantee as <see cref="CryptographicOperations.FixedTimeEquals"/>, which is a call into an
        /// unoptimised method per packet (about 1 % of the data path together with its ZeroMemory).
        /// </summary>
        private static bool TagsEqual(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
            (Vector128.Create(a) ^ Vector128.Create(b)) == Vector128<byte>.Zero;

        /// <summary>Wipes the one-time Poly1305 key at the start of the keystream buffer (a store to a heap array: not elided).</summary>
        private static void WipeKey(byte[] keystream) => keystream.AsSpan(0, 32).Clear();

        private static int WholeBlocks(int length) => (length + 63) & ~63;

        private static void Fail(string what)
        {
            ERR_clear_error();
            throw new CryptographicException($"ChaCha20-Poly1305 {what} failed in libcrypto");
        }

        public override void Dispose()
        {
            _mac.Dispose();
            _cipher.Dispose();
        }

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

        public sealed class MacHandle() : SafeHandle(0, ownsHandle: true)
        {
            public override bool IsInvalid => handle == 0;

            // EVP_MAC_CTX_free cleanses the MAC state (it holds the last packet's one-time key).
            protected override bool ReleaseHandle()
            {
                EVP_MAC_CTX_free(handle);
                return true;
            }
        }

        [LibraryImport(LibCrypto)]
        private static partial ContextHandle EVP_CIPHER_CTX_new();

        [LibraryImport(LibCrypto)]
        private static partial void EVP_CIPHER_CTX_free(nint ctx);

        [LibraryImport(LibCrypto)]
        private static partial nint EVP_chacha20();

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherInit_ex(ContextHandle ctx, nint cipher, nint engine, byte* key, byte* iv, int enc);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherInit_ex(nint ctx, nint cipher, nint engine, byte* key, byte* iv, int enc);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_CipherUpdate(nint ctx, byte* output, int* outputLength, byte* input, int inputLength);

        [LibraryImport(LibCrypto, StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint EVP_MAC_fetch(nint libraryContext, string algorithm, string? properties);

        [LibraryImport(LibCrypto)]
        private static partial MacHandle EVP_MAC_CTX_new(nint mac);

        [LibraryImport(LibCrypto)]
        private static partial void EVP_MAC_CTX_free(nint ctx);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_MAC_init(nint ctx, byte* key, nuint keyLength, nint parameters);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_MAC_update(nint ctx, byte* data, nuint length);

        [LibraryImport(LibCrypto)]
        private static partial int EVP_MAC_final(nint ctx, byte* output, nuint* outputLength, nuint outputSize);

        [LibraryImport(LibCrypto)]
        private static partial void ERR_clear_error();
    }
}
