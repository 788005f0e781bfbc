using System.Collections.Concurrent;
using System.Net;
using MkbVpn.Clients;

namespace MkbVpn.Tests;

/// <summary>Many verbs at once, each with its own ClientService (as separate CLI processes would), on one data dir; on SQLite and on PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ConcurrencyTests(PostgresServer pg)
{

    private sealed record Outcome(string Name, Client? Added, Exception? Error);

    /// <summary>Starts one Add per name on its own thread, released together, and waits for all.</summary>
    private static List<Outcome> AddAllAtOnce(IReadOnlyList<string> names, Func<int, ClientService> service)
    {
        using var gate = new ManualResetEventSlim(false);
        var results = new ConcurrentBag<Outcome>();
        var tasks = names.Select((name, i) => Task.Factory.StartNew(() =>
        {
            var svc = service(i);
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Fifty_concurrent_adds_give_fifty_distinct_clients(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var dataPaths = db.Paths();
        new ClientService(dataPaths).Init(ClientServiceTests.Options());
        var names = Enumerable.Range(1, 50).Select(i => $"user{i:00}").ToList();
        var outcomes = AddAllAtOnce(names, _ => new ClientService(dataPaths));
        Assert.Equal(50, outcomes.Count);

        // A refusal is allowed only as a clean one-line UserInputException, never anything else.
        var errors = outcomes.Where(o => o.Error is not null).ToList();
        Assert.All(errors, o =>
        {
            var u = Assert.IsType<UserInputException>(o.Error);
            Fixtures.AssertOneLine(u.Message);
        });
        var listed = new ClientService(dataPaths).List();
        AssertConsistent(outcomes, listed, dataPaths);
        Assert.Empty(errors.Select(o => $"{o.Name}: {o.Error!.Message}"));   // with a 60 s lock wait, none should be refused
        Assert.Equal(50, listed.Count);
        var v4 = listed.Select(c => Addressing.AddressPool.ToNumber(c.Address4!)).Order().ToList();
        Assert.Equal(Enumerable.Range(2, 50).Select(i => Addressing.AddressPool.ToNumber(IPAddress.Parse($"203.0.113.{i}"))), v4);
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Concurrent_adds_into_a_small_pool_fill_it_exactly(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var dataPaths = db.Paths();
        new ClientService(dataPaths).Init(ClientServiceTests.Options("203.0.113.0/27"));   // 29 client addresses
        var names = Enumerable.Range(1, 40).Select(i => $"dev{i:00}").ToList();
        var outcomes = AddAllAtOnce(names, _ => new ClientService(dataPaths));
        var listed = new ClientService(dataPaths).List();
        AssertConsistent(outcomes, listed, dataPaths);
        Assert.Equal(29, listed.Count);
        var refused = outcomes.Where(o => o.Error is not null).ToList();
        Assert.Equal(11, refused.Count);
        Assert.All(refused, o => Assert.Equal(ExitCodes.PoolFull, Assert.IsType<UserInputException>(o.Error).ExitCode));
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public void Concurrent_adds_of_the_same_name_add_it_once(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var dataPaths = db.Paths();
        new ClientService(dataPaths).Init(ClientServiceTests.Options());
        var names = Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? "shared" : "SHARED").ToList();
        var outcomes = AddAllAtOnce(names, _ => new ClientService(dataPaths));
        Assert.Single(outcomes, o => o.Added is not null);
        Assert.All(outcomes.Where(o => o.Error is not null),
            o => Assert.Equal(ExitCodes.Conflict, Assert.IsType<UserInputException>(o.Error).ExitCode));
        Assert.Single(new ClientService(dataPaths).List());
    }

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public async Task Concurrent_removes_and_adds_keep_store_and_files_in_step(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var dataPaths = db.Paths();
        var paths = dataPaths;
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

    [Theory]
    [MemberData(nameof(TestStore.Both), MemberType = typeof(TestStore))]
    public async Task Concurrent_store_writers_serialise_without_losing_rows(Backend backend)
    {
        using var db = new TestStore(backend, pg);
        var dataPaths = db.Paths();
        using (db.Open(create: true)) { }
        using var gate = new ManualResetEventSlim(false);
        var errors = new ConcurrentBag<Exception>();
        var tasks = Enumerable.Range(2, 20).Select(i => Task.Factory.StartNew(() =>
        {
            gate.Wait();
            try
            {
                using var store = db.Open(create: false);
                using var tx = store.BeginWrite();
                // Read-then-write inside one write transaction (SQLite: IMMEDIATE; PostgreSQL: the advisory
                // lock first): the count seen is the count written.
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
        using var check = db.Open(create: false);
        var names = check.ListClients().Select(c => c.Name).ToList();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"w{i:00}"), names);
    }

    /// <summary>
    /// Two hosts on one PostgreSQL registry: each its own data directory (config files, lock file) and
    /// no file lock at all, so only the database keeps the adds apart. 20 adds at once, 10 through
    /// each host: 20 clients, 20 distinct addresses, nothing lost.
    /// </summary>
    [Fact]
    public void Twenty_adds_from_two_hosts_without_a_file_lock_get_distinct_addresses()
    {
        using var db = new TestStore(Backend.Postgres, pg);
        var hostA = db.Paths("host-a");
        var hostB = db.Paths("host-b");
        new ClientService(hostA).Init(ClientServiceTests.Options());
        hostB.EnsureCreated();
        var noLock = ServiceHost.Live() with { Lock = new NoLock() };
        var names = Enumerable.Range(1, 20).Select(i => $"h{i:00}").ToList();
        var outcomes = AddAllAtOnce(names, i => new ClientService(i % 2 == 0 ? hostA : hostB, noLock));
        Assert.Empty(outcomes.Where(o => o.Error is not null).Select(o => $"{o.Name}: {o.Error!.Message}"));
        var listed = new ClientService(hostB).List();
        Assert.Equal(names, listed.Select(c => c.Name).Order());
        Assert.Equal(20, listed.Select(c => c.Address4).Distinct().Count());
        Assert.Equal(20, listed.Select(c => c.Address6).Distinct().Count());
        foreach (var o in outcomes)
            Assert.Equal(o.Added!.Address4, listed.Single(c => c.Name == o.Name).Address4);
        // Each host wrote the config files of the clients it added, and only those.
        Assert.Equal(10, Directory.GetFiles(hostA.ClientsDir, "*.conf").Length);
        Assert.Equal(10, Directory.GetFiles(hostB.ClientsDir, "*.conf").Length);
        var v4 = listed.Select(c => Addressing.AddressPool.ToNumber(c.Address4!)).Order().ToList();
        Assert.Equal(Enumerable.Range(2, 20).Select(i => Addressing.AddressPool.ToNumber(IPAddress.Parse($"203.0.113.{i}"))), v4);
    }

    /// <summary>A lock that holds nothing back: correctness must come from the database.</summary>
    private sealed class NoLock : IDataLock
    {
        public IDisposable Acquire(string lockFile, TimeSpan wait) => new Nothing();

        private sealed class Nothing : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}
