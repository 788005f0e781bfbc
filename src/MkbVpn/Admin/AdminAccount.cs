namespace MkbVpn.Admin;

/// <summary>An admin of the web page. <see cref="PasswordHash"/> is a PBKDF2 hash string, never a password.</summary>
public sealed record AdminAccount(long Id, string Name, string PasswordHash, string? TotpSecret, DateTimeOffset CreatedAt)
{
    public bool HasTotp => TotpSecret is not null;

    /// <summary>Never print hashes or TOTP secrets, not even by accident.</summary>
    public override string ToString() => $"AdminAccount {{ Id = {Id}, Name = {Name} }}";
}

/// <summary>An API token as listed: never its secret, which only its creator saw once.</summary>
public sealed record ApiTokenInfo(string Id, string Name, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt);

/// <summary>Who made a request: an admin through a session, or an automation token.</summary>
public sealed record Principal(string Name, bool ViaToken, string? SessionId);
