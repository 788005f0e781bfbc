using Microsoft.Data.Sqlite;
using MkbVpn.Clients;
using MkbVpn.Storage;

namespace MkbVpn.Tests;

/// <summary>What a crash, a failed init or a damaged database leave behind, and what the next verb makes of it.</summary>
public sealed class RobustnessTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ClientService Service() => new(new Paths(_dir.File("data")));

    [Fact]
    public void A_failed_first_init_leaves_no_data_directory()
    {
        var svc = Service();
        var e = Assert.ThrowsAny<UserInputException>(() => svc.Init(ClientServiceTests.Options() with { Endpoint = null }));
        Assert.StartsWith("endpoint: ", e.Message);
        Assert.False(Directory.Exists(svc.Paths.DataDir));
        svc.Init(ClientServiceTests.Options());   // and a proper init works afterwards
        Assert.True(File.Exists(svc.Paths.Database));
    }

    [Fact]
    public void A_failed_init_change_keeps_the_server()
    {
        var svc = Service();
        svc.Init(ClientServiceTests.Options());
        Assert.ThrowsAny<UserInputException>(() => svc.Init(ClientServiceTests.Options() with { Change = true, Mtu = 100 }));
        Assert.ThrowsAny<UserInputException>(() => svc.Init(ClientServiceTests.Options() with { Change = true, Subnet4 = "203.0.113.0/33" }));
        Assert.Equal(Fixtures.Interface, svc.GetServer().Interface);
    }

    [Fact]
    public void An_empty_database_file_reads_as_not_initialised_and_stays_empty()
    {
        var svc = Service();
        Directory.CreateDirectory(svc.Paths.DataDir);
        File.WriteAllBytes(svc.Paths.Database, []);
        var e = Assert.Throws<UserInputException>(() => svc.List());
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
        Assert.Equal(0, new FileInfo(svc.Paths.Database).Length);
        svc.Init(ClientServiceTests.Options());   // init takes it over
        Assert.Empty(svc.List());
    }

    [Fact]
    public void Staged_config_files_of_a_killed_verb_are_removed_by_the_next_one()
    {
        var svc = Service();
        svc.Init(ClientServiceTests.Options());
        string orphan = Path.Combine(svc.Paths.ClientsDir, "ghost.conf.tmp");
        File.WriteAllText(orphan, "[Interface]\nPrivateKey = (a key of a client that never existed)\n");
        svc.Add([new AddRequest("alice")]);
        Assert.False(File.Exists(orphan));
        Assert.Equal(["alice.conf"], Directory.GetFiles(svc.Paths.ClientsDir).Select(Path.GetFileName));
    }

    [Fact]
    public void A_row_that_does_not_parse_is_reported_and_does_not_hide_the_others()
    {
        var svc = Service();
        svc.Init(ClientServiceTests.Options());
        svc.Add([new AddRequest("alice"), new AddRequest("bob")]);
        using (var db = new SqliteConnection($"Data Source={svc.Paths.Database};Pooling=false"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE clients SET public_key = 'not a key' WHERE name = 'bob'";
            cmd.ExecuteNonQuery();
        }
        // Writers and reconcilers refuse the store (exit 8, one line) ...
        var e = Assert.Throws<UserInputException>(() => svc.List());
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("restore", e.Message);
        Fixtures.AssertOneLine(e.Message);
        Assert.Equal(ExitCodes.Database, Assert.Throws<UserInputException>(() => svc.Get("bob")).ExitCode);
        // ... while the views list everyone else and name the damaged row.
        var damaged = new List<string>();
        Assert.Equal(["alice"], svc.List(null, damaged).Select(c => c.Name));
        var line = Assert.Single(damaged);
        Assert.Contains("'bob'", line);
        Assert.Contains("restore", line);
        Fixtures.AssertOneLine(line);
        var report = svc.Status();
        Assert.Equal(["alice"], report.Clients.Select(c => c.Client.Name));
        Assert.Single(report.Damaged!);
        // The web page's and the API's paged list too, with and without the live filter.
        foreach (var state in new[] { ClientStateFilter.All, ClientStateFilter.Enabled, ClientStateFilter.Offline })
        {
            var page = svc.Query(null, state, 1, 50);
            Assert.Equal(["alice"], page.Items.Select(c => c.Client.Name));
            Assert.Contains("'bob'", Assert.Single(page.Damaged));
        }
        Assert.Empty(svc.Query("alice", ClientStateFilter.All, 1, 50).Damaged);
    }
}
