namespace MkbVpn.WireGuard.Protocol;

/// <summary>What the caller of <see cref="Tunnel"/> must do with the bytes it got back.</summary>
internal enum TunnelResultKind
{
    /// <summary>Nothing to send or deliver.</summary>
    Done,
    /// <summary>Send the first <see cref="TunnelResult.Length"/> bytes of the destination buffer to the peer's endpoint.</summary>
    WriteToNetwork,
    /// <summary>Write the first <see cref="TunnelResult.Length"/> bytes of the destination buffer (an IPv4 packet) to the TUN device.</summary>
    WriteToTunnelV4,
    /// <summary>Write the first <see cref="TunnelResult.Length"/> bytes of the destination buffer (an IPv6 packet) to the TUN device.</summary>
    WriteToTunnelV6,
    /// <summary>The input was dropped; see <see cref="TunnelResult.Error"/>.</summary>
    Error,
}

/// <summary>Why an input was dropped. Every error is counted per tunnel; none is thrown.</summary>
internal enum TunnelError
{
    None,
    /// <summary>Unknown message type, wrong size or non-zero reserved bytes.</summary>
    Malformed,
    /// <summary>The destination buffer cannot hold the output, or overlaps the input in a way that is not in place.</summary>
    BufferTooSmall,
    /// <summary>A handshake message whose mac1 is wrong (the sender does not know our public key).</summary>
    InvalidMac,
    /// <summary>A handshake step failed; see <see cref="TunnelResult.Handshake"/>.</summary>
    HandshakeFailed,
    /// <summary>A cookie reply that does not authenticate against our last handshake message.</summary>
    InvalidCookieReply,
    /// <summary>Transport data for a session index we do not hold.</summary>
    UnknownIndex,
    /// <summary>Transport data on a keypair older than Reject-After-Time.</summary>
    ExpiredKeypair,
    /// <summary>Transport data whose tag does not verify.</summary>
    DecryptionFailed,
    /// <summary>A counter already seen, too old for the window, or at Reject-After-Messages.</summary>
    Replay,
    /// <summary>An authenticated payload that is not an IPv4 or IPv6 packet of consistent length.</summary>
    InvalidIpPacket,
}

/// <summary>The result of one <see cref="Tunnel"/> call; the bytes are in the caller's destination buffer.</summary>
internal readonly record struct TunnelResult(TunnelResultKind Kind, int Length, TunnelError Error, HandshakeStatus Handshake)
{
    public static TunnelResult Done => default;
    public static TunnelResult ToNetwork(int length) => new(TunnelResultKind.WriteToNetwork, length, TunnelError.None, HandshakeStatus.Ok);
    public static TunnelResult ToTunnel(bool isV6, int length) =>
        new(isV6 ? TunnelResultKind.WriteToTunnelV6 : TunnelResultKind.WriteToTunnelV4, length, TunnelError.None, HandshakeStatus.Ok);
    public static TunnelResult Failed(TunnelError error, HandshakeStatus handshake = HandshakeStatus.Ok) =>
        new(TunnelResultKind.Error, 0, error, handshake);

    /// <summary>
    /// For a WriteToTunnel result: the inner packet's source address (4 or 16 bytes) in <paramref name="packet"/>
    /// (the destination buffer). Cryptokey routing on receive (whitepaper 2.2) is the caller's check: the source
    /// must route back to the peer the packet came from, or the packet is dropped.
    /// </summary>
    public ReadOnlySpan<byte> InnerSource(ReadOnlySpan<byte> packet) => Kind switch
    {
        TunnelResultKind.WriteToTunnelV4 => packet.Slice(12, 4),
        TunnelResultKind.WriteToTunnelV6 => packet.Slice(8, 16),
        _ => throw new InvalidOperationException("only a packet for the tunnel has an inner source"),
    };
}

/// <summary>Counters of one tunnel, for wg(8)-style statistics and diagnostics.</summary>
internal sealed class TunnelCounters
{
    private readonly long[] _errors = new long[Enum.GetValues<TunnelError>().Length];

    public long ReceivedBytes { get; internal set; }
    public long SentBytes { get; internal set; }
    public long Errors(TunnelError error) => _errors[(int)error];
    public long TotalErrors => _errors.Sum();

    internal TunnelResult Count(TunnelResult result)
    {
        if (result.Kind == TunnelResultKind.Error)
            _errors[(int)result.Error]++;
        return result;
    }
}
