using MkbVpn.Storage;

namespace MkbVpn.Admin;

/// <summary>The outcome of a login attempt. Says nothing about which part was wrong.</summary>
public enum LoginOutcome
{
    Ok,
    Failed,
    /// <summary>Name and password were right; the admin has TOTP and no (or a wrong) code was given.</summary>
    CodeRequired,
}

public sealed record LoginResult(LoginOutcome Outcome, string? SessionCookie, Principal? Principal);

/// <summary>
/// Admins (web page), API tokens (automation) and login sessions. Every secret is stored as a
/// hash only; the plain token or session cookie exists once, in the answer to whoever created it.
/// </summary>
public sealed class AdminService(Paths paths, TimeProvider? time = null)
{
    public const string SessionPrefix = "s_";
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(12);

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public Paths Paths { get; } = paths;

    /// <summary>Who acts, for the audit log.</summary>
    public Audit.Actor Actor { get; init; } = Audit.Actor.FromEnvironment();

    private DateTimeOffset Now => _time.GetUtcNow();

    private Store OpenStore()
    {
        if (Paths.Store is null && !File.Exists(Paths.Database))
            throw new UserInputException($"mkb-vpn is not initialised in {Paths.DataDir}: run 'mkb-vpn init' first", ExitCodes.NotInitialised);
        return Store.Open(Paths, create: false);
    }

    public static string? ValidateName(string? name, string what)
    {
        if (string.IsNullOrEmpty(name))
            return $"{what} name is empty";
        if (name.Length > 32)
            return $"{what} name is {name.Length} characters; at most 32 are allowed";
        if (!char.IsAsciiLetterOrDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '@'))
            return $"{what} name may only contain letters, digits and _ . - @, starting with a letter or digit";
        return null;
    }

    private static void EnsureName(string? name, string what)
    {
        if (ValidateName(name, what) is { } reason)
            throw new UserInputException(reason);
    }

    // ---- admins -----------------------------------------------------------

    public void AddAdmin(string name, string password)
    {
        EnsureName(name, "admin");
        if (Passwords.Validate(password) is { } reason)
            throw new UserInputException(reason);
        string hash = Passwords.Hash(password);
        using var store = OpenStore();
        store.RequireServer();
        using var tx = store.BeginWrite();
        store.InsertAdmin(name, hash, Now);
        store.AppendAudit(Now, Actor, "admin add", $"admin:{name}", null, null);
        tx.Commit();
    }

    /// <summary>
    /// Sets a new password and ends the admin's sessions: all of them, or all but
    /// <paramref name="keepSession"/> (the session of an admin who changes their own password on the page).
    /// </summary>
    public void SetPassword(string name, string password, string? keepSession = null)
    {
        EnsureName(name, "admin");
        if (Passwords.Validate(password) is { } reason)
            throw new UserInputException(reason);
        string hash = Passwords.Hash(password);
        using var store = OpenStore();
        var admin = RequireAdmin(store, name);
        using var tx = store.BeginWrite();
        store.SetAdminPassword(admin.Id, hash);
        int ended = store.DeleteSessionsOf(admin.Id, keepSession);
        store.AppendAudit(Now, Actor, "admin passwd", $"admin:{admin.Name}", null, ended > 0 ? $"{ended} session(s) ended" : null);
        tx.Commit();
    }

    /// <summary>
    /// An admin changes their own password (the page): the current one must be right. Every other
    /// session of theirs ends; <paramref name="currentSession"/> stays. False when the current password is wrong.
    /// </summary>
    public bool ChangeOwnPassword(string name, string current, string password, string currentSession)
    {
        if (Passwords.Validate(password) is { } reason)
            throw new FieldException("new", reason);
        if (!VerifyPassword(name, current))
            return false;
        SetPassword(name, password, currentSession);
        return true;
    }

    /// <summary>An admin turns their own second factor off (the page), proving the password; other sessions end.</summary>
    public bool DisableOwnTotp(string name, string current, string currentSession)
    {
        if (!VerifyPassword(name, current))
            return false;
        DisableTotp(name, currentSession);
        return true;
    }

    private bool VerifyPassword(string name, string password)
    {
        using var store = OpenStore();
        var admin = RequireAdmin(store, name);
        return Passwords.Verify(password.Length <= Passwords.MaxLength ? password : "", admin.PasswordHash);
    }

    public IReadOnlyList<AdminAccount> ListAdmins()
    {
        using var store = OpenStore();
        return store.ListAdmins();
    }

    public void RemoveAdmin(string name)
    {
        EnsureName(name, "admin");
        using var store = OpenStore();
        var admin = RequireAdmin(store, name);
        using var tx = store.BeginWrite();
        store.DeleteAdmin(admin.Id);
        store.AppendAudit(Now, Actor, "admin remove", $"admin:{admin.Name}", null, null);
        tx.Commit();
    }

    private static AdminAccount RequireAdmin(Store store, string name) =>
        store.FindAdmin(name) ?? throw new UserInputException($"no admin named '{name}'", ExitCodes.NotFound);

    /// <summary>Turns on TOTP for an admin once they proved their app has the secret (a current code).</summary>
    public void EnableTotp(string name, string secret, string code)
    {
        EnsureName(name, "admin");
        if (!Totp.Verify(secret, code, Now))
            throw new UserInputException("the code does not match: check the authenticator app's clock and try again");
        using var store = OpenStore();
        var admin = RequireAdmin(store, name);
        using var tx = store.BeginWrite();
        store.SetAdminTotp(admin.Id, secret);
        store.AppendAudit(Now, Actor, "admin totp on", $"admin:{admin.Name}", null, null);
        tx.Commit();
    }

    /// <summary>Turns TOTP off and ends the admin's sessions (all, or all but <paramref name="keepSession"/>).</summary>
    public void DisableTotp(string name, string? keepSession = null)
    {
        EnsureName(name, "admin");
        using var store = OpenStore();
        var admin = RequireAdmin(store, name);
        using var tx = store.BeginWrite();
        store.SetAdminTotp(admin.Id, null);
        int ended = store.DeleteSessionsOf(admin.Id, keepSession);
        store.AppendAudit(Now, Actor, "admin totp off", $"admin:{admin.Name}", null, ended > 0 ? $"{ended} session(s) ended" : null);
        tx.Commit();
    }

    // ---- login sessions ---------------------------------------------------

    /// <summary>Checks name, password and (when enrolled) the TOTP code; on success opens a session.</summary>
    public LoginResult Login(string name, string password, string? code)
    {
        using var store = OpenStore();
        var admin = ValidateName(name, "admin") is null && password.Length <= Passwords.MaxLength ? store.FindAdmin(name) : null;
        // The hash is always computed, also for an unknown name, so timing does not tell names apart.
        bool ok = Passwords.Verify(password.Length <= Passwords.MaxLength ? password : "", admin?.PasswordHash);
        if (!ok || admin is null)
            return new LoginResult(LoginOutcome.Failed, null, null);
        var now = Now;
        long? step = null;
        if (admin.TotpSecret is { } secret && (step = Totp.Match(secret, code, now)) is null)
            return new LoginResult(LoginOutcome.CodeRequired, null, null);
        var (id, sec, whole) = Secrets.New(SessionPrefix);
        using (var tx = store.BeginWrite())
        {
            // A code is good for one login: one that was accepted before (this step or a later one) is refused.
            if (step is { } s && !store.ConsumeTotpStep(admin.Id, s))
                return new LoginResult(LoginOutcome.CodeRequired, null, null);
            store.InsertSession(id, Secrets.HashOf(sec), admin.Id, now, now + SessionLifetime);
            tx.Commit();
        }
        return new LoginResult(LoginOutcome.Ok, whole, new Principal(admin.Name, ViaToken: false, id));
    }

    /// <summary>The admin behind a session cookie, or null (unknown, expired, admin removed).</summary>
    public Principal? Session(string? cookie)
    {
        if (Secrets.Parse(cookie, SessionPrefix) is not { } parsed)
            return null;
        using var store = OpenStore();
        if (store.FindSession(parsed.Id) is not { } row || !Secrets.Matches(parsed.Secret, row.SecretHash))
            return null;
        if (row.Expires <= Now)
            return null;   // a read never writes; expired sessions are deleted when the next one is created
        var admin = store.FindAdmin(row.AdminId);
        return admin is null ? null : new Principal(admin.Name, ViaToken: false, parsed.Id);
    }

    public void Logout(string sessionId)
    {
        using var store = OpenStore();
        store.DeleteSession(sessionId);
    }

    // ---- API tokens -------------------------------------------------------

    /// <summary>Creates a token and returns it: the only time its secret exists outside the caller.</summary>
    public string AddToken(string name)
    {
        EnsureName(name, "token");
        var (id, secret, whole) = Secrets.New(Secrets.TokenPrefix);
        using var store = OpenStore();
        store.RequireServer();
        using var tx = store.BeginWrite();
        store.InsertToken(id, name, Secrets.HashOf(secret), Now);
        store.AppendAudit(Now, Actor, "token add", $"token:{name}", null, null);
        tx.Commit();
        return whole;
    }

    public IReadOnlyList<ApiTokenInfo> ListTokens()
    {
        using var store = OpenStore();
        return store.ListTokens();
    }

    public void RevokeToken(string name)
    {
        EnsureName(name, "token");
        using var store = OpenStore();
        using var tx = store.BeginWrite();
        if (!store.DeleteToken(name))
            throw new UserInputException($"no token named '{name}'", ExitCodes.NotFound);
        store.AppendAudit(Now, Actor, "token revoke", $"token:{name}", null, null);
        tx.Commit();
    }

    /// <summary>
    /// The token's name when <paramref name="token"/> is a valid token, else null. <paramref name="recordUse"/>
    /// stores the time of use (last_used_at); reads (a Prometheus scrape, a GET) pass false so they never write.
    /// </summary>
    public Principal? Token(string? token, bool recordUse = true)
    {
        if (Secrets.Parse(token, Secrets.TokenPrefix) is not { } parsed)
            return null;
        using var store = OpenStore();
        if (store.FindToken(parsed.Id) is not { } row || !Secrets.Matches(parsed.Secret, row.SecretHash))
            return null;
        if (recordUse)
            store.TouchToken(parsed.Id, Now);
        return new Principal(row.Name, ViaToken: true, null);
    }
}
