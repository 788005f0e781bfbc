using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace MkbVpn.Tests;

/// <summary>
/// A real PostgreSQL (Debian's package) for the tests: its own cluster made by initdb in a
/// temporary directory, on a free loopback port, started with pg_ctl when a test first asks for a
/// database and stopped and removed when the test collection ends (also when tests failed). As
/// root it runs as the package's system user <c>postgres</c> (through setpriv: PostgreSQL refuses
/// to run as root). Logins over TCP need a password (scram-sha-256), which the tests hand over
/// the way an admin would: in a passfile.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private const string Superuser = "mkbtest";
    private readonly Lock _gate = new();
    private string? _dir;
    private string? _bin;
    private int _port;
    private bool _started;

    /// <summary>The password of <see cref="Superuser"/>; only ever in <see cref="PassFile"/>.</summary>
    public string Password { get; } = "pw-" + Guid.NewGuid().ToString("N");

    public int Port => EnsureStarted()._port;

    /// <summary>A ~/.pgpass-format file (0600) holding the password.</summary>
    public string PassFile => Path.Combine(EnsureStarted()._dir!, "pgpass");

    /// <summary>A fresh, empty database; returns its store location (a URI with passfile=, no password).</summary>
    public string NewDatabase()
    {
        EnsureStarted();
        string name = "t_" + Guid.NewGuid().ToString("N")[..16];
        using (var db = new NpgsqlConnection(AdminConnectionString("postgres")))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"CREATE DATABASE {name}";
            cmd.ExecuteNonQuery();
        }
        return Location(name);
    }

    /// <summary>The store location of database <paramref name="name"/>, as an admin writes it.</summary>
    public string Location(string name) => $"postgresql://{Superuser}@127.0.0.1:{Port}/{name}?passfile={Uri.EscapeDataString(PassFile)}";

    /// <summary>Runs SQL in a database of this server (what a test does behind the store's back).</summary>
    public void Sql(string location, string sql)
    {
        using var db = new NpgsqlConnection(AdminConnectionString(DatabaseOf(location)));
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public object? Scalar(string location, string sql)
    {
        using var db = new NpgsqlConnection(AdminConnectionString(DatabaseOf(location)));
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    private static string DatabaseOf(string location) => location.Split('/')[3].Split('?')[0];

    private string AdminConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = _port,
        Username = Superuser,
        Password = Password,
        Database = database,
        Pooling = false,
    }.ConnectionString;

    private PostgresServer EnsureStarted()
    {
        lock (_gate)
        {
            if (!_started)
            {
                Start();
                _started = true;
            }
        }
        return this;
    }

    /// <summary>Debian keeps the server's tools in /usr/lib/postgresql/VERSION/bin (the newest is taken); else PATH.</summary>
    private static string FindBin()
    {
        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out int v) ? v : 0))
                .Where(d => File.Exists(Path.Combine(d.Dir, "initdb")))
                .OrderByDescending(d => d.Version)
                .Select(d => d.Dir)
                .FirstOrDefault()
            : null;
        if (debian is not null)
            return debian;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "initdb")))
                return dir;
        throw new InvalidOperationException("PostgreSQL's server (initdb, pg_ctl) is not installed: apt-get install postgresql (scripts/test.sh does)");
    }

    private static bool IsRoot => Environment.UserName == "root";

    private void Start()
    {
        _bin = FindBin();
        RemoveOrphans();
        _dir = Path.Combine(Path.GetTempPath(), Prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_dir, "owner.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string pwfile = Path.Combine(_dir, "pwfile");
        File.WriteAllText(pwfile, Password + "\n");
        File.SetUnixFileMode(pwfile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (IsRoot)
            Run("chown", "-R", "postgres:postgres", _dir);
        AsServerUser("initdb", "-D", Path.Combine(_dir, "data"), "-U", Superuser, "--pwfile", pwfile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync");
        File.Delete(pwfile);
        Exception? last = null;
        for (int attempt = 0; attempt < 5; attempt++)
        {
            _port = FreePort();
            try
            {
                StartCluster();
                last = null;
                break;
            }
            catch (InvalidOperationException e)
            {
                last = e;   // the port was taken between the probe and the start: another one
            }
        }
        if (last is not null)
            throw last;
        // The passfile is the tests' only way to the password, as it would be an admin's.
        string pass = Path.Combine(_dir, "pgpass");
        File.WriteAllText(pass, $"127.0.0.1:{_port}:*:{Superuser}:{Password}\n");
        File.SetUnixFileMode(pass, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>pg_ctl start of the cluster on <see cref="_port"/>, its Unix socket in the cluster's directory.</summary>
    private void StartCluster() =>
        AsServerUser("pg_ctl", "-D", Path.Combine(_dir!, "data"), "-l", Path.Combine(_dir!, "log"), "-w", "-t", "60", "start", "-o",
            $"-p {_port} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200");

    /// <summary>
    /// Stops the server the way a database host going down does (pg_ctl's fast shutdown: every
    /// session is ended, new connections are refused, the Unix socket goes) until the returned handle
    /// is disposed, which starts the same cluster again on the same port: its databases, passfile and
    /// locations stay valid. Dispose it in a finally (a using), so a failing test leaves the server
    /// running for the next one.
    /// </summary>
    public IDisposable Stopped()
    {
        EnsureStarted();
        lock (_gate)
            AsServerUser("pg_ctl", "-D", Path.Combine(_dir!, "data"), "-m", "fast", "-w", "-t", "60", "stop");
        return new Restart(this);
    }

    private sealed class Restart(PostgresServer server) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0)
                return;
            lock (server._gate)
                server.StartCluster();
            NpgsqlConnection.ClearAllPools();   // pooled connections of this process died with the server
        }
    }

    private const string Prefix = "mkbvpn-pg-";

    /// <summary>
    /// A test run that was killed (no Dispose) leaves its server running: the next run stops and
    /// removes every cluster whose owning test process is gone.
    /// </summary>
    private void RemoveOrphans()
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            string owner = Path.Combine(dir, "owner.pid");
            if (!File.Exists(owner) || !int.TryParse(File.ReadAllText(owner), out int pid) || Directory.Exists($"/proc/{pid}"))
                continue;
            try
            {
                if (File.Exists(Path.Combine(dir, "data", "postmaster.pid")))
                    AsServerUser("pg_ctl", "-D", Path.Combine(dir, "data"), "-m", "immediate", "-w", "stop");
            }
            catch (InvalidOperationException)
            {
                // Not running any more.
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private void AsServerUser(string tool, params string[] args)
    {
        string exe = Path.Combine(_bin!, tool);
        if (IsRoot)
            Run("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--reset-env", exe, .. args]);
        else
            Run(exe, args);
    }

    private void Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir ?? "/" };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{Path.GetFileName(exe)} did not finish in 2 minutes");
        }
        if (p.ExitCode != 0)
        {
            string log = _dir is not null && File.Exists(Path.Combine(_dir, "log")) ? File.ReadAllText(Path.Combine(_dir, "log")) : "";
            throw new InvalidOperationException($"{Path.GetFileName(exe)} {string.Join(' ', args)} failed ({p.ExitCode}): {stdout.Result}{stderr}{log}");
        }
    }

    public void Dispose()
    {
        if (_dir is null)
            return;
        try
        {
            if (_started || File.Exists(Path.Combine(_dir, "data", "postmaster.pid")))
                AsServerUser("pg_ctl", "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop");
        }
        catch (InvalidOperationException)
        {
            // Not running (it never started): nothing to stop.
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }
}

/// <summary>Every test class that uses PostgreSQL shares one server.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
