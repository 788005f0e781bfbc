using MkbVpn.Configs;

namespace MkbVpn.Clients;

public sealed partial class ClientService
{
    /// <summary>
    /// Refuses (before anything is committed) a client whose config would not fit one QR code: the
    /// page, the API and 'mkb-vpn qr' could not show it. Names the list that made it long. Clients
    /// without a private key have no QR code and are not checked.
    /// </summary>
    private static void EnsureQrFits(Client client, string config)
    {
        if (client.PrivateKey is null || QrCodes.Fits(config))
            return;
        string field = client.AllowedIps is not null ? "allowed-ips" : client.Dns is not null ? "dns" : "allowed-ips";
        throw new FieldException(field,
            $"{field}: the config of '{client.Name}' would be {QrCodes.ByteCount(config)} bytes, more than a QR code holds ({QrCodes.MaxBytes}); give fewer or shorter networks (e.g. one /24 instead of many /32)");
    }
}
