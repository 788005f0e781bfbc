using MkbVpn.Configs;

namespace MkbVpn.Tests;

public class QrCodesTests
{
    private static string Config() => ClientConfig.Render(Fixtures.Server(), Fixtures.Client());

    [Fact]
    public void Png_is_a_png()
    {
        var png = QrCodes.Png(Config());
        Assert.True(png.Length > 100);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
    }

    [Fact]
    public void Svg_is_an_svg()
    {
        var svg = QrCodes.Svg(Config());
        Assert.Contains("<svg", svg);
        Assert.Contains("</svg>", svg);
    }

    [Fact]
    public void Terminal_code_is_square_with_two_modules_per_line()
    {
        var text = QrCodes.Terminal(Config());
        var lines = text.TrimEnd('\n').Split('\n');
        int width = lines[0].Length;
        Assert.All(lines, l => Assert.Equal(width, l.Length));
        Assert.Equal((width + 1) / 2, lines.Length);
        Assert.All(text.Replace("\n", ""), c => Assert.Contains(c, " █▀▄"));
        // Quiet zone: the first line (modules 0 and 1, both light) is all full blocks.
        Assert.Equal(new string('█', width), lines[0]);
        // 4-module quiet zone each side around a version-v symbol of 17 + 4v modules.
        Assert.Equal(0, (width - 8 - 17) % 4);
        // A full config (dual-stack, about 500 bytes) fits a 100-column terminal (low error correction).
        Assert.True(width <= 100, $"QR code is {width} modules wide");
    }

    [Fact]
    public void Different_configs_give_different_codes()
    {
        Assert.NotEqual(QrCodes.Terminal("a"), QrCodes.Terminal("b"));
    }
}
