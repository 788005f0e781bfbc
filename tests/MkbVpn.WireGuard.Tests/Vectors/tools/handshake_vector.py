#!/usr/bin/env python3
"""Independent reference for HandshakeVectors.cs: Noise_IKpsk2 as written in the WireGuard
whitepaper (5.4.2-5.4.5), using Python's hashlib/hmac (BLAKE2s) and the `cryptography` package
(X25519, ChaCha20-Poly1305). Deterministic inputs; prints the C# constants. MACs are included:
mac1 = MAC(HASH("mac1----" || Spub_receiver), msg up to mac1), mac2 = zeros (no cookie)."""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization as ser

def HASH(*xs): return hashlib.blake2s(b"".join(xs)).digest()
def MAC(k, x): return hashlib.blake2s(x, key=k, digest_size=16).digest()
def HMAC(k, x): return hmac.new(k, x, hashlib.blake2s).digest()
def KDF(n, k, x):
    t0 = HMAC(k, x); out = []; prev = b""
    for i in range(1, n + 1):
        prev = HMAC(t0, prev + bytes([i])); out.append(prev)
    return out
def pub(k): return X25519PrivateKey.from_private_bytes(k).public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
def DH(k, p): return X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(p))
def AEAD(k, c, p, a): return ChaCha20Poly1305(k).encrypt(b"\0" * 4 + struct.pack("<Q", c), p, a)

seq = lambda start: bytes((start + i) & 0xff for i in range(32))
def clamp(k): k = bytearray(k); k[0] &= 248; k[31] = (k[31] & 127) | 64; return bytes(k)
Si, Sr, Ei, Er = clamp(seq(0x10)), clamp(seq(0x40)), clamp(seq(0x70)), clamp(seq(0xa0))
Q = seq(0xd0)
Ii, Ir = 0x11223344, 0x55667788
# TAI64N for 2020-01-01T00:00:00.5Z, nanoseconds whitened with mask 0xffffff
secs = 1577836800; nanos = 500_000_000 & ~0xffffff
T = struct.pack(">QI", 0x400000000000000a + secs, nanos)

C = HASH(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
H = HASH(C, b"WireGuard v1 zx2c4 Jason@zx2c4.com")
H = HASH(H, pub(Sr))
Epub = pub(Ei)
C = KDF(1, C, Epub)[0]; H = HASH(H, Epub)
C, k = KDF(2, C, DH(Ei, pub(Sr)))
static = AEAD(k, 0, pub(Si), H); H = HASH(H, static)
C, k = KDF(2, C, DH(Si, pub(Sr)))
ts = AEAD(k, 0, T, H); H = HASH(H, ts)
init = struct.pack("<I", 1) + struct.pack("<I", Ii) + Epub + static + ts
init += MAC(HASH(b"mac1----", pub(Sr)), init) + bytes(16)
assert len(init) == 148

Erpub = pub(Er)
C = KDF(1, C, Erpub)[0]; H = HASH(H, Erpub)
C = KDF(1, C, DH(Er, Epub))[0]
C = KDF(1, C, DH(Er, pub(Si)))[0]
C, tau, k = KDF(3, C, Q)
H = HASH(H, tau)
empty = AEAD(k, 0, b"", H); H = HASH(H, empty)
resp = struct.pack("<I", 2) + struct.pack("<I", Ir) + struct.pack("<I", Ii) + Erpub + empty
resp += MAC(HASH(b"mac1----", pub(Si)), resp) + bytes(16)
assert len(resp) == 92
Tsend_i, Trecv_i = KDF(2, C, b"")
# First transport message initiator -> responder: a 20-byte payload padded to 32, counter 0.
payload = bytes(range(20)) + bytes(12)
data = struct.pack("<IIQ", 4, Ir, 0) + AEAD(Tsend_i, 0, payload, b"")

for name, v in [("InitiatorStatic", Si), ("ResponderStatic", Sr), ("InitiatorEphemeral", Ei),
                ("ResponderEphemeral", Er), ("PresharedKey", Q), ("Initiation", init), ("Response", resp),
                ("InitiatorSendKey", Tsend_i), ("InitiatorReceiveKey", Trecv_i), ("FirstData", data)]:
    print(f'    public const string {name} = "{v.hex()}";')
