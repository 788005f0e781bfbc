using System.Net;
using System.Net.Sockets;
using MkbVpn.Addressing;
using MkbVpn.Configs.Importers;
using MkbVpn.Network;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Clients;

/// <summary>What the admin adds to an import: what the old tool did not store, or a different choice.</summary>
public sealed record ImportOptions
{
    /// <summary>HOST[:PORT] clients dial; required when the old tool did not store it (wg-easy v14, wg-quick without client files).</summary>
    public string? Endpoint { get; init; }
    public int? Port { get; init; }
    public IReadOnlyList<string>? InternalNetworks { get; init; }
    public string? Interface { get; init; }
    public bool DryRun { get; init; }
}

/// <summary>An import worked out in full: the server and every client as the store will hold them.</summary>
public sealed record ImportPlan(
    string Tool,
    ServerSettings Server,
    IReadOnlyList<Client> Clients,
    IReadOnlyList<(string From, string To)> Renamed,
    IReadOnlyList<string> Notes);

/// <summary>An import refused: every problem, one line each (FILE:LINE: ...). Nothing was written.</summary>
public sealed class ImportRefusedException(IReadOnlyList<string> problems, int exitCode = ExitCodes.UserError)
    : UserInputException($"import refused: {problems.Count} problem{(problems.Count == 1 ? "" : "s")}, nothing imported", exitCode)
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

public sealed partial class ClientService
{
    /// <summary>
    /// Checks everything the reader found and works out the store's server and clients. Pure:
    /// reads nothing but <paramref name="src"/>. Throws <see cref="ImportRefusedException"/> with
    /// every problem at once.
    /// </summary>
    public ImportPlan PlanImport(ImportSource src, ImportOptions o)
    {
        var problems = new List<string>(src.Problems);
        var notes = new List<string>(src.Notes);
        var s = src.Server;
        if (s is null)
        {
            if (problems.Count == 0)
                problems.Add($"{src.Tool}: no server found");
            throw new ImportRefusedException(problems);
        }
        var serverPub = WireGuardKeys.PublicKeyOf(s.PrivateKey);
        if (s.PublicKey is { } storedPub && !storedPub.Equals(serverPub))
            problems.Add($"{s.Origin}: the server's private key does not match its stored public key");

        // Settings: what the tool stored, else the admin's options, else our defaults.
        string iface = o.Interface ?? ServerSettings.DefaultInterface;
        if (!IsInterfaceName(iface))
            problems.Add($"--interface: '{UserInputException.Shown(iface)}' is not a valid interface name (1-15 of a-z A-Z 0-9 _)");
        int port = o.Port ?? s.ListenPort ?? ServerSettings.DefaultPort;
        if (o.Port is < 1 or > 65535)
            problems.Add($"--port: {o.Port} is not a port (1-65535)");
        string? endpointHost = s.EndpointHost;
        int endpointPort = s.EndpointPort ?? port;
        if (o.Endpoint is not null)
        {
            try
            {
                (endpointHost, endpointPort) = Cidr.ParseEndpoint(o.Endpoint, port);
            }
            catch (UserInputException e)
            {
                problems.Add($"--endpoint: {e.Message}");
            }
        }
        else if (endpointHost is null)
            problems.Add($"{s.Origin}: {src.Tool} did not store the endpoint clients dial: pass --endpoint HOST[:PORT]");
        else
        {
            try
            {
                (endpointHost, endpointPort) = Cidr.ParseEndpoint(Cidr.FormatEndpoint(endpointHost, endpointPort), endpointPort);
            }
            catch (UserInputException e)
            {
                problems.Add($"{s.Origin}: the stored endpoint: {e.Message}");
            }
        }
        AddressPool? pool4 = null, pool6 = null;
        foreach (var (subnet, v4) in new[] { (s.Subnet4, true), (s.Subnet6, false) })
        {
            if (subnet is not { } n)
                continue;
            try
            {
                var pool = new AddressPool(n);
                if (v4) pool4 = pool; else pool6 = pool;
                var own = v4 ? s.Address4 : s.Address6;
                if (own is not null && !own.Equals(pool.ServerAddress))
                    notes.Add($"{s.Origin}: the server's tunnel address becomes {pool.ServerAddress} (was {own}); clients are not affected unless they use {own} (e.g. as DNS)");
            }
            catch (UserInputException e)
            {
                problems.Add($"{s.Origin}: {e.Message}");
            }
        }
        if (s.Subnet4 is null && s.Subnet6 is null)
            problems.Add($"{s.Origin}: no tunnel subnet (Address) found");
        var dns = s.Dns ?? [];
        foreach (var d in dns)
            if (!IPAddress.TryParse(d, out _))
                problems.Add($"{s.Origin}: DNS '{UserInputException.Shown(d)}' is not an address");
        var defaults = s.ClientAllowedIps ?? [];
        bool fullTunnel = defaults.Any(n => n.PrefixLength == 0);
        var internals = new List<IPNetwork>();
        if (o.InternalNetworks is not null)
        {
            foreach (var text in o.InternalNetworks)
            {
                try
                {
                    internals.Add(AsField("internal-network", () => Cidr.ParseNetwork(text, "internal-network")));
                }
                catch (UserInputException e)
                {
                    problems.Add(e.Message);
                }
            }
        }
        else
        {
            // Split tunnel: the networks clients route besides the VPN's own are the internal networks.
            internals.AddRange(defaults.Where(n => n.PrefixLength > 0 && !Inside(n, s.Subnet4) && !Inside(n, s.Subnet6)).Distinct());
        }

        var server = new ServerSettings
        {
            Interface = iface,
            PrivateKey = s.PrivateKey,
            PublicKey = serverPub,
            ListenPort = port,
            EndpointHost = endpointHost ?? "",
            EndpointPort = endpointPort,
            Subnet4 = s.Subnet4,
            Subnet6 = s.Subnet6,
            Dns = dns,
            Mtu = s.Mtu ?? ServerSettings.DefaultMtu,
            InternalNetworks = internals,
            FullTunnel = fullTunnel,
            Masquerade = false,
            ClientToClient = false,
            Keepalive = s.Keepalive ?? ServerSettings.DefaultKeepalive,
            CreatedAt = Now,
        };

        // Clients: names mapped, keys checked, no address or key twice, every address inside its subnet.
        // A valid name is kept by its first holder; a second "phone" (wg-easy allows that) is mapped like an invalid one.
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var keepsName = src.Clients.Select(c => c.Name is { } n && ClientName.IsValid(n) && taken.Add(n)).ToList();
        var renamed = new List<(string, string)>();
        var clients = new List<Client>();
        var keys = new Dictionary<WireGuardKey, string>();
        var addresses = new Dictionary<IPAddress, string>();
        for (int i = 0; i < src.Clients.Count; i++)
        {
            var c = src.Clients[i];
            string name;
            if (keepsName[i])
                name = c.Name!;
            else
            {
                name = ClientNameMapping.Map(c.Name, taken, i);
                renamed.Add((c.Name is null ? $"(unnamed peer at {c.Origin})" : $"'{UserInputException.Shown(c.Name)}'", name));
            }
            if (!keys.TryAdd(c.PublicKey, c.Origin))
                problems.Add($"{c.Origin}: the same public key as the peer at {keys[c.PublicKey]}");
            if (c.PrivateKey is { } priv && !WireGuardKeys.PublicKeyOf(priv).Equals(c.PublicKey))
                problems.Add($"{c.Origin}: client '{name}': its private key does not match its public key");
            if (c.PublicKey.Equals(serverPub))
                problems.Add($"{c.Origin}: client '{name}' has the server's own public key");
            if (c.Address4 is null && c.Address6 is null)
                problems.Add($"{c.Origin}: client '{name}' has no tunnel address");
            foreach (var (a, pool, family) in new[] { (c.Address4, pool4, "IPv4"), (c.Address6, pool6, "IPv6") })
            {
                if (a is null)
                    continue;
                if (pool is null)
                    problems.Add($"{c.Origin}: client '{name}' has the {family} address {a} but the server has no {family} subnet");
                else if (!pool.IsAssignable(a))
                    problems.Add($"{c.Origin}: client '{name}': {a} is outside {pool.Subnet} or a reserved address (network, broadcast, the server's {pool.ServerAddress})");
                if (!addresses.TryAdd(a, c.Origin))
                    problems.Add($"{c.Origin}: client '{name}': address {a} is also the address of the peer at {addresses[a]}");
            }
            if (c.PrivateKey is null)
                notes.Add($"{c.Origin}: '{name}' has no private key in {src.Tool}'s files: imported as public key only (its device keeps working; 'show' cannot give its config)");
            if (!c.Enabled)
                notes.Add($"{c.Origin}: '{name}' is imported blocked: {c.DisabledBy ?? "disabled"}");
            clients.Add(new Client
            {
                Id = 0,
                Name = name,
                PrivateKey = c.PrivateKey,
                PublicKey = c.PublicKey,
                PresharedKey = c.PresharedKey ?? WireGuardKey.FromBytes(new byte[WireGuardKey.Size]),
                Address4 = c.Address4,
                Address6 = c.Address6,
                Enabled = c.Enabled,
                CreatedAt = c.CreatedAt ?? Now,
                Dns = c.Dns is { } cd && !cd.SequenceEqual(dns) ? cd : null,
                AllowedIps = c.AllowedIps,
                Keepalive = c.Keepalive,
            });
        }
        if (problems.Count > 0)
            throw new ImportRefusedException(problems);
        return new ImportPlan(src.Tool, server, clients, renamed, notes);
    }

    private static bool Inside(IPNetwork n, IPNetwork? subnet) =>
        subnet is { } s && s.BaseAddress.AddressFamily == n.BaseAddress.AddressFamily && s.PrefixLength <= n.PrefixLength && s.Contains(n.BaseAddress);

    /// <summary>
    /// Imports into a fresh data directory: all or nothing. The server and every client are written
    /// in one transaction; a data directory that already holds a server is refused.
    /// </summary>
    public ImportPlan Import(ImportSource src, ImportOptions o)
    {
        var plan = PlanImport(src, o);
        var problems = new List<string>();
        if (File.Exists(Paths.Database))
        {
            using var existing = Store.Open(Paths, create: false);
            if (existing.GetServer() is not null)
                throw new ImportRefusedException([$"{Paths.DataDir}: mkb-vpn is already initialised here; import only into a fresh data directory (or 'mkb-vpn restore')"], ExitCodes.Conflict);
        }
        foreach (var (subnet, flag) in new[] { (plan.Server.Subnet4, "IPv4 subnet"), (plan.Server.Subnet6, "IPv6 subnet") })
        {
            if (subnet is not { } n)
                continue;
            foreach (var host in HostNetwork.HostNetworks())
                if (host.PrefixLength > 0 && Cidr.Overlaps(host, n))
                    problems.Add($"the {flag} {n} overlaps the host's network {host} (is the old tool's interface still up? stop it first)");
        }
        if (problems.Count > 0)
            throw new ImportRefusedException(problems);
        if (o.DryRun)
            return plan;

        Paths.EnsureCreated();
        using var held = Lock();
        using var store = Store.Open(Paths, create: true);
        using (var tx = store.BeginWrite())
        {
            if (store.GetServer() is not null)
                throw new ImportRefusedException([$"{Paths.DataDir}: mkb-vpn is already initialised here"], ExitCodes.Conflict);
            store.SaveServer(plan.Server);
            InsertDefaultRules(store);
            foreach (var c in plan.Clients)
                store.InsertClient(c);
            store.AppendAudit(Now, Actor, "import", plan.Server.Interface, null,
                $"from {plan.Tool}: {plan.Clients.Count} clients ({plan.Clients.Count(c => !c.Enabled)} blocked, {plan.Clients.Count(c => c.PrivateKey is null)} public key only)");
            tx.Commit();
        }
        WriteAllConfigs(store, plan.Server);
        return plan;
    }
}
