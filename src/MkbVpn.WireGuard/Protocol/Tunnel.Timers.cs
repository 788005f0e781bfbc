
namespace MkbVpn.WireGuard.Protocol;

internal sealed partial class Tunnel
{
    /// <summary>
    /// Runs the timers (whitepaper section 6) and returns at most one message to send. Call until it
    /// returns Done: several actions can be due at once.
    /// </summary>
    public TunnelResult Tick(Span<byte> dst)
    {
        TimeSpan now = Now();
        _pending |= _timers.Tick(now);
        if (_wantHandshake)
        {
            _wantHandshake = false;
            _pending |= TimerActions.SendHandshakeInitiation;
        }

        if (Take(TimerActions.ZeroKeys))
        {
            // Section 6.3: no new session for 3 x Reject-After-Time, erase everything.
            _keypairs.Clear();
            _handshake.Clear();
            ReleaseHandshakeIndex();
            ClearQueue();
        }

        if (Take(TimerActions.GiveUpHandshake))
        {
            _handshake.Clear();
            ReleaseHandshakeIndex();
            ClearQueue();
            _pending &= ~TimerActions.SendHandshakeInitiation;
        }

        if (Take(TimerActions.RetransmitHandshake))
        {
            TunnelResult r = TryInitiate(dst, now, isRetry: true);
            if (r.Kind != TunnelResultKind.Done)
                return Counters.Count(r);
        }

        if (Take(TimerActions.SendHandshakeInitiation))
        {
            TunnelResult r = TryInitiate(dst, now, isRetry: false);
            if (r.Kind != TunnelResultKind.Done)
                return Counters.Count(r);
        }

        if (Take(TimerActions.SendKeepalive))
        {
            // Without a session a keepalive becomes a handshake (as wireguard-go's SendKeepalive):
            // a persistent-keepalive peer behind NAT reconnects on its own.
            Keypair? keypair = _keypairs.Current;
            TunnelResult r = Usable(keypair, now)
                ? dst.Length >= TransportData.MinSize ? Seal(keypair!, ReadOnlySpan<byte>.Empty, dst, now) : TunnelResult.Failed(TunnelError.BufferTooSmall)
                : TryInitiate(dst, now, isRetry: false);
            if (r.Kind != TunnelResultKind.Done)
                return Counters.Count(r);
        }

        return TunnelResult.Done;
    }

    private bool Take(TimerActions action)
    {
        if ((_pending & action) == 0)
            return false;
        _pending &= ~action;
        return true;
    }
}
