using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Vectors;

/// <summary>
/// Replay-window scenarios with the behaviour the Linux kernel's WireGuard counter self-test expects
/// (drivers/net/wireguard/selftest/counter.c), restated as data: each scenario starts from a fresh
/// window and lists (counter, accepted?) in order. W is the window (8128 = 8192 - 64), L = W + 1,
/// R = Reject-After-Messages.
/// </summary>
public static class KernelReplayVectors
{
    private const ulong W = ReplayWindow.WindowSize;
    private const ulong L = W + 1;
    private const ulong R = Constants.RejectAfterMessages;

    public static IReadOnlyList<(ulong Counter, bool Accepted)> Mixed { get; } = new (ulong, bool)[]
    {
        (0, true), (1, true), (1, false), (9, true), (8, true), (7, true), (7, false),
        (L, true), (L - 1, true), (L - 1, false), (L - 2, true), (2, true), (2, false),
        (L + 16, true), (3, false), (L + 16, false),
        (L * 4, true), (L * 4 - (L - 1), true), (10, false), (L * 4 - L, false),
        (L * 4 - (L + 1), false), (L * 4 - (L - 2), true), (L * 4 + 1 - L, false), (0, false),
        (R, false), (R - 1, true), (R, false), (R - 1, false), (R - 2, true),
        (R + 1, false), (R + 2, false), (R - 2, false), (R - 3, true), (0, false),
    };

    public static IEnumerable<(ulong, bool)[]> Sweeps()
    {
        // 1..W in order, then 0 is exactly at the edge: accepted once.
        yield return Range(1, W, ascending: true).Append((0UL, true)).Append((0UL, false)).ToArray();
        // 2..W+1, then 1 is at the edge, 0 is beyond it.
        yield return Range(2, W + 1, ascending: true).Append((1UL, true)).Append((0UL, false)).ToArray();
        // W..0 descending: all accepted.
        yield return Range(0, W, ascending: false).ToArray();
        // W+1..1 descending, then 0 is too old.
        yield return Range(1, W + 1, ascending: false).Append((0UL, false)).ToArray();
        // W..1 descending, then W+1 moves the window so 0 is too old.
        yield return Range(1, W, ascending: false).Append((W + 1, true)).Append((0UL, false)).ToArray();
        // W..1 descending, 0 still fits, then W+1.
        yield return Range(1, W, ascending: false).Append((0UL, true)).Append((W + 1, true)).ToArray();
    }

    private static IEnumerable<(ulong, bool)> Range(ulong from, ulong to, bool ascending)
    {
        if (ascending)
            for (ulong i = from; i <= to; i++)
                yield return (i, true);
        else
            for (ulong i = to + 1; i-- > from;)
                yield return (i, true);
    }
}
