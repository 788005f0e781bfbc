using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using MkbVpn.Web.Api;
using MkbVpn.Web.Pages;

namespace MkbVpn.Web.Http;

/// <summary>
/// What an exception becomes (through UseExceptionHandler): a refusal the service or the request
/// explains (bad input, not found, a busy lock, a body too large or malformed) is a problem document
/// for the API and a page for the browser, with its status; anything else is logged and answered
/// with a 500 that shows no stack trace.
/// </summary>
internal sealed class ErrorHandler(ILogger<WebServer> log) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext ctx, Exception e, CancellationToken cancellationToken)
    {
        if (e is OperationCanceledException && ctx.RequestAborted.IsCancellationRequested)
            return false;
        (int status, string message) = e switch
        {
            UserInputException u => (Problems.StatusOf(u), u.Message),
            BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge => (413, "the request body is too large"),
            BadHttpRequestException b => (b.StatusCode, "the request is malformed"),
            InvalidDataException => (400, "the form is malformed or too large"),
            _ => (500, "internal error; see the server's log"),
        };
        if (status == 500)
            Log.RequestFailed(log, e, ctx.Request.Method, ctx.Request.Path);
        if (e is LockBusyException)
            ctx.Response.Headers.RetryAfter = WebServer.RetryAfterBusy.ToString(System.Globalization.CultureInfo.InvariantCulture);
        IResult answer = WebServer.IsApi(ctx) || status == 500
            ? e is UserInputException u2 ? Problems.From(u2) : Problems.Status(status, message)
            : Views.Message(ctx, Problems.TitleOf(status), message, status);
        await answer.ExecuteAsync(ctx);
        return true;
    }
}
