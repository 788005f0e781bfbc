using MkbVpn.Clients;

namespace MkbVpn.Tests;

/// <summary>init's rules live in the service with field-named errors; the CLI maps fields to its flags (no flag names here).</summary>
public sealed class InitFieldTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("subnet", "198.51.100.0/33")]
    [InlineData("subnet", "fd00:1::/64")]
    [InlineData("internal-network", "nonsense")]
    [InlineData("dns", "dns.example.com")]
    [InlineData("mtu", "100")]
    [InlineData("keepalive", "70000")]
    [InlineData("interface", "bad name!")]
    [InlineData("port", "0")]
    public void Bad_init_input_names_its_field_and_no_flag(string field, string value)
    {
        var svc = new ClientService(new Paths(_dir.File("data")));
        var o = ClientServiceTests.Options();
        o = field switch
        {
            "subnet" => o with { Subnet4 = value },
            "internal-network" => o with { InternalNetworks = [value] },
            "dns" => o with { Dns = [value] },
            "mtu" => o with { Mtu = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            "keepalive" => o with { Keepalive = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            "interface" => o with { Interface = value },
            "port" => o with { Port = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            _ => throw new ArgumentException(field),
        };
        var e = Assert.Throws<FieldException>(() => svc.Init(o));
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ": ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("--", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(svc.Paths.Database) && new FileInfo(svc.Paths.Database).Length > 0, "a refused init leaves no store");
    }
}
