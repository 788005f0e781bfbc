using System.Collections.Concurrent;
using System.Net;
using MkbVpn.Clients;

namespace MkbVpn.Tests;

/// <summary>Many verbs at once, each with its own ClientService (as separate CLI processes would), on one data dir.</summary>
public sealed class ConcurrencyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Paths DataPaths => new(_dir.File("data"));

    private sealed record Outcome(string Name, Client? Added, Exception? Error);

    /// <summary>Starts one Add per name on its own thread, released together, and waits for all.</summary>
    private List<Outcome> AddAllAtOnce(IReadOnlyList<string> names)
    {
        using var gate = new ManualResetEventSlim(false);
        var results = new ConcurrentBag<Outcome>();
        var tasks = names.Select(name => Task.Factory.StartNew(() =>
        {
            var svc = new ClientService(DataPaths);
            gate.Wait();
            try
            {
                var r = svc.Add([new AddRequest(name)]);
                results.Add(new Outcome(name, Assert.Single(r.Clients), null));
            }
            catch (Exception e)
            {
                results.Add(new Outcome(name, null, e));
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        gate.Set();
        Assert.True(Task.WaitAll(tasks, TimeSpan.FromMinutes(3)), "concurrent adds did not finish");
        return [.. results];
    }

    private static void AssertConsistent(IReadOnlyList<Outcome> outcomes, IReadOnlyList<Client> listed, Paths paths)
    {
        var added = outcomes.Where(o => o.Added is not null).ToList();
        // Nothing lost, nothing duplicated: the store holds exactly the clients whose Add succeeded.
        Assert.Equal(added.Select(o => o.Name).Order(), listed.Select(c => c.Name).Order());
        Assert.Equal(listed.Count, listed.Select(c => c.Address4).Distinct().Count());
        Assert.Equal(listed.Count, listed.Select(c => c.Address6).Distinct().Count());
        Assert.Equal(listed.Count, listed.Select(c => c.PublicKey).Distinct().Count());
        foreach (var o in added)
        {
            var c = listed.Single(c => c.Name == o.Name);
            Assert.Equal(o.Added!.Address4, c.Address4);
            Assert.Equal(o.Added.Address6, c.Address6);
            Assert.Equal(o.Added.PublicKey, c.PublicKey);
            Assert.True(File.Exists(paths.ClientConfig(c.Name)), $"no config file for {c.Name}");
        }
        foreach (var o in outcomes.Where(o => o.Error is not null))
            Assert.False(File.Exists(paths.ClientConfig(o.Name)), $"refused {o.Name} left a config file");
        Assert.Equal(listed.Count, Directory.GetFiles(paths.ClientsDir, "*.conf").Length);
        Assert.Empty(Directory.GetFiles(paths.ClientsDir, "*.tmp"));
    }

    [Fact]
    public void Fifty_concurrent_adds_give_fifty_distinct_clients()
    {
        new ClientService(DataPaths).Init(ClientServiceTests.Options());
        var names = Enumerable.Range(1, 50).Select(i => $"user{i:00}").ToList();
        var outcomes = AddAllAtOnce(names);
        Assert.Equal(50, outcomes.Count);

        // A refusal is allowed only as a clean one-line UserInputException, never anything else.
        var errors = outcomes.Where(o => o.Error is not null).ToList();
        Assert.All(errors, o =>
        {
            var u = Assert.IsType<UserInputException>(o.Error);
            Fixtures.AssertOneLine(u.Message);
        });
        var listed = new ClientService(DataPaths).List();
        AssertConsistent(outcomes, listed, DataPaths);
        Assert.Empty(errors.Select(o => $"{o.Name}: {o.Error!.Message}"));   // with a 60 s lock wait, none should be refused
        Assert.Equal(50, listed.Count);
        var v4 = listed.Select(c => Addressing.AddressPool.ToNumber(c.Address4!)).Order().ToList();
        Assert.Equal(Enumerable.Range(2, 50).Select(i => Addressing.AddressPool.ToNumber(IPAddress.Parse($"203.0.113.{i}"))), v4);
    }

    [Fact]
    public void Concurrent_adds_into_a_small_pool_fill_it_exactly()
    {
        new ClientService(DataPaths).Init(ClientServiceTests.Options("203.0.113.0/27"));   // 29 client addresses
        var names = Enumerable.Range(1, 40).Select(i => $"dev{i:00}").ToList();
        var outcomes = AddAllAtOnce(names);
        var listed = new ClientService(DataPaths).List();
        AssertConsistent(outcomes, listed, DataPaths);
        Assert.Equal(29, listed.Count);
        var refused = outcomes.Where(o => o.Error is not null).ToList();
        Assert.Equal(11, refused.Count);
        Assert.All(refused, o => Assert.Equal(ExitCodes.PoolFull, Assert.IsType<UserInputException>(o.Error).ExitCode));
    }

    [Fact]
    public void Concurrent_adds_of_the_same_name_add_it_once()
    {
        new ClientService(DataPaths).Init(ClientServiceTests.Options());
        var names = Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? "shared" : "SHARED").ToList();
        var outcomes = AddAllAtOnce(names);
        Assert.Single(outcomes, o => o.Added is not null);
        Assert.All(outcomes.Where(o => o.Error is not null),
            o => Assert.Equal(ExitCodes.Conflict, Assert.IsType<UserInputException>(o.Error).ExitCode));
        Assert.Single(new ClientService(DataPaths).List());
    }

    [Fact]
    public async Task Concurrent_removes_and_adds_keep_store_and_files_in_step()
    {
        var paths = DataPaths;
        var setup = new ClientService(paths);
        setup.Init(ClientServiceTests.Options());
        var old = Enumerable.Range(1, 10).Select(i => $"old{i:00}").ToList();
        setup.Add([.. old.Select(n => new AddRequest(n))]);

        using var gate = new ManualResetEventSlim(false);
        var errors = new ConcurrentBag<Exception>();
        var work = old.Select(n => (Action)(() => new ClientService(paths).Remove([n])))
            .Concat(Enumerable.Range(1, 20).Select(i => (Action)(() => new ClientService(paths).Add([new AddRequest($"new{i:00}")]))))
            .ToList();
        var tasks = work.Select(a => Task.Factory.StartNew(() =>
        {
            gate.Wait();
            try { a(); }
            catch (Exception e) { errors.Add(e); }
        }, TaskCreationOptions.LongRunning)).ToArray();
        gate.Set();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Empty(errors.Select(e => e.Message));

        var listed = new ClientService(paths).List();
        Assert.Equal(Enumerable.Range(1, 20).Select(i => $"new{i:00}"), listed.Select(c => c.Name).Order());
        Assert.Equal(20, listed.Select(c => c.Address4).Distinct().Count());
        Assert.Equal(20, listed.Select(c => c.Address6).Distinct().Count());
        Assert.Equal(listed.Select(c => c.Name + ".conf").Order(StringComparer.Ordinal),
            Directory.GetFiles(paths.ClientsDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Concurrent_store_writers_serialise_without_losing_rows()
    {
        string db = Path.Combine(_dir.Path, Storage.Store.FileName);
        using (Storage.Store.Open(db, create: true)) { }
        using var gate = new ManualResetEventSlim(false);
        var errors = new ConcurrentBag<Exception>();
        var tasks = Enumerable.Range(2, 20).Select(i => Task.Factory.StartNew(() =>
        {
            gate.Wait();
            try
            {
                using var store = Storage.Store.Open(db, create: false);
                using var tx = store.BeginWrite();
                // Read-then-write inside one IMMEDIATE transaction: the count seen is the count written.
                int before = store.ListClients().Count;
                store.InsertClient(Fixtures.Client($"w{before:00}", c => c with
                {
                    Address4 = IPAddress.Parse($"203.0.113.{before + 2}"),
                    Address6 = null,
                }));
                tx.Commit();
            }
            catch (Exception e) { errors.Add(e); }
        }, TaskCreationOptions.LongRunning)).ToArray();
        gate.Set();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Empty(errors.Select(e => e.Message));
        using var check = Storage.Store.Open(db, create: false);
        var names = check.ListClients().Select(c => c.Name).ToList();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"w{i:00}"), names);
    }
}
