using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Devices;

/// <summary>
/// The per-peer difference between what the store wants and what the interface has.
/// Pure: no I/O. Peers that already match are left alone, so their sessions are never touched.
/// </summary>
public static class Reconciler
{
    public static DeviceChanges Diff(
        WireGuardKey privateKey, int listenPort, IReadOnlyCollection<PeerSpec> desired, InterfaceState actual,
        IReadOnlyDictionary<WireGuardKey, string>? kickEndpoints = null)
    {
        var changes = new List<PeerChange>();
        var live = new Dictionary<WireGuardKey, PeerState>();
        foreach (var p in actual.Peers)
            live[p.PublicKey] = p;
        var wanted = new HashSet<WireGuardKey>();
        foreach (var spec in desired)
        {
            wanted.Add(spec.PublicKey);
            bool needsUpsert = !live.TryGetValue(spec.PublicKey, out var have) || !Matches(spec, have);
            if (needsUpsert)
                changes.Add(new PeerChange.Upsert(spec));
            // A peer (re)created without an endpoint: try its last known one at once.
            bool lacksEndpoint = have is null || have.Endpoint is null;
            if (lacksEndpoint && kickEndpoints is not null && kickEndpoints.TryGetValue(spec.PublicKey, out var ep))
                changes.Add(new PeerChange.Kick(spec.PublicKey, ep));
        }
        foreach (var p in actual.Peers)
            if (!wanted.Contains(p.PublicKey))
                changes.Add(new PeerChange.Remove(p.PublicKey));
        return new DeviceChanges
        {
            PrivateKey = Equals(actual.PrivateKey, privateKey) ? null : privateKey,
            ListenPort = actual.ListenPort == listenPort ? null : listenPort,
            Peers = changes,
        };
    }

    public static bool Matches(PeerSpec spec, PeerState have) =>
        Equals(spec.PresharedKey, have.PresharedKey) &&
        spec.AllowedIps.Count == have.AllowedIps.Count &&
        spec.AllowedIps.ToHashSet().SetEquals(have.AllowedIps);
}
