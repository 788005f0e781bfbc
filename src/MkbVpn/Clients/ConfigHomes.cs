using MkbVpn.Access;
using MkbVpn.Configs;
using MkbVpn.Gateways;
using MkbVpn.Storage;

namespace MkbVpn.Clients;

/// <summary>
/// Each client's <b>home gateway</b>: whose settings its default config uses (its config file,
/// show and qr without --gateway, the page's QR code and download; docs/gateways.md). A client
/// served by every gateway, or by the registry's own gateway (the one with the registry server's
/// key, 'main'), renders with the registry's settings exactly as a single server does. Any other
/// client renders with the settings of the first gateway that serves it in the order of 'gateway
/// list' (by name, case-insensitive, then id). Every config writer renders through this class.
/// </summary>
internal sealed class ConfigHomes
{
    private readonly ServerSettings _registry;
    private readonly OwnGateway _gateways;
    private readonly Dictionary<long, ServerSettings> _settings = [];

    private ConfigHomes(ServerSettings registry, OwnGateway gateways)
    {
        _registry = registry;
        _gateways = gateways;
    }

    /// <summary>
    /// The homes on <paramref name="registry"/> (the registry's settings as the caller has them; a
    /// policy given to <see cref="Render"/> must be built on them). With <paramref name="clients"/>
    /// (a few): only their gateway memberships are read; without, every membership at once.
    /// </summary>
    public static ConfigHomes Load(Store store, ServerSettings registry, IReadOnlyCollection<Client>? clients = null) =>
        new(registry, OwnGateway.Load(store, registry, clients));

    /// <summary>The homes from the gateways and memberships a caller has already read for its live interface.</summary>
    public static ConfigHomes Of(OwnGateway gateways, ServerSettings registry) => new(registry, gateways);

    /// <summary>The client's home gateway when it is not the registry's own settings; null: the registry's settings.</summary>
    public Gateway? GatewayOf(Client c)
    {
        var ids = _gateways.GatewaysOf(c);
        if (ids.Count == 0 || _gateways.Id is { } own && ids.Contains(own))
            return null;
        // A membership always names an existing gateway (foreign key); none found: the registry's, as for no membership.
        return _gateways.Gateways.FirstOrDefault(g => ids.Contains(g.Id));
    }

    /// <summary>The settings the client's default config is rendered with.</summary>
    public ServerSettings ServerOf(Client c)
    {
        if (GatewayOf(c) is not { } g)
            return _registry;
        if (!_settings.TryGetValue(g.Id, out var s))
            _settings[g.Id] = s = g.Serve(_registry);
        return s;
    }

    /// <summary>What the client's default config routes: <paramref name="policy"/>'s rules on its home's settings.</summary>
    public IReadOnlyList<System.Net.IPNetwork> Routes(AccessPolicy policy, Client c) => policy.On(ServerOf(c)).ConfigAllowedIps(c);

    /// <summary>The client's default config: its home's key, endpoint and routes. <paramref name="policy"/> is built on the registry's settings.</summary>
    public string Render(AccessPolicy policy, Client c)
    {
        var server = ServerOf(c);
        return ClientConfig.Render(server, c, policy.On(server).ConfigAllowedIps(c));
    }
}
