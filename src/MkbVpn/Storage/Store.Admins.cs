using System.Data.Common;
using MkbVpn.Admin;

namespace MkbVpn.Storage;

/// <summary>Admins of the web page, API tokens and login sessions. Only hashes of secrets are stored.</summary>
public sealed partial class Store
{
    // ---- admins -----------------------------------------------------------

    public IReadOnlyList<AdminAccount> ListAdmins()
    {
        using var cmd = Command($"SELECT id, name, password_hash, totp_secret, created_at FROM admins ORDER BY {_d.NoCase("name")}");
        using var r = Reader(cmd);
        var list = new List<AdminAccount>();
        while (r.Read())
            list.Add(ReadAdmin(r));
        return list;
    }

    public AdminAccount? FindAdmin(string name)
    {
        using var cmd = Command($"SELECT id, name, password_hash, totp_secret, created_at FROM admins WHERE {_d.NoCase("name")} = {_d.NoCase("@n")}", ("@n", name));
        using var r = Reader(cmd);
        return r.Read() ? ReadAdmin(r) : null;
    }

    public AdminAccount? FindAdmin(long id)
    {
        using var cmd = Command("SELECT id, name, password_hash, totp_secret, created_at FROM admins WHERE id = @id", ("@id", id));
        using var r = Reader(cmd);
        return r.Read() ? ReadAdmin(r) : null;
    }

    public void InsertAdmin(string name, string passwordHash, DateTimeOffset now)
    {
        try
        {
            using var cmd = Command("INSERT INTO admins (name, password_hash, created_at) VALUES (@n, @h, @t)",
                ("@n", name), ("@h", passwordHash), ("@t", Time(now)));
            cmd.ExecuteNonQuery();
        }
        catch (DbException e) when (_d.Violation(e) is not null)
        {
            throw new UserInputException($"an admin named '{name}' already exists", ExitCodes.Conflict);
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    public void SetAdminPassword(long id, string passwordHash) =>
        Execute("UPDATE admins SET password_hash = @h WHERE id = @id", ("@h", passwordHash), ("@id", id));

    public void SetAdminTotp(long id, string? secret)
    {
        Execute("UPDATE admins SET totp_secret = @s, totp_last_step = NULL WHERE id = @id", ("@s", secret), ("@id", id));
    }

    /// <summary>
    /// Records that a TOTP code of <paramref name="step"/> was accepted. False when a code of this or a
    /// later step was accepted before: the code is spent. One statement, so two logins racing with
    /// one code cannot both succeed.
    /// </summary>
    public bool ConsumeTotpStep(long id, long step) =>
        Execute("UPDATE admins SET totp_last_step = @s WHERE id = @id AND (totp_last_step IS NULL OR totp_last_step < @s)", ("@s", step), ("@id", id)) == 1;

    /// <summary>Ends an admin's sessions, all or all but <paramref name="except"/>. Returns how many ended.</summary>
    public int DeleteSessionsOf(long adminId, string? except = null) => except is null
        ? Execute("DELETE FROM sessions WHERE admin_id = @a", ("@a", adminId))
        : Execute("DELETE FROM sessions WHERE admin_id = @a AND id <> @keep", ("@a", adminId), ("@keep", except));

    /// <summary>Deletes an admin and (by cascade) their sessions.</summary>
    public bool DeleteAdmin(long id)
    {
        Execute("DELETE FROM sessions WHERE admin_id = @id", ("@id", id));
        return Execute("DELETE FROM admins WHERE id = @id", ("@id", id)) > 0;
    }

    private static AdminAccount ReadAdmin(DbDataReader r) => new(
        Int64(r, 0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), ParseTime(r.GetString(4)));

    // ---- API tokens -------------------------------------------------------

    public IReadOnlyList<ApiTokenInfo> ListTokens()
    {
        using var cmd = Command($"SELECT id, name, created_at, last_used_at FROM api_tokens ORDER BY {_d.NoCase("name")}");
        using var r = Reader(cmd);
        var list = new List<ApiTokenInfo>();
        while (r.Read())
            list.Add(new ApiTokenInfo(r.GetString(0), r.GetString(1), ParseTime(r.GetString(2)), r.IsDBNull(3) ? null : ParseTime(r.GetString(3))));
        return list;
    }

    public void InsertToken(string id, string name, string secretHash, DateTimeOffset now)
    {
        try
        {
            using var cmd = Command("INSERT INTO api_tokens (id, name, secret_hash, created_at) VALUES (@id, @n, @h, @t)",
                ("@id", id), ("@n", name), ("@h", secretHash), ("@t", Time(now)));
            cmd.ExecuteNonQuery();
        }
        catch (DbException e) when (_d.Violation(e) is not null)
        {
            throw new UserInputException($"a token named '{name}' already exists", ExitCodes.Conflict);
        }
        catch (DbException e)
        {
            throw Translate(e);
        }
    }

    /// <summary>The stored hash and name of a token id, or null.</summary>
    public (string Name, string SecretHash)? FindToken(string id)
    {
        using var cmd = Command("SELECT name, secret_hash FROM api_tokens WHERE id = @id", ("@id", id));
        using var r = Reader(cmd);
        return r.Read() ? (r.GetString(0), r.GetString(1)) : null;
    }

    public void TouchToken(string id, DateTimeOffset now) =>
        Execute("UPDATE api_tokens SET last_used_at = @t WHERE id = @id", ("@t", Time(now)), ("@id", id));

    public bool DeleteToken(string name) =>
        Execute($"DELETE FROM api_tokens WHERE {_d.NoCase("name")} = {_d.NoCase("@n")}", ("@n", name)) > 0;

    // ---- sessions ---------------------------------------------------------

    public void InsertSession(string id, string secretHash, long adminId, DateTimeOffset now, DateTimeOffset expires)
    {
        Execute("DELETE FROM sessions WHERE expires_at < @now", ("@now", Time(now)));
        Execute("INSERT INTO sessions (id, secret_hash, admin_id, created_at, expires_at) VALUES (@id, @h, @a, @c, @e)",
            ("@id", id), ("@h", secretHash), ("@a", adminId), ("@c", Time(now)), ("@e", Time(expires)));
    }

    /// <summary>The session's stored hash, admin id and expiry, or null.</summary>
    public (string SecretHash, long AdminId, DateTimeOffset Expires)? FindSession(string id)
    {
        using var cmd = Command("SELECT secret_hash, admin_id, expires_at FROM sessions WHERE id = @id", ("@id", id));
        using var r = Reader(cmd);
        return r.Read() ? (r.GetString(0), Int64(r, 1), ParseTime(r.GetString(2))) : null;
    }

    public void DeleteSession(string id) => Execute("DELETE FROM sessions WHERE id = @id", ("@id", id));
}
