using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace MkbVpn.Web.Api;

/// <summary>Reads a JSON request body with clear refusals: 415 not JSON, 413 too large, 400 invalid (naming the field).</summary>
internal static class JsonBody
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.Strict,
        TypeInfoResolver = MkbVpnJson.Default,
    };

    public static async Task<T> Read<T>(HttpRequest request) where T : class
    {
        if (!request.HasJsonContentType())
            throw new ApiProblem(StatusCodes.Status415UnsupportedMediaType, "send the request body as JSON (Content-Type: application/json)");
        try
        {
            // The shape comes from the generated metadata (MkbVpnJson): no reflection.
            var shape = (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T));
            return await JsonSerializer.DeserializeAsync(request.Body, shape, request.HttpContext.RequestAborted)
                ?? throw new ApiProblem(StatusCodes.Status400BadRequest, "the request body is empty or null: send a JSON object");
        }
        catch (JsonException e)
        {
            string field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            string why;
            if (e.Message.Contains("could not be mapped", StringComparison.Ordinal))
                (field, why) = (Unknown(e.Message) ?? field, $"unknown field '{Unknown(e.Message) ?? field}'");
            else if (e.Message.Contains("could not be converted", StringComparison.Ordinal))
                why = $"{field}: wrong type";
            else
                (field, why) = ("body", $"the request body is not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {e.BytePositionInLine ?? 0})");
            throw new ApiProblem(StatusCodes.Status400BadRequest, why, field);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiProblem(StatusCodes.Status413PayloadTooLarge, "the request body is too large");
        }
    }

    private static string? Unknown(string message)
    {
        int a = message.IndexOf('\'', StringComparison.Ordinal);
        int b = a < 0 ? -1 : message.IndexOf('\'', a + 1);
        return a >= 0 && b > a ? message[(a + 1)..b] : null;
    }
}
