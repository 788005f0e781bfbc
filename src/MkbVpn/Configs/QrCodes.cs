using System.Text;
using QRCoder;

namespace MkbVpn.Configs;

/// <summary>QR codes of client configs, for the WireGuard mobile app's "scan from QR code".</summary>
public static class QrCodes
{
    /// <summary>The most a QR code holds at the level we use: version 40, error correction L, byte mode (ISO/IEC 18004 table 7).</summary>
    public const int MaxBytes = 2953;

    /// <summary>Whether <paramref name="text"/> fits one QR code (a config is ASCII: one byte per character).</summary>
    public static bool Fits(string text) => ByteCount(text) <= MaxBytes;

    public static int ByteCount(string text) => Encoding.UTF8.GetByteCount(text);

    private static QRCodeData Data(string text) =>
        // Low error correction, as qrencode uses: a full config (about 500 bytes) stays small enough for a terminal.
        QRCodeGenerator.GenerateQrCode(text, QRCodeGenerator.ECCLevel.L);

    public static byte[] Png(string text, int pixelsPerModule = 8)
    {
        using var data = Data(text);
        return new PngByteQRCode(data).GetGraphic(pixelsPerModule);
    }

    public static string Svg(string text)
    {
        using var data = Data(text);
        return new SvgQRCode(data).GetGraphic(8);
    }

    /// <summary>
    /// The QR code drawn with half-block characters, two modules per character cell, dark on light
    /// with a quiet zone: readable by phone cameras from most terminals.
    /// </summary>
    public static string Terminal(string text)
    {
        using var data = Data(text);
        var m = data.ModuleMatrix;   // includes a 4-module quiet zone
        int size = m.Count;
        var sb = new StringBuilder();
        for (int y = 0; y < size; y += 2)
        {
            for (int x = 0; x < size; x++)
            {
                bool top = m[y][x];
                bool bottom = y + 1 < size && m[y + 1][x];
                // Light background drawn, dark modules left blank would invert on dark terminals;
                // we draw light pixels with blocks so the code reads right on dark themes.
                sb.Append((top, bottom) switch
                {
                    (false, false) => '█',
                    (false, true) => '▀',
                    (true, false) => '▄',
                    (true, true) => ' ',
                });
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
