using System.Net;
using MkbVpn.Clients;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>A private temporary directory, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mkbvpn-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

public static class Fixtures
{
    /// <summary>An interface name that must not exist on the test machine.</summary>
    public const string Interface = "mkbunit0";

    public static WireGuardKey Key(byte fill)
    {
        var b = new byte[32];
        Array.Fill(b, fill);
        return WireGuardKey.FromBytes(b);
    }

    public static ServerSettings Server(Func<ServerSettings, ServerSettings>? change = null)
    {
        var priv = WireGuardKeys.NewPrivateKey();
        var s = new ServerSettings
        {
            Interface = Interface,
            PrivateKey = priv,
            PublicKey = WireGuardKeys.PublicKeyOf(priv),
            ListenPort = 51820,
            EndpointHost = "vpn.example.com",
            EndpointPort = 51820,
            Subnet4 = IPNetwork.Parse("203.0.113.0/24"),
            Subnet6 = IPNetwork.Parse("fd00:1234:5678::/64"),
            Dns = ["203.0.113.1"],
            Mtu = 1420,
            InternalNetworks = [IPNetwork.Parse("198.51.100.0/24")],
            FullTunnel = false,
            Masquerade = false,
            ClientToClient = false,
            Keepalive = 25,
            CreatedAt = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero),
        };
        return change is null ? s : change(s);
    }

    public static Client Client(string name = "alice", Func<Client, Client>? change = null)
    {
        var priv = WireGuardKeys.NewPrivateKey();
        var c = new Client
        {
            Id = 0,
            Name = name,
            PrivateKey = priv,
            PublicKey = WireGuardKeys.PublicKeyOf(priv),
            PresharedKey = WireGuardKeys.NewPresharedKey(),
            Address4 = IPAddress.Parse("203.0.113.2"),
            Address6 = IPAddress.Parse("fd00:1234:5678::2"),
            Enabled = true,
            CreatedAt = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero),
        };
        return change is null ? c : change(c);
    }

    public static void AssertOneLine(string message)
    {
        Assert.False(string.IsNullOrWhiteSpace(message));
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain('\r', message);
    }
}
