using System.Net;
using MkbVpn.Clients;
using MkbVpn.Configs;

namespace MkbVpn.Tests;

/// <summary>A client whose config would not fit a QR code is refused before anything is committed (issue 12, fault 5).</summary>
public sealed class QrFitTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ClientService _svc;

    public QrFitTests()
    {
        _svc = new ClientService(new Paths(_dir.File("data")));
        _svc.Init(ClientServiceTests.Options());
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>64 long IPv6 networks (the most allowed): a config of about 3,300 bytes.</summary>
    private static List<IPNetwork> LongNetworks() =>
        [.. Enumerable.Range(0, ClientService.MaxListEntries).Select(i => IPNetwork.Parse($"fd00:1234:5678:9abc:def0:1234:5678:{i:x4}/128"))];

    [Fact]
    public void The_limit_is_what_a_qr_code_holds()
    {
        Assert.True(QrCodes.Fits(new string('a', QrCodes.MaxBytes)));
        Assert.True(QrCodes.Png(new string('a', QrCodes.MaxBytes)).Length > 100);
        Assert.False(QrCodes.Fits(new string('a', QrCodes.MaxBytes + 1)));
        Assert.ThrowsAny<Exception>(() => QrCodes.Png(new string('a', QrCodes.MaxBytes + 1)));
    }

    [Fact]
    public void Add_refuses_a_config_too_large_for_a_qr_code_and_commits_nothing()
    {
        var e = Assert.Throws<FieldException>(() => _svc.Add([new AddRequest("toolong") { AllowedIps = LongNetworks() }]));
        Assert.Equal("allowed-ips", e.Field);
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.StartsWith("allowed-ips: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("QR code", e.Message, StringComparison.Ordinal);
        Assert.Empty(_svc.List());
        Assert.Empty(Directory.Exists(_svc.Paths.ClientsDir) ? Directory.GetFiles(_svc.Paths.ClientsDir) : []);
        Assert.DoesNotContain(_svc.AuditLog(null, null).Items, a => a.Action == "add");

        // 32 of them fit, and the QR code can be drawn.
        var ok = _svc.Add([new AddRequest("fits") { AllowedIps = LongNetworks()[..32] }]).Clients[0];
        Assert.True(QrCodes.Png(_svc.QrConfigText(ok.Name)).Length > 100);
    }

    [Fact]
    public void Set_refuses_a_config_too_large_for_a_qr_code_and_changes_nothing()
    {
        _svc.Add([new AddRequest("edited")]);
        string before = _svc.ConfigText("edited");
        var e = Assert.Throws<FieldException>(() => _svc.Set(new SetRequest("edited") { AllowedIps = [.. LongNetworks().Select(n => n.ToString())] }));
        Assert.Equal("allowed-ips", e.Field);
        Assert.Null(_svc.Get("edited").Client.AllowedIps);
        Assert.Equal(before, _svc.ConfigText("edited"));
        Assert.Equal(before, File.ReadAllText(_svc.Paths.ClientConfig("edited")));
    }
}

/// <summary>Rules add routes to split-tunnel configs: a rule change must not make a config too large for its QR code.</summary>
public sealed class RuleQrFitTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ClientService _svc;

    public RuleQrFitTests()
    {
        _svc = new ClientService(new Paths(_dir.File("data")), new ManualTime(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero)));
        _svc.Init(ClientServiceTests.Options() with { InternalNetworks = ["198.51.100.0/24", "fd00:99::/32"] });
        _svc.Add([new AddRequest("alice")]);
        foreach (var rule in _svc.ListRules().Where(r => r.ToString().StartsWith("everyone -> internal", StringComparison.Ordinal)))
            _svc.Revoke(rule.Id);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_rule_that_would_overflow_a_clients_QR_code_is_refused_and_nothing_changes()
    {
        FieldException? refused = null;
        int allowed = 0;
        for (int i = 1; i <= 400 && refused is null; i++)
        {
            // Scattered /128s: routes that cannot merge into a shorter list.
            try
            {
                _svc.Allow(new AllowRequest("everyone", $"fd00:99:{i:x}::{i * 7:x}/128"));
                allowed++;
            }
            catch (FieldException e)
            {
                refused = e;
            }
        }
        Assert.NotNull(refused);
        Assert.Equal("to", refused.Field);
        Assert.Contains("'alice'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("QR code", refused.Message, StringComparison.Ordinal);
        Assert.True(allowed > 50, $"only {allowed} rules were allowed before the refusal");

        // The refused rule is not stored, and alice's config is the one before it, still fitting a QR code.
        Assert.Equal(allowed, _svc.ListRules().Count(r => r.ToString().StartsWith("everyone -> fd00:99:", StringComparison.Ordinal)));
        string conf = File.ReadAllText(_svc.Paths.ClientConfig("alice"));
        Assert.True(QrCodes.Fits(conf));
        Assert.Equal(allowed, conf.Split('\n').Single(l => l.StartsWith("AllowedIPs", StringComparison.Ordinal)).Split(',').Count(r => r.Contains("fd00:99:", StringComparison.Ordinal)));
    }
}
