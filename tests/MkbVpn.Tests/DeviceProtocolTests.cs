using System.Net;
using MkbVpn.Devices;
using MkbVpn.WireGuard.Protocol;

namespace MkbVpn.Tests;

public class UapiTests
{
    private static readonly WireGuardKey Priv = Fixtures.Key(0x48), A = Fixtures.Key(0xA1), B = Fixtures.Key(0xB2), Psk = Fixtures.Key(0x11);

    private static string Hex(WireGuardKey k) => k.ToHex();

    [Fact]
    public void RenderSet_of_nothing_is_null()
    {
        Assert.Null(UapiDevice.RenderSet(new DeviceChanges()));
    }

    [Fact]
    public void RenderSet_writes_interface_settings_upserts_removes_and_kicks()
    {
        var changes = new DeviceChanges
        {
            PrivateKey = Priv,
            ListenPort = 51820,
            Peers =
            [
                new PeerChange.Upsert(new PeerSpec(A, Psk, [IPNetwork.Parse("203.0.113.2/32"), IPNetwork.Parse("fd00:1234:5678::2/128")])),
                new PeerChange.Remove(B),
                new PeerChange.Kick(A, "198.51.100.7:4000"),
            ],
        };
        var expected =
            "set=1\n" +
            $"private_key={Hex(Priv)}\n" +
            "listen_port=51820\n" +
            $"public_key={Hex(A)}\n" +
            $"preshared_key={Hex(Psk)}\n" +
            "replace_allowed_ips=true\n" +
            "allowed_ip=203.0.113.2/32\n" +
            "allowed_ip=fd00:1234:5678::2/128\n" +
            $"public_key={Hex(B)}\n" +
            "remove=true\n" +
            $"public_key={Hex(A)}\n" +
            "update_only=true\n" +
            "endpoint=198.51.100.7:4000\n" +
            "\n";
        Assert.Equal(expected, UapiDevice.RenderSet(changes));
        Assert.Equal(64, Hex(A).Length);
        Assert.Equal(Hex(A), Hex(A).ToLowerInvariant());
    }

    [Fact]
    public void RenderSet_upsert_with_no_allowed_ips_still_replaces_them()
    {
        var text = UapiDevice.RenderSet(new DeviceChanges { Peers = [new PeerChange.Upsert(new PeerSpec(A, Psk, []))] })!;
        Assert.Contains("replace_allowed_ips=true\n", text);
        Assert.DoesNotContain("allowed_ip=", text);
        Assert.DoesNotContain("private_key", text);
        Assert.DoesNotContain("listen_port", text);
        Assert.EndsWith("\n\n", text);
    }

    [Fact]
    public void ParseGet_reads_a_realistic_wireguard_go_answer()
    {
        string zero = new('0', 64);
        var lines = $"""
            private_key={Hex(Priv)}
            listen_port=51820
            fwmark=0
            public_key={Hex(A)}
            preshared_key={Hex(Psk)}
            protocol_version=1
            endpoint=198.51.100.7:40000
            last_handshake_time_sec=1700000000
            last_handshake_time_nsec=500000000
            tx_bytes=1234
            rx_bytes=5678
            persistent_keepalive_interval=25
            allowed_ip=203.0.113.2/32
            allowed_ip=fd00:1234:5678::2/128
            public_key={Hex(B)}
            preshared_key={zero}
            protocol_version=1
            last_handshake_time_sec=0
            last_handshake_time_nsec=0
            tx_bytes=0
            rx_bytes=0
            persistent_keepalive_interval=0
            errno=0
            """.Split('\n');
        var state = UapiDevice.ParseGet(lines);
        Assert.Equal(Priv, state.PrivateKey);
        Assert.Equal(51820, state.ListenPort);
        Assert.Equal(2, state.Peers.Count);

        var a = state.Peers[0];
        Assert.Equal(A, a.PublicKey);
        Assert.Equal(Psk, a.PresharedKey);
        Assert.Equal("198.51.100.7:40000", a.Endpoint);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddMilliseconds(500), a.LastHandshake);
        Assert.Equal(1234, a.TxBytes);
        Assert.Equal(5678, a.RxBytes);
        Assert.Equal(25, a.PersistentKeepalive);
        Assert.Equal([IPNetwork.Parse("203.0.113.2/32"), IPNetwork.Parse("fd00:1234:5678::2/128")], a.AllowedIps);

        var b = state.Peers[1];
        Assert.Equal(B, b.PublicKey);
        Assert.Null(b.PresharedKey);   // all-zero = none
        Assert.Null(b.Endpoint);
        Assert.Null(b.LastHandshake);
        Assert.Empty(b.AllowedIps);    // A's allowed IPs do not leak into B
        Assert.Equal(0, b.PersistentKeepalive);
    }

    [Fact]
    public void ParseGet_of_an_unconfigured_interface()
    {
        var state = UapiDevice.ParseGet(["listen_port=0", "errno=0"]);
        Assert.Null(state.PrivateKey);
        Assert.Equal(0, state.ListenPort);
        Assert.Empty(state.Peers);

        var zeroKey = UapiDevice.ParseGet([$"private_key={new string('0', 64)}", "listen_port=40000"]);
        Assert.Null(zeroKey.PrivateKey);
        Assert.Equal(40000, zeroKey.ListenPort);
    }

    [Fact]
    public void ParseGet_ipv6_endpoint_and_handshake_nanoseconds()
    {
        var state = UapiDevice.ParseGet([
            $"public_key={Hex(A)}",
            "endpoint=[2001:db8::7]:51820",
            "last_handshake_time_sec=0",
            "last_handshake_time_nsec=300",
        ]);
        var p = Assert.Single(state.Peers);
        Assert.Equal("[2001:db8::7]:51820", p.Endpoint);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddTicks(3), p.LastHandshake);
    }

    [Fact]
    public void ParseGet_refuses_a_bad_public_key()
    {
        Assert.Throws<FormatException>(() => UapiDevice.ParseGet(["public_key=nothex"]));
    }

    [Fact]
    public void RenderSet_output_describes_what_ParseGet_would_read_back()
    {
        // Round trip through the two halves of the protocol: the peer we set is the peer we read.
        var spec = new PeerSpec(A, Psk, [IPNetwork.Parse("203.0.113.2/32")]);
        var text = UapiDevice.RenderSet(new DeviceChanges { ListenPort = 51000, Peers = [new PeerChange.Upsert(spec)] })!;
        var state = UapiDevice.ParseGet(text.Split('\n').Where(l => l != "set=1" && !l.StartsWith("replace_", StringComparison.Ordinal)).ToList());
        Assert.Equal(51000, state.ListenPort);
        var p = Assert.Single(state.Peers);
        Assert.True(Reconciler.Matches(spec, p));
    }
}

public class WgDumpTests
{
    private static readonly WireGuardKey Priv = Fixtures.Key(0x48), Pub = Fixtures.Key(0x49), A = Fixtures.Key(0xA1), B = Fixtures.Key(0xB2), Psk = Fixtures.Key(0x11);

    [Fact]
    public void ParseDump_reads_real_wg_show_dump_output()
    {
        string dump =
            $"{Priv.ToBase64()}\t{Pub.ToBase64()}\t51820\toff\n" +
            $"{A.ToBase64()}\t{Psk.ToBase64()}\t198.51.100.7:40000\t203.0.113.2/32,fd00:1234:5678::2/128\t1700000000\t5678\t1234\t25\n" +
            $"{B.ToBase64()}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n";
        var state = WgToolDevice.ParseDump(dump);
        Assert.Equal(Priv, state.PrivateKey);
        Assert.Equal(51820, state.ListenPort);
        Assert.Equal(2, state.Peers.Count);

        var a = state.Peers[0];
        Assert.Equal(A, a.PublicKey);
        Assert.Equal(Psk, a.PresharedKey);
        Assert.Equal("198.51.100.7:40000", a.Endpoint);
        Assert.Equal([IPNetwork.Parse("203.0.113.2/32"), IPNetwork.Parse("fd00:1234:5678::2/128")], a.AllowedIps);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), a.LastHandshake);
        Assert.Equal(5678, a.RxBytes);
        Assert.Equal(1234, a.TxBytes);
        Assert.Equal(25, a.PersistentKeepalive);

        var b = state.Peers[1];
        Assert.Equal(B, b.PublicKey);
        Assert.Null(b.PresharedKey);
        Assert.Null(b.Endpoint);
        Assert.Empty(b.AllowedIps);
        Assert.Null(b.LastHandshake);
        Assert.Equal(0, b.PersistentKeepalive);
    }

    [Fact]
    public void ParseDump_interface_without_key_or_peers()
    {
        var state = WgToolDevice.ParseDump("(none)\t(none)\t0\toff\n");
        Assert.Null(state.PrivateKey);
        Assert.Equal(0, state.ListenPort);
        Assert.Empty(state.Peers);
    }

    [Fact]
    public void ParseDump_ipv6_endpoint_and_fwmark()
    {
        string dump =
            $"{Priv.ToBase64()}\t{Pub.ToBase64()}\t40000\t0xca6c\n" +
            $"{A.ToBase64()}\t(none)\t[2001:db8::7]:51820\t203.0.113.2/32\t0\t0\t0\toff\n";
        var state = WgToolDevice.ParseDump(dump);
        Assert.Equal(40000, state.ListenPort);
        Assert.Equal("[2001:db8::7]:51820", Assert.Single(state.Peers).Endpoint);
    }

    [Fact]
    public void ParseDump_of_nothing_is_an_error()
    {
        Assert.Throws<FormatException>(() => WgToolDevice.ParseDump(""));
        Assert.Throws<FormatException>(() => WgToolDevice.ParseDump("\n"));
    }

    [Fact]
    public void Dump_and_uapi_agree_on_the_same_peer()
    {
        var dump = WgToolDevice.ParseDump(
            $"{Priv.ToBase64()}\t{Pub.ToBase64()}\t51820\toff\n" +
            $"{A.ToBase64()}\t{Psk.ToBase64()}\t198.51.100.7:40000\t203.0.113.2/32\t1700000000\t10\t20\t0\n");
        var uapi = UapiDevice.ParseGet([
            $"private_key={Priv.ToHex()}", "listen_port=51820", $"public_key={A.ToHex()}", $"preshared_key={Psk.ToHex()}",
            "endpoint=198.51.100.7:40000", "last_handshake_time_sec=1700000000", "last_handshake_time_nsec=0",
            "rx_bytes=10", "tx_bytes=20", "persistent_keepalive_interval=0", "allowed_ip=203.0.113.2/32",
        ]);
        Assert.Equal(dump.PrivateKey, uapi.PrivateKey);
        Assert.Equal(dump.ListenPort, uapi.ListenPort);
        var d = dump.Peers.Single();
        var u = uapi.Peers.Single();
        Assert.Equal(d with { AllowedIps = u.AllowedIps }, u);
        Assert.Equal(d.AllowedIps, u.AllowedIps);
    }

    // The key check closes the connection at the first peer: an interface of 10,000 peers (about 3 MB of answer)
    // is not read to its end. A stand-in UAPI server writes the whole answer and notes when its reader went away.
    [Fact]
    public void ReadPrivateKey_reads_the_interface_lines_and_closes_before_the_peers()
    {
        WireGuardKey priv = Fixtures.Key(0x48);
        string dir = Directory.CreateTempSubdirectory("mkb-uapi-key-").FullName;
        try
        {
            using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(dir, "mkbkey0.sock")));
            listener.Listen(1);
            long written = 0, total = 0;
            bool readerLeft = false;
            var server = new Thread(() =>
            {
                using var connection = listener.Accept();
                using var stream = new System.Net.Sockets.NetworkStream(connection);
                var request = new List<byte>();
                while (request.Count < 2 || request[^1] != '\n' || request[^2] != '\n')
                    request.Add((byte)stream.ReadByte());
                Assert.Equal("get=1\n\n", System.Text.Encoding.ASCII.GetString([.. request]));
                var answer = new System.Text.StringBuilder($"private_key={priv.ToHex()}\nlisten_port=51820\n");
                for (int i = 0; i < 10_000; i++)
                    answer.Append($"public_key={Fixtures.Key((byte)i).ToHex()}\npreshared_key={Fixtures.Key(0x11).ToHex()}\nprotocol_version=1\nendpoint=198.18.0.1:{1000 + i}\n")
                          .Append($"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=fd00::{i:x}/128\n");
                byte[] bytes = System.Text.Encoding.ASCII.GetBytes(answer.Append("errno=0\n\n").ToString());
                total = bytes.Length;
                try
                {
                    for (; written < total; written += 4096)
                        stream.Write(bytes, (int)written, (int)Math.Min(4096, total - written));
                }
                catch (IOException)
                {
                    readerLeft = true;
                }
            }) { IsBackground = true };
            server.Start();

            IWireGuardDevice device = new UapiDevice("mkbkey0", dir); // as the verbs call it
            Assert.Equal(priv, device.ReadPrivateKey());
            Assert.True(server.Join(TimeSpan.FromSeconds(20)), "the stand-in server did not finish");
            Assert.True(readerLeft, $"the reader took the whole answer ({written} of {total} bytes)");
            Assert.True(total > 3_000_000, $"answer of {total} bytes");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
