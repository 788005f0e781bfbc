using System.Diagnostics;

namespace MkbVpn.WireGuard.Protocol;

/// <summary>
/// The receive-side anti-replay window of whitepaper section 5.4.6, as RFC 6479: a ring of 64-bit
/// blocks; moving forward clears whole blocks instead of shifting bits. Sized as the Linux kernel's
/// (<see cref="Constants.ReplayBitsTotal"/> bits, one block of slack), so the newest counter and the
/// <see cref="WindowSize"/> counters before it can be accepted, each at most once.
/// Call <see cref="TryAccept"/> only after the packet authenticated. Not thread-safe.
/// </summary>
internal sealed class ReplayWindow
{
    private const int BlockBitsLog = 6;
    private const int BlockBits = 1 << BlockBitsLog;
    private const int Blocks = Constants.ReplayBitsTotal / BlockBits;

    /// <summary>How far behind the newest counter a counter may be and still be accepted.</summary>
    public const ulong WindowSize = Constants.ReplayBitsTotal - BlockBits;

    private readonly ulong[] _ring = new ulong[Blocks];
    private ulong _newest;

    public ulong Newest => _newest;

    /// <summary>
    /// Records <paramref name="counter"/> and returns true if it was never seen, is not too old and is
    /// below Reject-After-Messages; otherwise returns false and changes nothing.
    /// </summary>
    public bool TryAccept(ulong counter)
    {
        if (counter >= Constants.RejectAfterMessages)
            return false;

        ulong block = counter >> BlockBitsLog;
        if (counter > _newest)
        {
            ulong current = _newest >> BlockBitsLog;
            ulong advance = Math.Min(block - current, Blocks);
            for (ulong i = 1; i <= advance; i++)
                _ring[(current + i) % Blocks] = 0;
            _newest = counter;
        }
        else if (_newest - counter > WindowSize)
        {
            return false;
        }

        int index = (int)(block % Blocks);
        ulong bit = 1UL << (int)(counter & (BlockBits - 1));
        ulong old = _ring[index];
        _ring[index] = old | bit;
        Debug.Assert(_newest >= counter);
        return (old & bit) == 0;
    }

    /// <summary>
    /// Read-only pre-check, for before decryption: false if <paramref name="counter"/> would certainly be
    /// refused (too old, already seen, or at the limit), so replays cost no decryption.
    /// </summary>
    public bool MightAccept(ulong counter)
    {
        if (counter >= Constants.RejectAfterMessages)
            return false;
        if (counter > _newest)
            return true;
        if (_newest - counter > WindowSize)
            return false;
        ulong bit = 1UL << (int)(counter & (BlockBits - 1));
        return (_ring[(int)((counter >> BlockBitsLog) % Blocks)] & bit) == 0;
    }

    public void Reset()
    {
        Array.Clear(_ring);
        _newest = 0;
    }
}
