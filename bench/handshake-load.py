#!/usr/bin/env python3
"""Handshake responder benchmark for bench/engine-throughput.sh: how many handshake initiations per second a
WireGuard responder completes (answers with a handshake response).

Configures 512 peers on the responder (wg set), pre-computes valid Noise_IKpsk2 initiations from them (whitepaper
5.4.2, mac1 set, no mac2), then offers them at rising rates (500 to 24,000 per second, 1.5 s per step, at most 50
per second per peer, the flood limit of wireguard-go and mkb-vpn) from a UDP socket in the generator's namespace.
Counts handshake responses and cookie replies (a responder "under load" answers with cookies instead). Prints the
best step's responses per second. Runs itself inside the generator namespace (ip netns exec). Bounded in count and
time. Keys here are throwaway benchmark keys; none is printed.
"""
import argparse, hashlib, hmac, os, socket, struct, subprocess, sys, time, base64
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
def h(*parts): return hashlib.blake2s(b"".join(parts), digest_size=32).digest()
def mac(key, data): return hashlib.blake2s(data, key=key, digest_size=16).digest()
def hm(key, data): return hmac.new(key, data, lambda: hashlib.blake2s(digest_size=32)).digest()
def kdf2(c, x):
    t0 = hm(c, x); t1 = hm(t0, b"\x01"); return t1, hm(t0, t1 + b"\x02")
def kdf1(c, x): return hm(hm(c, x), b"\x01")
def aead(key, plain, ad): return ChaCha20Poly1305(key).encrypt(b"\x00" * 12, plain, ad)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns-gen", required=True); ap.add_argument("--ns-resp", required=True)
    ap.add_argument("--iface", required=True); ap.add_argument("--target", required=True)
    ap.add_argument("--source", required=True); ap.add_argument("--inside", action="store_true")
    ap.add_argument("--peers", type=int, default=512)
    a = ap.parse_args()
    if not a.inside:
        os.execvp("ip", ["ip", "netns", "exec", a.ns_gen, sys.executable, __file__, *sys.argv[1:], "--inside"])

    resp_pub = base64.b64decode(subprocess.check_output(["ip", "netns", "exec", a.ns_resp, "wg", "show", a.iface, "public-key"]).strip())
    keys = [X25519PrivateKey.generate() for _ in range(a.peers)]
    pubs = [k.public_key().public_bytes(**RAW) for k in keys]
    args = ["ip", "netns", "exec", a.ns_resp, "wg", "set", a.iface]
    for p in pubs:
        args += ["peer", base64.b64encode(p).decode()]
    subprocess.check_call(args)

    c0 = h(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
    h0 = h(h(c0, b"WireGuard v1 zx2c4 Jason@zx2c4.com"), resp_pub)
    mac1_key = h(b"mac1----", resp_pub)
    rpub = X25519PublicKey.from_public_bytes(resp_pub)
    ss = [k.exchange(rpub) for k in keys]
    now = int(time.time())
    counters = [0] * a.peers

    def initiation(i, sender):
        e = X25519PrivateKey.generate(); epub = e.public_key().public_bytes(**RAW)
        c = kdf1(c0, epub); hh = h(h0, epub)
        c, k = kdf2(c, e.exchange(rpub)); st = aead(k, pubs[i], hh); hh = h(hh, st)
        c, k = kdf2(c, ss[i]); counters[i] += 1
        ts = struct.pack(">QI", 0x400000000000000a + now, counters[i] * 1000)
        tt = aead(k, ts, hh)
        m = struct.pack("<II", 1, sender) + epub + st + tt
        return m + mac(mac1_key, m) + b"\x00" * 16

    host, port = a.target.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((a.source, 0)); s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    dst = (host, int(port))
    steps = [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000]
    step_time = 1.5
    best = 0.0
    report = []
    sender = 1
    for rate in steps:
        if rate > a.peers * 50:
            break
        n = int(rate * step_time)
        msgs = []
        for j in range(n):
            msgs.append(initiation(j % a.peers, sender)); sender += 1
        time.sleep(0.03)  # the per-peer flood interval since the last step
        responses = cookies = 0
        last = start = time.monotonic()
        for j, m in enumerate(msgs):
            due = start + j / rate
            while True:
                t = time.monotonic()
                try:
                    while True:
                        d = s.recv(256)
                        if d[0] == 2: responses += 1; last = time.monotonic()
                        elif d[0] == 3: cookies += 1
                except BlockingIOError:
                    pass
                if t >= due: break
                time.sleep(min(0.001, due - t))
            s.sendto(m, dst)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            try:
                d = s.recv(256)
                if d[0] == 2: responses += 1; last = time.monotonic()
                elif d[0] == 3: cookies += 1
            except BlockingIOError:
                time.sleep(0.001)
        # responses per second over the time they took to arrive (at least the time they were offered in)
        elapsed = max(last - start, step_time * min(1.0, responses / n))
        done = responses / elapsed if responses else 0.0
        report.append(f"{rate}/s offered: {responses} responses, {cookies} cookie replies")
        best = max(best, done)
        if responses < n * 0.5:
            break  # the responder is saturated (or demands cookies): higher steps show nothing new
    print("\n".join(report), file=sys.stderr)
    print(f"{best:.0f}")

main()
