using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
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
        var paths = new Paths(options.DataDir);
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
        app.Use((ctx, next) => Guard(ctx, next, log));
        app.UseRouting();
        app.Use((ctx, next) => CountRequest(ctx, next, app.Services.GetRequiredService<Metrics>()));
        app.Use((ctx, next) => Authenticate(ctx, next, admins, options.MetricsPublic));
        app.MapOpenApi("/api/v1/openapi.json");
        ClientsApi.Map(app);
        AccessApi.Map(app);
        LoginPage.Map(app);
        ClientsPage.Map(app);
        ServerPage.Map(app);
        AccessPage.Map(app);
        AccountPage.Map(app);
        Assets.Map(app);
        Metrics.Map(app);
        var known = new KnownRoutes(app.Services.GetRequiredService<EndpointDataSource>());
        app.MapFallback((HttpContext ctx) => NotFoundOrWrongMethod(ctx, known)).WithMetadata(new UnmatchedRoute()).ExcludeFromDescription();
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
            return api ? Problems.Status(405, why)
                : Html.Page(ctx, "Method not allowed", $"<h1>Method not allowed</h1>{Html.Notice(why, error: true)}<p><a href=\"/\">All clients</a></p>", 405);
        }
        return api
            ? Problems.Status(404, "no such endpoint")
            : Html.Page(ctx, "Not found", "<h1>Not found</h1><p><a href=\"/\">All clients</a></p>", 404);
    }

    /// <summary>The admin (page) or token (API) behind a request, for the audit log.</summary>
    private static Audit.Actor ActorOf(HttpContext? ctx) =>
        ctx is not null && Session.Find(ctx) is { } p ? new Audit.Actor(p.Name, p.ViaToken ? Audit.Actor.Api : Audit.Actor.Page) : new Audit.Actor("anonymous", Audit.Actor.Api);

    /// <summary>GET, HEAD, OPTIONS: requests that change nothing (and write nothing, not even a token's last use).</summary>
    private static bool IsRead(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);

    private static bool IsApi(HttpContext ctx) =>
        ctx.Request.Path.StartsWithSegments("/api") || ctx.Request.Path.StartsWithSegments("/metrics");

    /// <summary>Security headers on every answer; refusals as problem details (API) or a page (browser).</summary>
    private static async Task Guard(HttpContext ctx, RequestDelegate next, ILogger log)
    {
        var h = ctx.Response.Headers;
        h.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        h.XContentTypeOptions = "nosniff";
        h.XFrameOptions = "DENY";
        h["Referrer-Policy"] = "no-referrer";
        h.CacheControl = ctx.Request.Path.StartsWithSegments("/static") ? "public, max-age=300" : "no-store";
        if (ctx.Request.IsHttps)
            h.StrictTransportSecurity = "max-age=31536000";
        try
        {
            await next(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is UserInputException or BadHttpRequestException or InvalidDataException)
        {
            (int status, string message) = e switch
            {
                UserInputException u => (Problems.StatusOf(u), u.Message),
                BadHttpRequestException b when b.StatusCode == 413 => (413, "the request body is too large"),
                BadHttpRequestException b => (b.StatusCode, "the request is malformed"),
                _ => (400, "the form is malformed or too large"),
            };
            ctx.Response.Clear();
            RestoreHeaders(ctx);
            if (e is LockBusyException)
                ctx.Response.Headers.RetryAfter = RetryAfterBusy.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (IsApi(ctx))
            {
                await (e is UserInputException u2 ? Problems.From(u2) : Problems.Status(status, message)).ExecuteAsync(ctx);
                return;
            }
            await Html.Page(ctx, Problems.TitleOf(status), $"<h1>{Html.E(Problems.TitleOf(status))}</h1>{Html.Notice(message, error: true)}<p><a href=\"/\">All clients</a></p>", status).ExecuteAsync(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is not OperationCanceledException)
        {
            Log.RequestFailed(log, e, ctx.Request.Method, ctx.Request.Path);
            ctx.Response.Clear();
            RestoreHeaders(ctx);
            await Problems.Status(500, "internal error; see the server's log").ExecuteAsync(ctx);
        }
    }

    private static void RestoreHeaders(HttpContext ctx)
    {
        var h = ctx.Response.Headers;
        h.ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; frame-ancestors 'none'";
        h.XContentTypeOptions = "nosniff";
        h.CacheControl = "no-store";
    }

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

    /// <summary>
    /// Who is asking: a bearer token (automation; no CSRF check: a browser never sends it by
    /// itself) or a session cookie (the page; every state-changing request must carry the
    /// session's CSRF token). Unauthenticated API calls get 401 and nothing else.
    /// </summary>
    private static async Task Authenticate(HttpContext ctx, RequestDelegate next, AdminService admins, bool metricsPublic)
    {
        var path = ctx.Request.Path;
        if (path.StartsWithSegments("/static") || path == "/api/v1/openapi.json")
        {
            await next(ctx);
            return;
        }
        Principal? principal = null;
        string? authorization = ctx.Request.Headers.Authorization;
        if (!string.IsNullOrEmpty(authorization))
        {
            if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                principal = admins.Token(authorization["Bearer ".Length..].Trim(), recordUse: !IsRead(ctx.Request.Method));
        }
        else if (ctx.Request.Cookies[Session.CookieName] is { Length: > 0 } cookie)
        {
            principal = admins.Session(cookie);
        }
        Session.Set(ctx, principal);
        bool isLogin = path == "/login";
        if (principal is null)
        {
            if (path.StartsWithSegments("/api") || (path == "/metrics" && !metricsPublic))
            {
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                await Problems.Write(ctx, StatusCodes.Status401Unauthorized, "authentication required: send 'Authorization: Bearer TOKEN' (mkb-vpn token add NAME) or log in");
                return;
            }
            if (!isLogin && path != "/metrics")
            {
                ctx.Response.Redirect("/login");
                return;
            }
        }
        else if (!principal.ViaToken && !isLogin && !IsRead(ctx.Request.Method))
        {
            string? sent = ctx.Request.Headers[Session.CsrfHeader];
            if (string.IsNullOrEmpty(sent) && ctx.Request.HasFormContentType)
                sent = (await ctx.Request.ReadFormAsync(ctx.RequestAborted))[Session.CsrfField];
            if (!Session.SameSecret(sent, Session.CsrfOf(ctx)))
            {
                const string why = "missing or wrong CSRF token: reload the page and try again (scripts send the X-CSRF-Token header)";
                if (path.StartsWithSegments("/api"))
                    await Problems.Write(ctx, StatusCodes.Status403Forbidden, why);
                else
                    await Html.Page(ctx, "Forbidden", $"<h1>Forbidden</h1>{Html.Notice(why, error: true)}<p><a href=\"/\">All clients</a></p>", 403).ExecuteAsync(ctx);
                return;
            }
        }
        await next(ctx);
    }
}
