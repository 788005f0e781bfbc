namespace MkbVpn.WireGuard.Tests.Vectors;

/// <summary>
/// (private, public) pairs in wg(8) base64, produced by the real tool
/// (wireguard-tools v1.0.20210914: `wg genkey | tee /dev/stderr | wg pubkey`). The last two private
/// keys are not clamped (all 0xff; bytes 00..1f): wg clamps before multiplying, and so must we.
/// </summary>
public static class WgToolVectors
{
    public static readonly TheoryData<string, string> KeyPairs = new()
    {
        { "SPPU9iFJ1p0v8KS9OI5bVFlIoEwmTLAmNz9mU4t5AGY=", "G15Jq98p83ZD5voBufS7VvXoA6IJCQJ018I/HjXDdSs=" },
        { "ACkGuqtE1zt31gXkgpX4Mpxyyed6BhzJgAiF4uDg5XA=", "3u8pDf0V6MVJmAEnGkeLlZEcqhSDzBuzbBLEYBb9JQY=" },
        { "SGG/tV3wDLm59HV+lzYIgeLJVbiAKRK24LhMVAV9N2g=", "0NfTBWwMWg0vuLeo9qin8RCxljiG51AOfB9z/GySRDM=" },
        { "//////////////////////////////////////////8=", "hHwNLDdSNPNl5mCVUYejc1oPdhPRYJ06ak2MU66qWiI=" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "j0DFrbaPJWJK5bIU6nZ6bslNgp09e14a0bpvPiE4KF8=" },
    };
}
