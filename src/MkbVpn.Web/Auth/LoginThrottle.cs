using System.Security.Cryptography;
using System.Text;
using MkbVpn.Admin;

namespace MkbVpn.Web.Auth;

/// <summary>
/// Slows password guessing without letting an attacker lock the real admin out.
/// <list type="bullet">
/// <item>Failed logins are counted per admin name and client address together (<see cref="PerName"/>
/// free), per name from every address (<see cref="PerNameEverywhere"/>, against guessing spread over
/// many addresses) and per address over all names (<see cref="PerAddress"/>). Past a limit each further
/// attempt waits twice as long as the one before (1, 2, 4, 8, then 15 minutes) after the latest failure:
/// growing delays, not a fixed lock. A success clears the name's counts; counts are forgotten after
/// <see cref="Forget"/> without failures.</item>
/// <item>A browser where an admin logged in gets a device cookie (signed, bound to the name). Its
/// attempts for that name are counted for that device alone: failures from elsewhere (the attacker,
/// even one behind the same proxy or SSH tunnel address) do not slow it (the OWASP "device cookie"
/// scheme).</item>
/// <item>Checking and counting is one step under one lock, and an attempt is counted before its
/// password is checked, so parallel attempts get no more checks than the limit.</item>
/// </list>
/// Kept in memory with a key made at start: a restart forgives and forgets device cookies, which
/// PBKDF2's cost per attempt makes harmless.
/// </summary>
internal sealed class LoginThrottle(TimeProvider time)
{
    /// <summary>Free failures per name and address together (and per trusted device).</summary>
    public const int PerName = 5;
    /// <summary>Free failures per name from all addresses without a device cookie for it.</summary>
    public const int PerNameEverywhere = 20;
    /// <summary>Free failures per address, whatever the names.</summary>
    public const int PerAddress = 20;
    public static readonly TimeSpan FirstDelay = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan Forget = TimeSpan.FromHours(24);
    public const string DeviceCookieName = "mkb_device";
    public static readonly TimeSpan DeviceCookieLifetime = TimeSpan.FromDays(90);
    private const int MaxEntries = 100_000;

    private readonly object _gate = new();
    private readonly Dictionary<string, Count> _counts = new(StringComparer.OrdinalIgnoreCase);
    private readonly byte[] _deviceKey = RandomNumberGenerator.GetBytes(32);

    private sealed class Count
    {
        public int Failures;
        public DateTimeOffset Last;
    }

    /// <summary>An attempt that may check a password; already counted as failed until <see cref="Succeeded"/>.</summary>
    public sealed class Attempt(LoginThrottle owner, string[] clearOnSuccess)
    {
        public void Succeeded() => owner.Clear(clearOnSuccess);
    }

    /// <summary>
    /// Counts an attempt before its password is checked, or returns how long to wait. Without a
    /// trusted device the keys are name+address, name and address; with one, the device alone.
    /// </summary>
    public (Attempt? Attempt, TimeSpan Wait) Begin(string address, string name, string? deviceCookie)
    {
        // Names that cannot be admins share one key, so junk names cannot fill the memory.
        string n = AdminService.ValidateName(name, "admin") is null ? name : "\0invalid";
        string? device = DeviceOf(deviceCookie, n);
        (string Key, int Free)[] keys = device is not null
            ? [("device:" + device, PerName)]
            : [("pair:" + n + "\n" + address, PerName), ("name:" + n, PerNameEverywhere), ("address:" + address, PerAddress)];
        var now = time.GetUtcNow();
        lock (_gate)
        {
            var wait = TimeSpan.Zero;
            foreach (var (key, free) in keys)
            {
                if (_counts.TryGetValue(key, out var c))
                {
                    if (now - c.Last >= Forget)
                        _counts.Remove(key);
                    else if (c.Failures >= free)
                    {
                        var until = c.Last + Delay(c.Failures - free);
                        if (until - now > wait)
                            wait = until - now;
                    }
                }
            }
            if (wait > TimeSpan.Zero)
                return (null, wait);
            if (_counts.Count > MaxEntries)
                Prune(now);
            foreach (var (key, _) in keys)
            {
                if (!_counts.TryGetValue(key, out var c))
                    _counts[key] = c = new Count();
                c.Failures++;
                c.Last = now;
            }
            string[] all = [.. keys.Select(k => k.Key)];
            // A success proves the password: the name's counts go (not the address's, which may guess other names).
            return (new Attempt(this, [.. all.Where(k => !k.StartsWith("address:", StringComparison.Ordinal))]), TimeSpan.Zero);
        }
    }

    /// <summary>The delay after the free failures: 1, 2, 4, 8 minutes, then 15.</summary>
    public static TimeSpan Delay(int beyondFree) =>
        beyondFree >= 4 ? MaxDelay : TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, FirstDelay.Ticks << beyondFree));

    private void Clear(string[] keys)
    {
        lock (_gate)
        {
            foreach (var k in keys)
                _counts.Remove(k);
        }
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, c) in _counts.ToList())
        {
            if (now - c.Last >= MaxDelay)
                _counts.Remove(key);
        }
    }

    // ---- device cookies ---------------------------------------------------

    /// <summary>A new device cookie for an admin who just logged in: NAME.ID.MAC.</summary>
    public string NewDeviceCookie(string name)
    {
        string id = Secrets.Base64Url(RandomNumberGenerator.GetBytes(16));
        return name + "." + id + "." + DeviceMac(name, id);
    }

    /// <summary>The device id when the cookie is one of ours and names <paramref name="name"/>; else null.</summary>
    public string? DeviceOf(string? cookie, string name)
    {
        if (string.IsNullOrEmpty(cookie) || cookie.Length > 200)
            return null;
        var parts = cookie.Split('.');
        // Admin names may contain dots: the id and the MAC are the last two parts.
        if (parts.Length < 3)
            return null;
        string id = parts[^2], mac = parts[^1];
        string cookieName = string.Join('.', parts[..^2]);
        if (!string.Equals(cookieName, name, StringComparison.OrdinalIgnoreCase))
            return null;
        return Session.SameSecret(mac, DeviceMac(cookieName, id)) ? id : null;
    }

    private string DeviceMac(string name, string id) =>
        Secrets.Base64Url(HMACSHA256.HashData(_deviceKey, Encoding.UTF8.GetBytes("mkb-vpn device v1\n" + name.ToLowerInvariant() + "\n" + id)));
}
