using MkbVpn.Clients;
using MkbVpn.Storage;
using Npgsql;

namespace MkbVpn.Tests;

/// <summary>Every test of <see cref="AccessServiceTests"/> (groups, rules, set, expiry, audit) again, with the store in PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class AccessServiceTestsOnPostgres : AccessServiceTests
{
    private readonly PostgresServer _pg;
    private readonly string _location;

    public AccessServiceTestsOnPostgres(PostgresServer pg)
        : this(pg, pg.NewDatabase())
    {
    }

    private AccessServiceTestsOnPostgres(PostgresServer pg, string location)
        : base(location)
    {
        _pg = pg;
        _location = location;
    }

    protected override string? SqlError(string sql)
    {
        try
        {
            _pg.Sql(_location, sql);
            return null;
        }
        catch (PostgresException e)
        {
            return e.MessageText;
        }
    }

    [Fact]
    public void The_audit_log_cannot_be_truncated_either()
    {
        Assert.Contains("append-only", SqlError("TRUNCATE audit_log"));
        Assert.Contains("append-only", SqlError("TRUNCATE audit_log CASCADE"));
    }
}

/// <summary>What only a PostgreSQL store can get wrong: reaching the server, logging in, keeping the password out of messages.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStoreTests(PostgresServer pg)
{
    [Fact]
    public void Unreachable_server_is_a_one_line_database_error()
    {
        // A loopback port nothing listens on: the probe's, closed again.
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var e = Assert.Throws<UserInputException>(() => Store.Open(StoreLocation.Parse($"postgresql://mkb@127.0.0.1:{port}/nothing?connect_timeout=5"), create: false));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains($"postgresql://mkb@127.0.0.1:{port}/nothing", e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void Wrong_password_is_refused_in_one_line_that_does_not_show_it()
    {
        string location = pg.NewDatabase();
        using var dir = new TempDir();
        string wrong = "not-the-password-" + Guid.NewGuid().ToString("N");
        string passfile = dir.File("pgpass");
        File.WriteAllText(passfile, $"127.0.0.1:{pg.Port}:*:*:{wrong}\n");
        File.SetUnixFileMode(passfile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string withWrong = location.Split("?passfile=")[0] + "?passfile=" + Uri.EscapeDataString(passfile);
        var e = Assert.Throws<UserInputException>(() => Store.Open(StoreLocation.Parse(withWrong), create: true));
        Assert.Equal(ExitCodes.Database, e.ExitCode);
        Assert.Contains("password authentication failed", e.Message);
        Assert.DoesNotContain(wrong, e.Message);
        Assert.DoesNotContain(pg.Password, e.Message);
        Assert.DoesNotContain(passfile, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Fact]
    public void The_password_from_PGPASSWORD_works_without_a_passfile()
    {
        string location = pg.NewDatabase().Split('?')[0];
        string? before = Environment.GetEnvironmentVariable("PGPASSWORD");
        Environment.SetEnvironmentVariable("PGPASSWORD", pg.Password);
        try
        {
            using var store = Store.Open(StoreLocation.Parse(location), create: true);
            Assert.Equal(Store.SchemaVersion, store.UserVersion());
            Assert.DoesNotContain(pg.Password, store.Path);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PGPASSWORD", before);
        }
    }

    [Fact]
    public void A_database_with_the_schema_but_no_server_is_not_initialised_for_the_service()
    {
        string location = pg.NewDatabase();
        using (Store.Open(StoreLocation.Parse(location), create: true)) { }
        using var dir = new TempDir();
        var e = Assert.Throws<UserInputException>(() => new ClientService(new Paths(dir.File("data"), location)).List());
        Assert.Equal(ExitCodes.NotInitialised, e.ExitCode);
        Assert.Contains("mkb-vpn init", e.Message);
        Assert.DoesNotContain("passfile", e.Message);
    }

    [Fact]
    public async Task Stores_opened_at_once_on_an_empty_database_create_the_schema_once()
    {
        string location = pg.NewDatabase();
        using var gate = new ManualResetEventSlim(false);
        var opens = Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(() =>
        {
            gate.Wait();
            using var store = Store.Open(StoreLocation.Parse(location), create: true);
            return store.UserVersion();
        }, TaskCreationOptions.LongRunning)).ToArray();
        gate.Set();
        var versions = await Task.WhenAll(opens).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(versions, v => Assert.Equal(Store.SchemaVersion, v));
        Assert.Equal(1L, pg.Scalar(location, "SELECT count(*) FROM schema_version"));
        using var check = Store.Open(StoreLocation.Parse(location), create: false);
        Assert.Empty(check.ListRules());   // migration 3 ran once, on an empty server table
    }

    [Fact]
    public void Migrations_run_step_by_step_on_postgresql_too()
    {
        // A registry left at schema 2 (before groups, rules, audit, expiry, public-key-only clients, TOTP steps).
        string location = pg.NewDatabase();
        using (var old = Store.OpenAtVersion(StoreLocation.Parse(location), 2))
            Assert.Equal(2, old.UserVersion());
        pg.Sql(location, """
            INSERT INTO server (id, interface, private_key, public_key, listen_port, endpoint_host, endpoint_port, subnet4, subnet6, dns, mtu, internal_networks, full_tunnel, masquerade, client_to_client, keepalive, created_at)
            VALUES (1, 'wg0', 'KEY', 'PUB', 51820, 'vpn.example.com', 51820, '203.0.113.0/24', NULL, '203.0.113.1', 1420, '198.51.100.0/24', 0, 0, 0, 25, '2025-03-04T05:06:07.0000000Z');
            INSERT INTO admins (name, password_hash, created_at) VALUES ('root', 'hash', '2025-03-04T05:06:07.0000000Z');
            """);
        var server = Fixtures.Server();
        using var store = Store.Open(StoreLocation.Parse(location), create: false);
        Assert.Equal(Store.SchemaVersion, store.UserVersion());
        // 3: the rules that keep an existing server's behaviour.
        Assert.Equal(["everyone -> internal any", "everyone -> server any"], store.ListRules().Select(r => r.ToString()));
        // 4: a client without its private key.
        var c = store.InsertClient(Fixtures.Client("pubonly", x => x with { PrivateKey = null }));
        Assert.Null(store.RequireClient("PUBONLY").PrivateKey);
        // 5: a TOTP step is accepted once.
        long admin = store.FindAdmin("ROOT")!.Id;
        Assert.True(store.ConsumeTotpStep(admin, 100));
        Assert.False(store.ConsumeTotpStep(admin, 100));
        Assert.True(c.Id > 0);
    }
}

/// <summary>Parsing the store location (<c>--store</c>, <c>$MKB_VPN_STORE</c>): what it accepts, and the password it never takes.</summary>
public sealed class StoreLocationTests
{
    [Theory]
    [InlineData("postgresql://mkbvpn:secret@db.example.com/mkbvpn")]
    [InlineData("postgresql://mkbvpn@db.example.com/mkbvpn?password=secret")]
    [InlineData("host=db.example.com dbname=mkbvpn user=mkbvpn password=secret")]
    [InlineData("Host=db.example.com;Database=mkbvpn;Username=mkbvpn;Password=secret")]
    [InlineData("Host=db.example.com;Database=mkbvpn;Username=mkbvpn;PWD=secret")]
    public void A_password_in_the_location_is_refused_in_one_line_without_repeating_it(string value)
    {
        var e = Assert.Throws<UserInputException>(() => StoreLocation.Parse(value));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Contains("password", e.Message);
        Assert.Contains("passfile", e.Message);
        Assert.DoesNotContain("secret", e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData("postgresql://mkbvpn@db.example.com/mkbvpn", "postgresql://mkbvpn@db.example.com:5432/mkbvpn")]
    [InlineData("postgres://mkbvpn@db.example.com:6543/registry?sslmode=verify-full&passfile=/etc/mkb-vpn/pgpass", "postgresql://mkbvpn@db.example.com:6543/registry")]
    [InlineData("postgresql://mkbvpn@[fd00::5]:5433/mkbvpn", "postgresql://mkbvpn@[fd00::5]:5433/mkbvpn")]
    [InlineData("host=127.0.0.1 port=5433 dbname=mkbvpn user=mkbvpn passfile='/etc/mkb vpn/pgpass'", "postgresql://mkbvpn@127.0.0.1:5433/mkbvpn")]
    [InlineData("Host=127.0.0.1;Database=mkbvpn;Username=mkbvpn", "postgresql://mkbvpn@127.0.0.1:5432/mkbvpn")]
    public void Locations_are_accepted_and_shown_without_their_options(string value, string shown)
    {
        var l = StoreLocation.Parse(value);
        Assert.Equal(shown, l.Shown);
        Assert.DoesNotContain("Password", l.ConnectionString, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void The_libpq_names_reach_npgsql()
    {
        var b = new NpgsqlConnectionStringBuilder(StoreLocation.Parse("postgresql://u@h/d?sslmode=verify-full&passfile=/p&connect_timeout=7&application_name=gw1").ConnectionString);
        Assert.Equal(SslMode.VerifyFull, b.SslMode);
        Assert.Equal("/p", b.Passfile);
        Assert.Equal(7, b.Timeout);
        Assert.Equal("gw1", b.ApplicationName);
        Assert.Equal("u", b.Username);
        Assert.Equal("h", b.Host);
        Assert.Equal("d", b.Database);
    }

    [Theory]
    [InlineData("/var/lib/mkb-vpn/mkb-vpn.db", "expected a PostgreSQL connection URI")]
    [InlineData("postgresql://u@h/d?sslmode=sometimes", "sslmode")]
    [InlineData("postgresql://u@h/d?options=-c%20x", "'options' is not a setting")]
    [InlineData("postgresql://u@h:99999/d", "not a port number")]
    public void Nonsense_is_one_line_naming_the_flag(string value, string says)
    {
        var e = Assert.Throws<UserInputException>(() => StoreLocation.Parse(value));
        Assert.StartsWith("--store: ", e.Message);
        Assert.Contains(says, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }
}
