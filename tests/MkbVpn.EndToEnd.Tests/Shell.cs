using System.Diagnostics;
using System.Text;

namespace MkbVpn.EndToEnd.Tests;

/// <summary>Runs processes for the tests, with a timeout on each; output is collected for assertions.</summary>
internal static class Shell
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
    }

    public static Result Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
            p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static Result Run(string file, params string[] args) => Run(file, args, null);

    public static string Check(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {r}");
        return r.StdOut;
    }

    /// <summary>Polls a condition until it holds or the deadline passes; returns the time it took, or null.</summary>
    /// <summary>
    /// Removes what a test bed made, also after a failure: its processes (whole trees), its namespaces (last made
    /// first), the userspace engines and UAPI sockets of its WireGuard interfaces.
    /// </summary>
    public static void TearDown(IEnumerable<Process> processes, IEnumerable<string> namespaces, IEnumerable<string> wgInterfaces)
    {
        foreach (var p in processes)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        foreach (var ns in namespaces.Reverse())
            Run("ip", "netns", "del", ns);
        foreach (var iface in wgInterfaces)
        {
            // wireguard-go exits when its TUN device goes with the namespace; make sure of it.
            Run("pkill", "-f", $"wireguard-go {iface}$");
            Run("pkill", "-f", $"mkb-vpn engine {iface}$");
            string sock = $"/var/run/wireguard/{iface}.sock";
            WaitFor(() => !File.Exists(sock), TimeSpan.FromSeconds(3));
            if (File.Exists(sock))
                File.Delete(sock);
        }
    }

    public static TimeSpan? WaitFor(Func<bool> condition, TimeSpan deadline, TimeSpan? every = null)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (condition())
                return sw.Elapsed;
            if (sw.Elapsed > deadline)
                return null;
            Thread.Sleep(every ?? TimeSpan.FromMilliseconds(50));
        }
    }
}
