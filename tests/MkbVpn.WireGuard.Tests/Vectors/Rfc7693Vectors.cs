namespace MkbVpn.WireGuard.Tests.Vectors;

/// <summary>
/// RFC 7693 BLAKE2s vectors: appendix B ("abc") and the appendix E self-test grand hash, plus
/// keyed-BLAKE2s, HMAC-BLAKE2s and HKDF values computed independently with Python's hashlib/hmac
/// (blake2s, 64-byte block) for the inputs below.
/// </summary>
public static class Rfc7693Vectors
{
    public const string AbcDigest = "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982";

    /// <summary>Appendix E: BLAKE2s-256 over the concatenated outputs of the self-test sequence.</summary>
    public const string SelfTestGrandHash = "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe";

    /// <summary>Key 00..1f, input "WireGuard HKDF test input".</summary>
    public const string DerivationInput = "WireGuard HKDF test input";
    public const string Mac16 = "78f35cd1e596f3adeff5dd15364a65df";
    public const string Hmac = "4adec31706daed7529fb3d5013bf2a551cda5c884c419f225dd6191f6529cdca";

    /// <summary>HMAC with a 100-byte key 00..63 (longer than the block: the key is hashed first).</summary>
    public const string HmacLongKey = "f6347bfb02546db64a1f344b1301d31affe10031e5ce976b23bf8089d8108cbe";
    public const string Kdf1 = "cd4cab25ca860d8db8a3c70adea92785b214290a185f273eeebebb6f513ee602";
    public const string Kdf2 = "764a8655acd3fbb743ec2d2a3d88a2479b0ba17f3561626c01e1461fb48efae6";
    public const string Kdf3 = "a068c3fc87e55fde0f51649ecbaa876ce2046594c04a830b36471f01c600fdd8";

    /// <summary>HASH(Construction) and HASH(HASH(Construction) || Identifier): the handshake's fixed start.</summary>
    public const string InitialChainingKey = "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36";
    public const string InitialHash = "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3";
}
