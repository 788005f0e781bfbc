using Microsoft.Extensions.Logging;

namespace MkbVpn.Web;

/// <summary>The web server's log lines. Never a password, token, cookie or key: names and addresses only.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "mkb-vpn admin page and API listening on {Url}")]
    public static partial void Listening(ILogger logger, string url);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "admin {Admin} logged in from {Remote}")]
    public static partial void LoginSucceeded(ILogger logger, string admin, string remote);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "failed login from {Remote}")]
    public static partial void LoginFailed(ILogger logger, string remote);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "login attempts from {Remote} throttled")]
    public static partial void LoginThrottled(ILogger logger, string remote);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "{Who} {Action} client {Client}")]
    public static partial void ClientChanged(ILogger logger, string who, string action, string client);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Error, Message = "request {Method} {Path} failed")]
    public static partial void RequestFailed(ILogger logger, Exception exception, string method, string path);
}
