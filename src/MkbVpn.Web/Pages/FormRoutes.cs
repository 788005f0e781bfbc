using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace MkbVpn.Web.Pages;

/// <summary>The page's form posts take HTML forms only: any other body is a 415, never an exception.</summary>
internal static class FormRoutes
{
    public const string Refusal = "send the form (application/x-www-form-urlencoded or multipart/form-data)";

    public static RouteHandlerBuilder FormOnly(this RouteHandlerBuilder route) =>
        route.AddEndpointFilter(async (ctx, next) =>
        {
            var http = ctx.HttpContext;
            if (http.Request.HasFormContentType)
                return await next(ctx);
            return Views.Message(http, "Unsupported media type", Refusal, StatusCodes.Status415UnsupportedMediaType);
        });
}
