using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MkbVpn;

/// <summary>Runs system tools (ip, wg, nft, wireguard-go) and reads the process' privileges.</summary>
public static partial class Sys
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public string FirstErrorLine => (StdErr.Trim().Length > 0 ? StdErr : StdOut).Trim().Split('\n')[0];
    }

    private static readonly Dictionary<string, string> Packages = new()
    {
        ["wg"] = "wireguard-tools",
        ["wireguard-go"] = "wireguard-go",
        ["ip"] = "iproute2",
        ["nft"] = "nftables",
    };

    public static bool IsRoot => geteuid() == 0;

    public static void RequireRoot(string what)
    {
        if (!IsRoot)
            throw new UserInputException($"{what} needs root: run it with sudo", ExitCodes.NeedsRoot);
    }

    public static string? Which(string tool)
    {
        if (tool.Contains('/'))
            return File.Exists(tool) ? tool : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':'))
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p))
                return p;
        }
        foreach (var dir in new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" })
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p))
                return p;
        }
        return null;
    }

    public static string RequireTool(string tool) =>
        Which(tool) ?? throw new UserInputException(
            $"'{tool}' is not installed" + (Packages.TryGetValue(tool, out var pkg) ? $" (apt-get install {pkg})" : ""), ExitCodes.MissingTool);

    public static Result Run(string tool, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(RequireTool(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new UserInputException($"cannot run '{tool}': {e.Message}", ExitCodes.MissingTool);
        }
        using (p)
        {
            var outTask = p.StandardOutput.ReadToEndAsync();
            var errTask = p.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }
            if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(30)))
            {
                p.Kill(entireProcessTree: true);
                throw new IOException($"'{tool}' did not finish in time");
            }
            return new Result(p.ExitCode, outTask.Result, errTask.Result);
        }
    }

    /// <summary>Runs a tool and throws a one-line error when it fails.</summary>
    public static string Check(string tool, IEnumerable<string> args, string? stdin = null, string? what = null)
    {
        var list = args.ToList();
        var r = Run(tool, list, stdin);
        if (r.ExitCode != 0)
            throw new IOException($"{what ?? tool + " " + string.Join(' ', list.Take(4))}: {r.FirstErrorLine}");
        return r.StdOut;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint umask(uint mask);

    /// <summary>Files we create are owner-only (keys, database, configs).</summary>
    public static void RestrictUmask() => umask(0x3F /* 077 */);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    private const int LOCK_EX = 2, LOCK_NB = 4, O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000;

    /// <summary>
    /// Takes the data directory's exclusive lock (flock on a file of its own), waiting up to
    /// <paramref name="wait"/>. All verbs that change the store and the live interface hold it,
    /// so the two never disagree. The raw descriptor keeps .NET's own FileShare locking out of it.
    /// </summary>
    public static IDisposable Lock(string path, TimeSpan wait)
    {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is 13 or 30)   // EACCES, EROFS
                throw new UnauthorizedAccessException(path);
            throw new IOException($"cannot open lock file {path} (errno {errno})");
        }
        var deadline = Stopwatch.StartNew();
        int delay = 1;
        while (flock(fd, LOCK_EX | LOCK_NB) != 0)
        {
            if (deadline.Elapsed > wait)
            {
                close(fd);
                throw new LockBusyException();
            }
            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 20);
        }
        return new FileLock(fd);
    }

    private sealed class FileLock(int fd) : IDisposable
    {
        private int _fd = fd;

        public void Dispose()
        {
            int fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0)
                close(fd);   // releases the flock
        }
    }
}
