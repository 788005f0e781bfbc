using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using MkbVpn.Admin;
using MkbVpn.Web.Api;
using MkbVpn.Web.Pages;

namespace MkbVpn.Web.Auth;

/// <summary>
/// Authentication (a cookie scheme for the page, a bearer scheme for API tokens), authorization
/// policies and antiforgery, all on ASP.NET Core's own services.
/// </summary>
internal static class WebSecurity
{
    public const string CsrfRefusal = "missing or wrong CSRF token: reload the page and try again (scripts send the X-CSRF-Token header)";

    public static void AddWebSecurity(this IServiceCollection services, AdminService admins)
    {
        services.AddAuthentication(o =>
            {
                o.DefaultScheme = Schemes.Page;
                o.DefaultChallengeScheme = Schemes.Page;
            })
            .AddCookie(Schemes.Cookie, o => SessionCookie.Configure(o, admins))
            .AddScheme<AuthenticationSchemeOptions, BearerTokenHandler>(Schemes.Bearer, null)
            // A request with an Authorization header is judged by it alone (a bad token is not rescued by a cookie).
            .AddPolicyScheme(Schemes.Page, null, o =>
            {
                o.ForwardDefaultSelector = ByHeader;
                o.ForwardChallenge = Schemes.Cookie;
                o.ForwardForbid = Schemes.Cookie;
            })
            .AddPolicyScheme(Schemes.Api, null, o =>
            {
                o.ForwardDefaultSelector = ByHeader;
                o.ForwardChallenge = Schemes.Bearer;
                o.ForwardForbid = Schemes.Bearer;
            });

        var admin = new AuthorizationPolicyBuilder(Schemes.Page).RequireAuthenticatedUser().Build();
        services.AddAuthorizationBuilder()
            .AddPolicy(Schemes.AdminPolicy, admin)
            .AddPolicy(Schemes.ApiPolicy, p => p.AddAuthenticationSchemes(Schemes.Api).RequireAuthenticatedUser())
            // A route that names no policy is closed too (only /login, /static and the OpenAPI document say AllowAnonymous).
            .SetFallbackPolicy(admin);

        services.AddAntiforgery(o =>
        {
            o.FormFieldName = Session.CsrfField;
            o.HeaderName = Session.CsrfHeader;
            o.Cookie.Name = Session.CsrfCookieName;
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            o.SuppressXFrameOptionsHeader = true;   // ours is DENY (SecurityHeaders)
        });
        // Keys in memory, made at start (like the login throttle's): nothing written to disk; a restart
        // makes open forms ask for a reload, and page sessions do not depend on them.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
    }

    private static string ByHeader(HttpContext ctx) =>
        string.IsNullOrEmpty(ctx.Request.Headers.Authorization) ? Schemes.Cookie : Schemes.Bearer;

    /// <summary>
    /// Authentication, authorization, then the antiforgery check of every state-changing request
    /// to an endpoint that asks for it (<see cref="RequireAntiforgeryTokenAttribute"/>): a page
    /// session must send its token (form field _csrf or header X-CSRF-Token); a bearer token needs
    /// none, as a browser never sends one by itself.
    /// </summary>
    public static void UseWebSecurity(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.Use(RefuseForgedRequests);
    }

    /// <summary>403 for a page session's change without its antiforgery token; a bearer request goes on.</summary>
    private static async Task RefuseForgedRequests(HttpContext ctx, RequestDelegate next)
    {
        // An endpoint mapped without saying either way (none of ours) is checked too: a page session's
        // change always needs its token unless the endpoint opts out (DisableAntiforgery, as /login does).
        if (!BearerTokenHandler.IsRead(ctx.Request.Method) && !HttpMethods.IsTrace(ctx.Request.Method)
            && ctx.GetEndpoint() is { } endpoint && endpoint.Metadata.GetMetadata<IAntiforgeryMetadata>() is null
            && Session.Find(ctx) is { ViaToken: false })
        {
            bool valid = await ctx.RequestServices.GetRequiredService<IAntiforgery>().IsRequestValidAsync(ctx);
            ctx.Features.Set<IAntiforgeryValidationFeature>(new Checked(valid));
        }
        if (ctx.Features.Get<IAntiforgeryValidationFeature>() is { IsValid: false })
        {
            if (Session.Find(ctx) is { ViaToken: true })
            {
                // A bearer token is no ambient credential: its request needs no antiforgery token, and the form may be read.
                ctx.Features.Set<IAntiforgeryValidationFeature>(null);
                await next(ctx);
                return;
            }
            IResult refusal = WebServer.IsApi(ctx)
                ? Problems.Status(StatusCodes.Status403Forbidden, CsrfRefusal)
                : Views.Message(ctx, "Forbidden", CsrfRefusal, StatusCodes.Status403Forbidden);
            await refusal.ExecuteAsync(ctx);
            return;
        }
        await next(ctx);
    }

    private sealed class Checked(bool valid) : IAntiforgeryValidationFeature
    {
        public bool IsValid => valid;

        public Exception? Error => null;
    }

    /// <summary>The antiforgery token for this request's forms, bound to its session (or to no one, on the login form); sets its cookie when new.</summary>
    public static string Token(HttpContext ctx) =>
        ctx.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(ctx).RequestToken!;
}
