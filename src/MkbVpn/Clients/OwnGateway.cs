using MkbVpn.Access;
using MkbVpn.Gateways;
using MkbVpn.Storage;

namespace MkbVpn.Clients;

/// <summary>
/// The clients the registry server's own interface serves (the one 'up' without --gateway runs and
/// every verb changes live): exactly those its own gateway (the one holding the registry server's
/// key, 'main') serves, the membership filter 'up --gateway' applies on every other gateway. A client
/// without a gateway list is served by every gateway, so by this one too; on a registry with no
/// other gateway that is everyone, as on a single server. With no gateway holding the server's key
/// (it was removed with --force), only the clients without a gateway list (their configs are the
/// registry server's, <see cref="ConfigHomes"/>).
/// </summary>
internal sealed class OwnGateway
{
    private readonly long? _own;
    /// <summary>A client's gateway ids (empty: every gateway); null: every client is served (no gateway but the own one).</summary>
    private readonly Func<long, IReadOnlyList<long>>? _servedBy;

    private OwnGateway(IReadOnlyList<Gateway> gateways, long? own, Func<long, IReadOnlyList<long>>? servedBy)
    {
        Gateways = gateways;
        _own = own;
        _servedBy = servedBy;
    }

    /// <summary>Every gateway of the registry, in the order of 'gateway list' (by name, then id).</summary>
    public IReadOnlyList<Gateway> Gateways { get; }

    /// <summary>The id of the gateway holding the registry server's key ('main'); null when none does.</summary>
    public static long? IdOf(IReadOnlyList<Gateway> gateways, ServerSettings registry) =>
        gateways.FirstOrDefault(g => g.PublicKey.Equals(registry.PublicKey))?.Id;

    /// <summary>
    /// The filter as the store has it now. With <paramref name="clients"/> (a few): only their
    /// gateway memberships are read; without, every membership at once.
    /// </summary>
    public static OwnGateway Load(Store store, ServerSettings registry, IReadOnlyCollection<Client>? clients = null)
    {
        var gateways = store.ListGateways();   // by name, then id: the order of 'gateway list'
        long? own = IdOf(gateways, registry);
        // Only the own gateway (or none yet): a membership can name no other (foreign key), so everyone is served.
        if (gateways.All(g => g.Id == own))
            return new OwnGateway(gateways, own, null);
        if (clients is not null && clients.Count <= 64)
        {
            var few = new Dictionary<long, IReadOnlyList<long>>();
            foreach (var c in clients)
                few[c.Id] = store.GatewaysOf(c.Id);
            return new OwnGateway(gateways, own, id => few.TryGetValue(id, out var ids) ? ids : store.GatewaysOf(id));
        }
        var members = store.LoadGatewayMemberships();
        return new OwnGateway(gateways, own, id => members.TryGetValue(id, out var ids) ? ids : []);
    }

    /// <summary>The id of the gateway holding the registry server's key; null when none does.</summary>
    public long? Id => _own;

    /// <summary>Whether the registry server's interface serves the client (blocked or not: that is the caller's).</summary>
    public bool Serves(Client c) => _servedBy is null || _servedBy(c.Id) is var ids && (ids.Count == 0 || _own is { } own && ids.Contains(own));

    /// <summary>The ids of the gateways that serve the client; empty: every gateway.</summary>
    public IReadOnlyList<long> GatewaysOf(Client c) => _servedBy?.Invoke(c.Id) ?? [];

    /// <summary>The clients of <paramref name="clients"/> it serves.</summary>
    public List<Client> Filter(IEnumerable<Client> clients) => [.. clients.Where(Serves)];

    /// <summary><paramref name="policy"/> with only the clients it serves: what its firewall holds.</summary>
    public AccessPolicy Firewall(AccessPolicy policy) => _servedBy is null ? policy : policy.Of(Filter(policy.Clients));
}
