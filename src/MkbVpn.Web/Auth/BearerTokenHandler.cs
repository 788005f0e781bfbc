using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MkbVpn.Admin;
using MkbVpn.Web.Api;

namespace MkbVpn.Web.Auth;

/// <summary>
/// 'Authorization: Bearer TOKEN' with an API token from 'mkb-vpn token add'. The store keeps the
/// token's SHA-256 only and compares it in constant time (<see cref="AdminService.Token"/>). Reads
/// (GET, HEAD, OPTIONS) do not record the token's use, so they never write.
/// </summary>
internal sealed class BearerTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AdminService admins)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string Refusal = "authentication required: send 'Authorization: Bearer TOKEN' (mkb-vpn token add NAME) or log in";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
            return Task.FromResult(AuthenticateResult.NoResult());
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Task.FromResult(AuthenticateResult.Fail("not a bearer token"));
        var principal = admins.Token(header["Bearer ".Length..].Trim(), recordUse: !IsRead(Request.Method));
        if (principal is null)
            return Task.FromResult(AuthenticateResult.Fail("unknown or revoked token"));   // never the token itself
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(Session.ForToken(principal.Name), Scheme.Name)));
    }

    /// <summary>401 with WWW-Authenticate: Bearer and one problem document, whatever exists behind the address.</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        await Problems.Status(StatusCodes.Status401Unauthorized, Refusal).ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        await Problems.Status(StatusCodes.Status403Forbidden, "this token or session may not do this").ExecuteAsync(Context);

    /// <summary>GET, HEAD, OPTIONS: requests that change nothing (and write nothing, not even a token's last use).</summary>
    public static bool IsRead(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);
}
