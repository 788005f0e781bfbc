using System.CommandLine;
using MkbVpn.Web;

namespace MkbVpn.Cli.Commands;

/// <summary>mkb-vpn serve: the web admin page, the REST API (/api/v1) and /metrics.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = $"Address and port to listen on (default {WebOptions.DefaultListen})", HelpName = "ADDR:PORT", DefaultValueFactory = _ => WebOptions.DefaultListen };
        var cert = new Option<string?>("--tls-cert") { Description = "Serve HTTPS with this certificate (PEM; with --tls-key)", HelpName = "FILE" };
        var key = new Option<string?>("--tls-key") { Description = "The certificate's private key (PEM)", HelpName = "FILE" };
        var metricsPublic = new Option<bool>("--metrics-public") { Description = "Serve /metrics without a token (default: an API token or a login is needed)" };
        var cmd = new Command("serve", "Serve the admin page and the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) until stopped.\n" +
            "Create an admin first: mkb-vpn admin add NAME. Then open http://127.0.0.1:51821/ (from elsewhere: ssh -L 51821:127.0.0.1:51821 HOST).\n" +
            "Example: sudo mkb-vpn serve    |    sudo mkb-vpn serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem")
        {
            listen, cert, key, metricsPublic,
        };
        cmd.SetHandler(p =>
        {
            var server = WebServer.Create(new WebOptions
            {
                DataDir = p.GetValue(CliOptions.DataDir),
                Store = p.GetValue(CliOptions.Store),
                Listen = p.GetValue(listen)!,
                TlsCertificate = p.GetValue(cert),
                TlsKey = p.GetValue(key),
                MetricsPublic = p.GetValue(metricsPublic),
            });
            foreach (var w in server.Warnings)
                Console.Error.WriteLine($"mkb-vpn: warning: {w}");
            try
            {
                server.App.Run();
            }
            catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
            {
                throw new UserInputException($"--listen {p.GetValue(listen)}: {e.Message}");
            }
            return 0;
        });
        return cmd;
    }
}
