using System.Text.Json.Serialization.Metadata;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using HttpProtocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.OpenApi;
using MkbVpn.Admin;
using MkbVpn.Clients;
using MkbVpn.Web.Api;
using MkbVpn.Web.Auth;
using MkbVpn.Web.Http;
using MkbVpn.Web.Pages;

namespace MkbVpn.Web;

/// <summary>How 'mkb-vpn serve' runs the admin page and the API.</summary>
public sealed record WebOptions
{
    public const string DefaultListen = "127.0.0.1:51821";

    public string? DataDir { get; init; }
    /// <summary>The registry when it is not the data directory's SQLite file (--store; default $MKB_VPN_STORE).</summary>
    public string? Store { get; init; }
    public string Listen { get; init; } = DefaultListen;
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    /// <summary>Serve /metrics without authentication (for a scraper on a trusted network).</summary>
    public bool MetricsPublic { get; init; }
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
    public TimeProvider? Time { get; init; }
}

/// <summary>The admin page, the REST API (/api/v1) and /metrics, over one ClientService.</summary>
public sealed class WebServer
{
    public const long MaxBodyBytes = 64 * 1024;

    /// <summary>How long a request that changes something waits for the data directory's lock before it is answered 503.</summary>
    public static readonly TimeSpan LockWait = TimeSpan.FromSeconds(3);

    /// <summary>Retry-After (seconds) of a 503 while another mkb-vpn command holds the lock.</summary>
    public const int RetryAfterBusy = 5;

    private WebServer(WebApplication app, IReadOnlyList<string> warnings)
    {
        App = app;
        Warnings = warnings;
    }

    public WebApplication App { get; }

    /// <summary>Things the admin should know before the server starts (printed on stderr by 'serve').</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The addresses it listens on, once started.</summary>
    public IReadOnlyList<string> Urls => [.. App.Urls];

    public static IPEndPoint ParseListen(string text)
    {
        text = text.Trim();
        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
            text = "127.0.0.1" + text["localhost".Length..];
        if (!IPEndPoint.TryParse(text, out var ep) || !text.Contains(':', StringComparison.Ordinal) || text.EndsWith(']'))
            throw new UserInputException($"--listen: '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:51821 or [::]:51821)");
        return ep;
    }

    public static WebServer Create(WebOptions options)
    {
        var paths = new Paths(options.DataDir, options.Store);
        var time = options.Time ?? TimeProvider.System;
        var endpoint = ParseListen(options.Listen);
        bool tls = options.TlsCertificate is not null || options.TlsKey is not null;
        X509Certificate2? certificate = null;
        if (tls)
        {
            if (options.TlsCertificate is null || options.TlsKey is null)
                throw new UserInputException("--tls-cert and --tls-key go together (PEM files)");
            try
            {
                certificate = X509Certificate2.CreateFromPemFile(options.TlsCertificate, options.TlsKey);
            }
            catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
            {
                throw new UserInputException($"--tls-cert/--tls-key: cannot load the certificate: {e.Message}");
            }
        }
        // A change waits briefly for another mkb-vpn command, then the request gets 503 (Retry-After) instead of hanging.
        var clients = new ClientService(paths, ServiceHost.Live(time)) { LockWait = LockWait };
        clients.GetServer();   // fail fast when not initialised
        var warnings = new List<string>();
        if (!tls && !IPAddress.IsLoopback(endpoint.Address))
            warnings.Add($"listening on {endpoint} without TLS: passwords, session cookies and client private keys cross the network in clear text; use --tls-cert/--tls-key or keep it on 127.0.0.1 behind an SSH tunnel or a TLS proxy");
        var admins = new AdminService(paths, time);
        if (admins.ListAdmins().Count == 0)
            warnings.Add("no admin can log in yet: create one with 'mkb-vpn admin add NAME' (API tokens: 'mkb-vpn token add NAME')");

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // The framework's authentication handler logs every challenge at Information under the handler's own name.
        builder.Logging.AddFilter(typeof(BearerTokenHandler).FullName, LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Listen(endpoint, lo =>
            {
                lo.Protocols = certificate is null ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
                if (certificate is not null)
                    lo.UseHttps(certificate);
            });
        });
        builder.Services.Configure<FormOptions>(o =>
        {
            o.ValueCountLimit = 32;
            o.ValueLengthLimit = 4096;
            o.MultipartBodyLengthLimit = MaxBodyBytes;
        });
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            // The shapes are generated at compile time (no reflection, as native compilation needs); ASP.NET Core's own
            // (problem details) stay after ours in the chain.
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, MkbVpnJson.Default);
            // Never the reflection resolver, even in a process that allows it (the browser tests' driver needs it):
            // a shape missing from MkbVpnJson fails every build's tests, as it would fail the native binary.
            foreach (var reflection in o.SerializerOptions.TypeInfoResolverChain.OfType<DefaultJsonTypeInfoResolver>().ToList())
                o.SerializerOptions.TypeInfoResolverChain.Remove(reflection);
        });
        builder.Services.AddSingleton(paths);
        builder.Services.AddSingleton(time);
        // One ClientService per request, acting for whoever is logged in (the audit log names them).
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped(sp => clients.As(ActorOf(sp.GetRequiredService<IHttpContextAccessor>().HttpContext)));
        builder.Services.AddSingleton(admins);
        builder.Services.AddSingleton(new LoginThrottle(time));
        builder.Services.AddSingleton(new Metrics(time));
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<ErrorHandler>();
        builder.Services.AddWebSecurity(admins);
        builder.Services.AddOpenApi("v1", o =>
        {
            o.AddDocumentTransformer((doc, _, _) =>
            {
                doc.Info = new OpenApiInfo
                {
                    Title = "mkb-vpn API",
                    Version = "v1",
                    Description = "WireGuard clients of an mkb-vpn server. Authenticate with 'Authorization: Bearer TOKEN' (mkb-vpn token add NAME). " +
                        "Errors are RFC 9457 problem details.",
                };
                doc.Components ??= new OpenApiComponents();
                doc.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                doc.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API token from 'mkb-vpn token add NAME'.",
                };
                doc.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", doc)] = [] }];
                return Task.CompletedTask;
            });
        });

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILogger<WebServer>>();
        app.Use(SecurityHeaders.Apply);
        app.UseExceptionHandler();
        app.UseRouting();
        app.Use((ctx, next) => CountRequest(ctx, next, app.Services.GetRequiredService<Metrics>()));
        app.UseWebSecurity();

        // Who may ask what: the API (a token, or a page session with its antiforgery token for changes),
        // the page (a session, or a token: form posts then need no antiforgery token), and the few open routes.
        var api = app.MapGroup("").RequireAuthorization(Schemes.ApiPolicy).WithMetadata(new RequireAntiforgeryTokenAttribute());
        var pages = app.MapGroup("").RequireAuthorization(Schemes.AdminPolicy).WithMetadata(new RequireAntiforgeryTokenAttribute());
        app.MapOpenApi("/api/v1/openapi.json").AllowAnonymous();
        ClientsApi.Map(api);
        AccessApi.Map(api);
        TrafficApi.Map(api);
        GatewaysApi.Map(api);
        TrafficChart.Map(pages);
        LoginPage.Map(app, pages);
        ClientsPage.Map(pages);
        ServerPage.Map(pages);
        AccessPage.Map(pages);
        AccountPage.Map(pages);
        Assets.Map(app);
        var metrics = options.MetricsPublic ? app.MapGroup("").AllowAnonymous() : api;
        Metrics.Map(metrics);
        // 404 or 405 for what no route takes, after the same authentication as the routes around it
        // (an anonymous caller learns nothing about which addresses exist).
        var known = new KnownRoutes(app.Services.GetRequiredService<EndpointDataSource>());
        void Fallback(RouteGroupBuilder group, string pattern) =>
            // A RequestDelegate, not a lambda with parameters: the compile-time handler generator would intercept the
            // latter and drop the pattern (three fallbacks on one catch-all route: an ambiguous match for every unknown path).
            group.MapFallback(pattern, ctx => NotFoundOrWrongMethod(ctx, known).ExecuteAsync(ctx)).WithMetadata(new UnmatchedRoute()).ExcludeFromDescription();
        Fallback(api, "/api/{**path}");
        Fallback(metrics, "/metrics");
        Fallback(pages, "{**path}");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            foreach (var url in app.Urls)
                Log.Listening(log, url);
        });
        return new WebServer(app, warnings);
    }

    /// <summary>404 for a path we do not serve; 405 with Allow for a known path asked with another method.</summary>
    private static IResult NotFoundOrWrongMethod(HttpContext ctx, KnownRoutes known)
    {
        bool api = IsApi(ctx);
        var allowed = known.AllowedMethods(ctx.Request.Path);
        if (allowed.Count > 0)
        {
            ctx.Response.Headers.Allow = string.Join(", ", allowed);
            string why = $"this address accepts {string.Join(", ", allowed)} only";
            return api ? Problems.Status(405, why) : Views.Message(ctx, "Method not allowed", why, 405);
        }
        return api ? Problems.Status(404, "no such endpoint") : Views.Message(ctx, "Not found", "Nothing here.", 404);
    }

    /// <summary>The admin (page) or token (API) behind a request, for the audit log.</summary>
    private static Audit.Actor ActorOf(HttpContext? ctx) =>
        ctx is not null && Session.Find(ctx) is { } p ? new Audit.Actor(p.Name, p.ViaToken ? Audit.Actor.Api : Audit.Actor.Page) : new Audit.Actor("anonymous", Audit.Actor.Api);

    /// <summary>Requests answered with problem documents rather than pages.</summary>
    internal static bool IsApi(HttpContext ctx) =>
        ctx.Request.Path.StartsWithSegments("/api") || ctx.Request.Path.StartsWithSegments("/metrics");

    private static async Task CountRequest(HttpContext ctx, RequestDelegate next, Metrics metrics)
    {
        try
        {
            await next(ctx);
        }
        finally
        {
            var endpoint = ctx.GetEndpoint() as RouteEndpoint;
            string route = endpoint is null || endpoint.Metadata.GetMetadata<UnmatchedRoute>() is not null ? Metrics.Unmatched : endpoint.RoutePattern.RawText ?? Metrics.Unmatched;
            metrics.Count(route, ctx.Request.Method, ctx.Response.StatusCode);
        }
    }
}
