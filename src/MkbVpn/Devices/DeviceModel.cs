using System.Net;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Devices;

/// <summary>What the store wants a peer on the live interface to be.</summary>
public sealed record PeerSpec(WireGuardKey PublicKey, WireGuardKey PresharedKey, IReadOnlyList<IPNetwork> AllowedIps);

/// <summary>What the live interface reports of a peer.</summary>
public sealed record PeerState
{
    public required WireGuardKey PublicKey { get; init; }
    public WireGuardKey? PresharedKey { get; init; }
    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];
    public string? Endpoint { get; init; }
    public DateTimeOffset? LastHandshake { get; init; }
    public long RxBytes { get; init; }
    public long TxBytes { get; init; }
    public int PersistentKeepalive { get; init; }
}

/// <summary>What the live interface reports of itself.</summary>
public sealed record InterfaceState
{
    public WireGuardKey? PrivateKey { get; init; }
    public int ListenPort { get; init; }
    public required IReadOnlyList<PeerState> Peers { get; init; }
}

/// <summary>One per-peer change to apply to a live interface.</summary>
public abstract record PeerChange(WireGuardKey PublicKey)
{
    /// <summary>Create or fully update a peer (pre-shared key, allowed IPs replaced).</summary>
    public sealed record Upsert(PeerSpec Spec) : PeerChange(Spec.PublicKey);

    public sealed record Remove(WireGuardKey Key) : PeerChange(Key);

    /// <summary>
    /// Make the server initiate a handshake to a peer at its last known endpoint: turning a
    /// persistent keepalive on sends one keepalive at once, which needs a session, so a
    /// handshake starts now instead of when the client's app gives up on its old session.
    /// </summary>
    public sealed record Kick(WireGuardKey Key, string Endpoint) : PeerChange(Key);
}

/// <summary>Interface-wide settings plus per-peer changes, applied in one go.</summary>
public sealed record DeviceChanges
{
    public WireGuardKey? PrivateKey { get; init; }
    public int? ListenPort { get; init; }
    public IReadOnlyList<PeerChange> Peers { get; init; } = [];

    public bool IsEmpty => PrivateKey is null && ListenPort is null && Peers.Count == 0;
}

/// <summary>A live WireGuard interface: kernel (through wg) or userspace (UAPI socket).</summary>
public interface IWireGuardDevice
{
    string Name { get; }

    InterfaceState Read();

    /// <summary>
    /// The interface's private key alone (null: none set), to tell whose interface it is. By default a whole
    /// <see cref="Read"/> (UAPI has no smaller get); wg(8) asks for the key only.
    /// </summary>
    WireGuardKey? ReadPrivateKey() => Read().PrivateKey;

    void Apply(DeviceChanges changes);
}
