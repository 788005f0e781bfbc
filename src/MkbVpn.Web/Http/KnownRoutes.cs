using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;

namespace MkbVpn.Web.Http;

/// <summary>Marks the fallback endpoint: requests it answers count as one "unmatched" route.</summary>
internal sealed class UnmatchedRoute;

/// <summary>
/// Which methods our routes accept for a path, so that a wrong method on a known route is a 405
/// with an Allow header rather than the fallback's 404. (Routing answers 405 by itself only when
/// no fallback endpoint matches; ours matches every path.)
/// </summary>
internal sealed class KnownRoutes(EndpointDataSource endpoints)
{
    private (TemplateMatcher Matcher, IReadOnlyList<string> Methods)[]? _routes;

    public IReadOnlyList<string> AllowedMethods(PathString path)
    {
        _routes ??= [.. endpoints.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<UnmatchedRoute>() is null && e.Metadata.GetMetadata<IHttpMethodMetadata>() is { HttpMethods.Count: > 0 })
            .Select(e => (new TemplateMatcher(TemplateParser.Parse(e.RoutePattern.RawText ?? "/"), new RouteValueDictionary()),
                          e.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods))];
        var allowed = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (matcher, methods) in _routes)
        {
            if (matcher.TryMatch(path, new RouteValueDictionary()))
                allowed.UnionWith(methods);
        }
        return [.. allowed];
    }
}
