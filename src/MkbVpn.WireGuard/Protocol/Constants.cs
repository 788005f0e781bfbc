namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// Protocol constants. The Specification block is fixed by the WireGuard whitepaper
/// (J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel", revision e2da747)
/// and must not change; the Implementation block holds this engine's own choices.
/// Wire sizes sit beside their message in <see cref="Messages"/>.
/// </summary>
internal static class Constants
{
    // ---------------------------------------------------------------------------------
    // Specification
    // ---------------------------------------------------------------------------------

    /// <summary>Section 5.4: the Noise protocol name, hashed into the initial chaining key.</summary>
    public const string Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

    /// <summary>Section 5.4: the identifier mixed into the initial handshake hash.</summary>
    public const string Identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";

    /// <summary>Section 5.4.4: label for the MAC1 key, HASH(LabelMac1 || Spub).</summary>
    public const string LabelMac1 = "mac1----";

    /// <summary>Section 5.4.7: label for the cookie encryption key, HASH(LabelCookie || Spub).</summary>
    public const string LabelCookie = "cookie--";

    /// <summary>Section 6.1: after this many messages a new handshake is initiated (2^60).</summary>
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>
    /// Section 6.1: a keypair is never used for more messages than this (2^64 - 2^13 - 1).
    /// Counters at or above this value are rejected on receive.
    /// </summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    /// <summary>Section 6.1: an initiator starts a new handshake when its keypair is this old.</summary>
    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);

    /// <summary>Section 6.1: a keypair older than this is never used to send or receive.</summary>
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);

    /// <summary>Section 6.1 and 6.4: handshake retries stop after this long.</summary>
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);

    /// <summary>Section 6.1 and 6.4: a handshake initiation is retransmitted after this long without a response.</summary>
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Section 6.1 and 6.5: a keepalive is sent if nothing was sent this long after a receive.</summary>
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Section 5.4.7 and 6.6: cookies and the cookie secret live this long.</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    /// <summary>Section 6.3: key material is zeroed when no new handshake happened in 3 x Reject-After-Time.</summary>
    public static readonly TimeSpan ZeroKeysAfter = RejectAfterTime * 3;

    /// <summary>
    /// Section 6.2: an initiator that receives on a keypair this old starts a new handshake
    /// (Reject-After-Time - Keepalive-Timeout - Rekey-Timeout), so that it is done before rejection.
    /// </summary>
    public static readonly TimeSpan RekeyOnReceiveAfterTime = RejectAfterTime - KeepaliveTimeout - RekeyTimeout;

    /// <summary>Section 6.5: a handshake is started if a sent data packet got no reply in this long.</summary>
    public static readonly TimeSpan NewHandshakeAfterSilence = KeepaliveTimeout + RekeyTimeout;

    /// <summary>Section 6.4: the retransmit timer has up to a third of a second of random jitter.</summary>
    public static readonly TimeSpan MaxRekeyJitter = TimeSpan.FromMilliseconds(333);

    /// <summary>Section 5.4.6: data payloads are zero-padded to a multiple of this many bytes.</summary>
    public const int PaddingMultiple = 16;

    // ---------------------------------------------------------------------------------
    // Implementation
    // ---------------------------------------------------------------------------------

    /// <summary>
    /// Rekey-Attempt-Time / Rekey-Timeout (90 s / 5 s), wireguard-go's MaxTimerHandshakes. As wireguard-go, the
    /// retransmit timer gives up once the attempt count exceeds it: 1 initiation + 19 retransmissions, 20 in all
    /// (its log: "giving up after MaxTimerHandshakes+2 attempts"); then the queued packets are dropped.
    /// </summary>
    public const int MaxHandshakeAttempts = 18;

    /// <summary>
    /// Minimum interval between accepted initiations from one peer (wireguard-go: 1 s / 50).
    /// Protects the responder from replayed-but-valid initiation floods (whitepaper 5.1).
    /// </summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Replay window bitmap, as the Linux kernel (COUNTER_BITS_TOTAL): 8192 bits in 64-bit blocks,
    /// one block of which is slack, so 8128 counters behind the newest are accepted (RFC 6479).
    /// </summary>
    public const int ReplayBitsTotal = 8192;

    /// <summary>Packets held per peer while a handshake is in progress (wireguard-go: QueueStagedSize 128).</summary>
    public const int MaxQueuedPackets = 128;

    /// <summary>Handshake messages waiting for a handshake worker at most; more are dropped (wireguard-go: QueueHandshakeSize).</summary>
    public const int HandshakeQueueSize = 1024;

    /// <summary>
    /// The device is "under load" (demands MAC2, section 5.3) while this many handshake messages wait for a worker,
    /// and for a second after (wireguard-go: QueueHandshakeSize / 8). Used by the device with <see cref="HandshakeLoad"/>.
    /// </summary>
    public const int UnderLoadQueueLength = HandshakeQueueSize / 8;

    /// <summary>Per-source-address token bucket for handshakes once under load (wireguard-go ratelimiter: 20/s, burst 5).</summary>
    public const int HandshakesPerSecondPerSource = 20;

    /// <summary>Burst allowance for <see cref="HandshakesPerSecondPerSource"/>.</summary>
    public const int HandshakeBurstPerSource = 5;

    /// <summary>TAI64N nanoseconds are rounded down to this mask's granularity (~16.7 ms, as wireguard-go) to avoid leaking fine clock timing.</summary>
    public const uint TimestampWhitenerMask = 0x1000000 - 1;
}
