namespace MkbVpn.WireGuard.Tests.Vectors;

/// <summary>
/// A complete handshake transcript with deterministic inputs, produced by the independent Python
/// reference in tools/handshake_vector.py (whitepaper 5.4, hashlib + cryptography). Hex.
/// Indices: initiator 0x11223344, responder 0x55667788; timestamp 2020-01-01T00:00:00.5Z.
/// </summary>
public static class HandshakeVectors
{
    public const uint InitiatorIndex = 0x11223344;
    public const uint ResponderIndex = 0x55667788;
    public static readonly DateTimeOffset Timestamp = new(2020, 1, 1, 0, 0, 0, 500, TimeSpan.Zero);
    public const string InitiatorStatic = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e6f";
    public const string ResponderStatic = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f";
    public const string InitiatorEphemeral = "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e4f";
    public const string ResponderEphemeral = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe7f";
    public const string PresharedKey = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef";
    public const string Initiation = "010000004433221123b7bb8c91ae008711fb12846780bcdf1e065f821bdfec49f57e7c7dcd4c48237c9f087a47c7776566936c12f69cdefeb0172eed5225b21ffd5b64d7cbdcc06f5db9067ffb754a97052851ac628edb82dd2c601d8775e93c7828bd960b895f4b4499107f5ea7ce8c3dee8d3aa96b587e77468c5a042fc6e15888181500000000000000000000000000000000";
    public const string Response = "020000008877665544332211605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c38367a1ebcd7ccecbf4226869efec5ead2c43222f746beb9ad5abda2ef22e2cd00000000000000000000000000000000";
    public const string InitiatorSendKey = "24538fbb2f7b0840790ff8bf90b1ba327f60abf80e70035d8814528477206e03";
    public const string InitiatorReceiveKey = "5d2d3fc0fc221c39f0fa4884d050609578db6fd101c6eaf565603d96f46ac756";
    public const string FirstData = "04000000887766550000000000000000f5e3ec73580066bc098ede04c0bf9dab4708569a13ae868b9159b416766bbcb28c9f51266773ea55a816979196d6f700";
}
