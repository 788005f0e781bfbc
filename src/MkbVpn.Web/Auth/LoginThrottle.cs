using System.Collections.Concurrent;

namespace MkbVpn.Web.Auth;

/// <summary>
/// Failed logins are counted per client address and per admin name in a sliding window; past
/// the limit further attempts are refused (429) until old failures age out. Kept in memory:
/// a restart forgives, which PBKDF2's cost per attempt makes harmless.
/// </summary>
internal sealed class LoginThrottle(TimeProvider time)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);
    public const int PerName = 5;
    public const int PerAddress = 20;

    private readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> _failures = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long to wait before trying again, or null when an attempt may be made now.</summary>
    public TimeSpan? Blocked(string address, string name)
    {
        var now = time.GetUtcNow();
        var a = Wait("ip:" + address, PerAddress, now);
        var n = Wait("user:" + name, PerName, now);
        return a is null ? n : n is null ? a : a > n ? a : n;
    }

    public void Failed(string address, string name)
    {
        var now = time.GetUtcNow();
        foreach (var key in new[] { "ip:" + address, "user:" + name })
        {
            var q = _failures.GetOrAdd(key, _ => new Queue<DateTimeOffset>());
            lock (q)
                q.Enqueue(now);
        }
        if (_failures.Count > 100_000)
            Prune(now);
    }

    public void Succeeded(string name) => _failures.TryRemove("user:" + name, out _);

    private TimeSpan? Wait(string key, int limit, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(key, out var q))
            return null;
        lock (q)
        {
            while (q.Count > 0 && now - q.Peek() >= Window)
                q.Dequeue();
            return q.Count >= limit ? q.Peek() + Window - now : null;
        }
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, q) in _failures)
        {
            lock (q)
            {
                if (q.Count == 0 || now - q.Last() >= Window)
                    _failures.TryRemove(key, out _);
            }
        }
    }
}
