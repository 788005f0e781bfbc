using System.Net;
using System.Security.Cryptography;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.WireGuard.Tests.Protocol;

public sealed class SessionIndexTests
{
    [Fact]
    public void An_index_is_random_and_never_one_that_is_live()
    {
        // The random source offers index 7 twice: the second owner must get another one.
        var random = new ScriptedRandom([7, 0, 0, 0], [7, 0, 0, 0], [9, 0, 0, 0]);
        var table = new SessionIndexTable(random);
        object first = new(), second = new();
        Assert.Equal(7u, table.Allocate(first));
        Assert.Equal(9u, table.Allocate(second));
        Assert.Same(first, table.Lookup(7));
        Assert.Same(second, table.Lookup(9));

        table.Release(7, second); // not its index: nothing happens
        Assert.Same(first, table.Lookup(7));
        table.Release(7, first);
        Assert.Null(table.Lookup(7));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Sessions_of_one_peer_have_unrelated_indices_that_never_wrap_and_are_freed()
    {
        var time = new ManualTime();
        var table = new SessionIndexTable(RandomNumberGenerator.Create());
        using var idA = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        using var idB = new StaticIdentity(WireGuardKeys.NewPrivateKey());
        object peerBOnA = new(), peerAOnB = new();
        using var a = new Tunnel(idA, idB.PublicKey, null, time, RandomNumberGenerator.Create(), indices: table, owner: peerBOnA);
        using var b = new Tunnel(idB, idA.PublicKey, null, time, RandomNumberGenerator.Create(), indices: table, owner: peerAOnB);
        byte[] source = MacLayout.SourceBytes(new IPEndPoint(IPAddress.Parse("198.18.0.1"), 51820));
        var buffer = new byte[2048];
        var dst = new byte[2048];
        var initiatorIndices = new List<uint>();
        var responderIndices = new List<uint>();

        // 300 handshakes: more than a rolling byte can count.
        for (int i = 0; i < 300; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            TunnelResult r = a.Encapsulate([], buffer);
            if (a.HasSession)
            {
                // Force a fresh handshake as a rekey would: expire the session by time.
                time.Advance(Constants.RejectAfterTime);
                r = a.Encapsulate([], buffer);
            }
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
            byte[] init = buffer[..r.Length];
            uint sender = HandshakeInitiation.Sender(init);
            Assert.Same(peerBOnA, table.Lookup(sender));
            initiatorIndices.Add(sender);

            r = b.Decapsulate(init, buffer, source);
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind);
            byte[] resp = buffer[..r.Length];
            responderIndices.Add(HandshakeResponse.Sender(resp));
            Assert.Same(peerAOnB, table.Lookup(HandshakeResponse.Sender(resp)));

            r = a.Decapsulate(resp, buffer, source);
            Assert.Equal(TunnelResultKind.WriteToNetwork, r.Kind); // the confirming keepalive
            b.Decapsulate(buffer.AsSpan(0, r.Length), dst);
            Assert.True(a.HasSession && b.HasSession);
            // current + previous (+ a pending next) per side: retired keypairs free their indices.
            Assert.InRange(table.Count, 2, 6);
        }

        Assert.Equal(300, initiatorIndices.Distinct().Count());
        Assert.Equal(300, responderIndices.Distinct().Count());
        // No fixed per-peer part links them (the old scheme kept the top 24 bits).
        Assert.True(initiatorIndices.Select(i => i >> 8).Distinct().Count() > 250);
        Assert.True(responderIndices.Select(i => i >> 8).Distinct().Count() > 250);
    }
}
