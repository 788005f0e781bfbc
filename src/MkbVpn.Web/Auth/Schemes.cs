namespace MkbVpn.Web.Auth;

/// <summary>The authentication schemes, authorization policies and claims of the page and the API.</summary>
internal static class Schemes
{
    /// <summary>The page's session cookie (<see cref="SessionCookie"/>): the store's session, checked on every request.</summary>
    public const string Cookie = "session";
    /// <summary>'Authorization: Bearer TOKEN' with an API token (<see cref="BearerTokenHandler"/>).</summary>
    public const string Bearer = "bearer";
    /// <summary>The page: a bearer token when the request has an Authorization header, else the cookie; a challenge redirects to /login.</summary>
    public const string Page = "page";
    /// <summary>The API: the same choice; a challenge is a 401 problem with WWW-Authenticate: Bearer.</summary>
    public const string Api = "api";

    /// <summary>Policy of the page's routes (and of any route that names none).</summary>
    public const string AdminPolicy = "admin";
    /// <summary>Policy of /api/v1 and /metrics: a token or a page session.</summary>
    public const string ApiPolicy = "api";

    public const string ViaClaim = "mkb:via";
    public const string ViaPage = "page";
    public const string ViaToken = "token";
    public const string SessionIdClaim = "mkb:session";
}
