using Microsoft.Data.Sqlite;
using MkbVpn.Clients;
using MkbVpn.Storage;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

/// <summary>Migration 4 (public-key-only clients) on a store written by schema 2 (Fixtures/schema2/mkb-vpn.db, made by the code before migrations 3 and 4).</summary>
public sealed class PublicKeyOnlyMigrationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static object? Scalar(string db, string sql)
    {
        using var c = new SqliteConnection($"Data Source={db};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    [Fact]
    public void Schema_2_store_is_migrated_keeping_every_row_and_then_takes_a_client_without_private_key()
    {
        string db = _dir.File(Store.FileName);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "schema2", Store.FileName), db);
        Assert.Equal(2L, Scalar(db, "PRAGMA user_version"));
        string alicePriv = (string)Scalar(db, "SELECT private_key FROM clients WHERE name = 'alice'")!;

        using (var store = Store.Open(db, create: false))
        {
            Assert.Equal(Store.SchemaVersion, (int)(long)Scalar(db, "PRAGMA user_version")!);
            var clients = store.ListClients();
            Assert.Equal(["alice", "bob", "dave", "erin"], clients.Select(c => c.Name));
            Assert.False(clients[1].Enabled);
            Assert.Equal(alicePriv, clients[0].PrivateKey!.ToBase64());
            Assert.Equal("mkbfix0", store.RequireServer().Interface);
            Assert.Single(store.ListAdmins());

            // The same connection that migrated takes a NULL private key at once.
            var pub = WireGuardKeys.PublicKeyOf(WireGuardKeys.NewPrivateKey());
            using var tx = store.BeginWrite();
            store.InsertClient(Fixtures.Client("keyless", c => c with { PrivateKey = null, PublicKey = pub, Address4 = System.Net.IPAddress.Parse("203.0.113.9"), Address6 = null }));
            tx.Commit();
        }
        Assert.Equal("ok", Scalar(db, "PRAGMA integrity_check"));
        Assert.Equal(1L, Scalar(db, "SELECT count(*) FROM clients WHERE private_key IS NULL"));
        Assert.Equal(1L, Scalar(db, "SELECT count(*) FROM api_tokens"));
        using (var again = Store.Open(db, create: false))
        {
            var keyless = again.RequireClient("keyless");
            Assert.Null(keyless.PrivateKey);
            Assert.Equal(5, again.ListClients().Count);
        }
    }

    [Fact]
    public void Migration_4_fails_loudly_and_changes_nothing_when_the_clients_table_is_written_differently()
    {
        string db = _dir.File(Store.FileName);
        Scalar(db, "CREATE TABLE clients (id INTEGER PRIMARY KEY, private_key TEXT  NOT NULL); PRAGMA user_version = 3;");
        var e = Assert.Throws<InvalidOperationException>(() => Store.Open(db, create: false));
        Assert.Contains("migration 4", e.Message);
        Assert.Equal(3L, Scalar(db, "PRAGMA user_version"));
    }

    [Fact]
    public void A_fresh_store_allows_a_missing_private_key_too()
    {
        using var store = Store.Open(_dir.File(Store.FileName), create: true);
        using var tx = store.BeginWrite();
        store.SaveServer(Fixtures.Server());
        store.InsertClient(Fixtures.Client("k", c => c with { PrivateKey = null }));
        tx.Commit();
        Assert.Null(store.RequireClient("k").PrivateKey);
    }
}
