using Microsoft.AspNetCore.Http;

namespace MkbVpn.Web.Api;

/// <summary>A request the API refuses with a given status; <see cref="Field"/> names the bad input.</summary>
internal sealed class ApiProblem(int status, string message, string? field = null) : UserInputException(message)
{
    public int Status { get; } = status;
    public string? Field { get; } = field;
}

/// <summary>RFC 9457 problem details for every refusal, with the status that fits the CLI's exit code.</summary>
internal static class Problems
{
    public static int StatusOf(UserInputException e) => e switch
    {
        ApiProblem p => p.Status,
        _ => e.ExitCode switch
        {
            ExitCodes.UserError => StatusCodes.Status400BadRequest,
            ExitCodes.NotFound => StatusCodes.Status404NotFound,
            ExitCodes.Conflict => StatusCodes.Status409Conflict,
            ExitCodes.PoolFull => StatusCodes.Status409Conflict,
            ExitCodes.NotInitialised => StatusCodes.Status503ServiceUnavailable,
            ExitCodes.Database => StatusCodes.Status503ServiceUnavailable,
            _ => StatusCodes.Status500InternalServerError,
        },
    };

    public static string TitleOf(int status) => status switch
    {
        400 => "Invalid request",
        401 => "Authentication required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        413 => "Request body too large",
        415 => "Unsupported media type",
        429 => "Too many requests",
        503 => "Service unavailable",
        _ => "Server error",
    };

    public static IResult From(UserInputException e)
    {
        int status = StatusOf(e);
        if (e is ApiProblem { Field: { } field })
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { [field] = [e.Message] },
                detail: e.Message, statusCode: status, title: TitleOf(status));
        }
        if (e is ApiProblem)
            return Results.Problem(detail: e.Message, statusCode: status, title: TitleOf(status));
        if (e is FieldException f)
        {
            // The service names its fields as the CLI does ("allowed-ips"); JSON members are snake_case.
            string member = f.Field.Replace('-', '_');
            string detail = f.Message.StartsWith(f.Field + ": ", StringComparison.Ordinal) ? member + f.Message[f.Field.Length..] : f.Message;
            return Results.ValidationProblem(new Dictionary<string, string[]> { [member] = [detail] },
                detail: detail, statusCode: status, title: TitleOf(status), extensions: new Dictionary<string, object?> { ["exit_code"] = e.ExitCode });
        }
        return Results.Problem(detail: e.Message, statusCode: status, title: TitleOf(status),
            extensions: new Dictionary<string, object?> { ["exit_code"] = e.ExitCode });
    }

    public static IResult Status(int status, string detail) =>
        Results.Problem(detail: detail, statusCode: status, title: TitleOf(status));
}
