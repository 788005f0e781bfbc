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

    /// <summary>
    /// A rule or group change adds routes to the configs of everyone it concerns (split tunnel): refuses it
    /// (before anything is committed) when a config that fitted a QR code would no longer fit, naming how many
    /// and one of them. Configs that already did not fit (imported, say) are not held against the change.
    /// </summary>
    private static void EnsureRoutesFitQr(Access.AccessPolicy before, Access.AccessPolicy after, ConfigHomes homesBefore, ConfigHomes homesAfter)
    {
        var old = before.Clients.ToDictionary(c => c.Id);
        int tooLarge = 0;
        (Client Client, int Bytes)? first = null;
        foreach (var c in after.Clients)
        {
            if (c.PrivateKey is null || !old.TryGetValue(c.Id, out var o))
                continue;
            var routes = homesAfter.Routes(after, c);
            if (homesBefore.Routes(before, o).SequenceEqual(routes))
                continue;
            string text = homesAfter.Render(after, c);
            if (QrCodes.Fits(text) || !QrCodes.Fits(homesBefore.Render(before, o)))
                continue;
            tooLarge++;
            first ??= (c, QrCodes.ByteCount(text));
        }
        if (first is { } f)
            throw new FieldException("to",
                $"to: this change would make the config of '{f.Client.Name}'{(tooLarge > 1 ? $" and {tooLarge - 1} other client(s)" : "")} {f.Bytes} bytes, more than a QR code holds ({QrCodes.MaxBytes}); allow fewer, larger networks (e.g. one /24 instead of many /32)");
    }
}
