using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Tls;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace CSharpEnvoy.IntegrationTests.Network;

/// <summary><c>envoy.filters.network.tcp_proxy</c>: byte-exact streams both ways, and TLS passthrough chosen by SNI
/// (tls_inspector + server_names) to different TLS backends without terminating TLS.</summary>
public sealed class TcpProxyTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    private static string TcpChain(string match, string cluster) => $$"""
        - {{match}}
          filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: {{cluster}}_tcp
              cluster: {{cluster}}
        """;

    private static string Cluster(string name, int port) => $$"""
        - name: {{name}}
          connect_timeout: 2s
          type: STATIC
          load_assignment:
            cluster_name: {{name}}
            endpoints:
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } }
        """;

    private static string Bootstrap(string chains, string clusters, bool inspector = false) => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: tcp
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        {{(inspector ? "    listener_filters:\n    - name: envoy.filters.listener.tls_inspector\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" : "")}}
            filter_chains:
        {{Yaml.Indent(chains, 4)}}
          clusters:
        {{Yaml.Indent(clusters, 2)}}
        """;

    /// <summary>A raw TCP echo server: writes back every byte, half-closes when the client does.</summary>
    private static (TcpListener Listener, Task Loop) StartEcho()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var loop = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var client = await listener.AcceptTcpClientAsync();
                    _ = Task.Run(async () =>
                    {
                        using var c = client;
                        var s = c.GetStream();
                        await s.CopyToAsync(s);
                        c.Client.Shutdown(SocketShutdown.Send);
                    });
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        });
        return (listener, loop);
    }

    [Fact]
    public async Task TenMegabytes_EchoedByteExact_InBothDirections()
    {
        var (echo, loop) = StartEcho();
        try
        {
            var port = ((IPEndPoint)echo.LocalEndpoint).Port;
            await using var proxy = await ProxyHarness.StartAsync(Bootstrap(TcpChain("name: echo", "echo"), Cluster("echo", port)));
            using var client = new TcpClient();
            await client.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("tcp")));
            var stream = client.GetStream();
            var payload = RandomNumberGenerator.GetBytes(10 * 1024 * 1024);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            var send = Task.Run(async () =>
            {
                for (var o = 0; o < payload.Length; o += 64 * 1024) await stream.WriteAsync(payload.AsMemory(o, Math.Min(64 * 1024, payload.Length - o)), cts.Token);
                client.Client.Shutdown(SocketShutdown.Send);
            });
            var received = new MemoryStream();
            await stream.CopyToAsync(received, cts.Token); // ends when the echo half-closes through the proxy
            await send;

            Assert.Equal(payload.Length, received.Length);
            Assert.True(payload.AsSpan().SequenceEqual(received.GetBuffer().AsSpan(0, (int)received.Length)));
            Assert.Equal(payload.Length, await TlsTestKit.WaitStatAsync(proxy, "tcp.echo_tcp.downstream_cx_rx_bytes_total", payload.Length));
            Assert.Equal(payload.Length, await TlsTestKit.WaitStatAsync(proxy, "tcp.echo_tcp.downstream_cx_tx_bytes_total", payload.Length));
            Assert.Equal(1, await proxy.StatAsync("cluster.echo.upstream_cx_total"));
        }
        finally
        {
            echo.Stop();
            await loop;
        }
    }

    [Fact]
    public async Task TlsPassthrough_BySni_ReachesTheRightBackend_WithItsOwnCertificate()
    {
        var ca = TestPki.CreateCa("passthrough ca");
        await using var one = await TlsBackend.StartAsync(TestPki.Issue(ca, "one.example.com", dns: ["one.example.com"]), HttpProtocols.Http1);
        await using var two = await TlsBackend.StartAsync(TestPki.Issue(ca, "two.example.com", dns: ["two.example.com"]), HttpProtocols.Http1);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(
            TcpChain("filter_chain_match: { server_names: [one.example.com] }", "one") + "\n" +
            TcpChain("filter_chain_match: { server_names: [two.example.com] }", "two"),
            Cluster("one", one.Port) + "\n" + Cluster("two", two.Port), inspector: true));

        foreach (var (sni, backend) in new[] { ("one.example.com", one), ("two.example.com", two) })
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("tcp")));
            await using var ssl = new SslStream(tcp.GetStream());
            X509Certificate? presented = null;
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = sni,
                RemoteCertificateValidationCallback = (_, cert, _, _) => { presented = cert; return TlsTestKit.TrustedBy(cert, ca); },
            });
            await ssl.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n"));
            var body = await new StreamReader(ssl).ReadToEndAsync();

            // The backend terminated TLS itself: its certificate, its SNI.
            Assert.Equal("CN=" + sni, presented!.Subject);
            Assert.Equal(sni, backend.LastSni);
            Assert.Contains("tls backend", body);
        }
        Assert.Equal(1, await proxy.StatAsync("cluster.one.upstream_cx_total"));
        Assert.Equal(1, await proxy.StatAsync("cluster.two.upstream_cx_total"));
        Assert.Equal(2, await proxy.StatAsync("tls_inspector.sni_found"));
    }

    [Theory]
    [InlineData("127.0.0.0", true)]
    [InlineData("10.0.0.0", false)]
    public async Task NetworkRbac_ClosesDeniedConnections_BeforeTheTcpProxy(string allowedPrefix, bool allowed)
    {
        var (echo, loop) = StartEcho();
        try
        {
            var port = ((IPEndPoint)echo.LocalEndpoint).Port;
            var chain = $$"""
                - filters:
                  - name: envoy.filters.network.rbac
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                      stat_prefix: tcp.
                      rules:
                        action: ALLOW
                        policies:
                          local:
                            permissions: [{ any: true }]
                            principals: [{ direct_remote_ip: { address_prefix: {{allowedPrefix}}, prefix_len: 8 } }]
                      shadow_rules:
                        policies:
                          everyone: { permissions: [{ any: true }], principals: [{ any: true }] }
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: echo_tcp
                      cluster: echo
                """;
            await using var proxy = await ProxyHarness.StartAsync(Bootstrap(chain, Cluster("echo", port)));
            using var client = new TcpClient();
            await client.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("tcp")));
            var stream = client.GetStream();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var buffer = new byte[5];
            try
            {
                await stream.WriteAsync("hello"u8.ToArray(), cts.Token);
                if (allowed) await stream.ReadExactlyAsync(buffer, cts.Token);
                else Assert.Equal(0, await stream.ReadAsync(buffer, cts.Token));
            }
            catch (IOException) when (!allowed)
            {
                // a reset is as good as a close for a refused connection
            }

            if (allowed) Assert.Equal("hello"u8.ToArray(), buffer);
            Assert.Equal(allowed ? 1 : 0, await proxy.StatAsync("tcp.rbac.allowed"));
            Assert.Equal(allowed ? 0 : 1, await proxy.StatAsync("tcp.rbac.denied"));
            Assert.Equal(1, await proxy.StatAsync("tcp.rbac.shadow_allowed"));
            Assert.Equal(allowed ? 1 : 0, await proxy.StatAsync("cluster.echo.upstream_cx_total"));
        }
        finally
        {
            echo.Stop();
            await loop;
        }
    }

    private string LogPath => Path.Combine(_pki.Dir, "tcp.log");

    /// <summary>A tcp_proxy chain to <paramref name="cluster"/> with a file access log and extra filter fields.</summary>
    private string LoggedChain(string cluster, string extra = "") => $$"""
        - filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: logged
              cluster: {{cluster}}
        {{Yaml.Indent(extra, 6)}}
              access_log:
              - name: envoy.access_loggers.file
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                  path: {{LogPath}}
                  log_format:
                    text_format_source:
                      inline_string: "%UPSTREAM_CLUSTER% %UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %RESPONSE_CODE%\n"
        """;

    /// <summary>Opens a connection through the proxy, sends <paramref name="send"/>, reads until the proxy closes.</summary>
    private static async Task<byte[]> ExchangeAsync(ProxyHarness proxy, byte[] send)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("tcp")));
        var stream = client.GetStream();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new MemoryStream();
        try
        {
            await stream.WriteAsync(send, cts.Token);
            client.Client.Shutdown(SocketShutdown.Send);
            await stream.CopyToAsync(received, cts.Token);
        }
        catch (IOException)
        {
            // a refused connection may be reset rather than closed
        }
        return received.ToArray();
    }

    private async Task<string[]> LogLinesAsync(ProxyHarness proxy, int expected)
    {
        await HealthChecking.HealthTestKit.WaitUntilAsync(async () => await proxy.StatAsync("tcp.logged.downstream_cx_total") >= expected, "the connections");
        await proxy.DisposeAsync(); // closes what is left and flushes the log
        return File.ReadAllText(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task AccessLog_OneEntryPerConnection_WithClusterHostBytesAndNoFlags()
    {
        var (echo, loop) = StartEcho();
        try
        {
            var port = ((IPEndPoint)echo.LocalEndpoint).Port;
            var proxy = await ProxyHarness.StartAsync(Bootstrap(LoggedChain("echo"), Cluster("echo", port)));
            Assert.Equal("hello world"u8.ToArray(), await ExchangeAsync(proxy, "hello world"u8.ToArray()));

            var line = Assert.Single(await LogLinesAsync(proxy, 1));
            Assert.Equal($"echo 127.0.0.1:{port} 11 11 - 127.0.0.1 0", line);
        }
        finally
        {
            echo.Stop();
            await loop;
        }
    }

    [Fact]
    public async Task AccessLog_FailedConnections_CarryEnvoysResponseFlags()
    {
        // A port nothing listens on (connect failure, UF), an unknown cluster (NC), and max_connections 0 (overflow, UO).
        var deadPort = FixedPorts.Next();
        foreach (var (cluster, expected) in new[]
        {
            ("dead", $"dead 127.0.0.1:{deadPort} 0 0 UF 127.0.0.1 0"),
            ("nowhere", "- - 0 0 NC 127.0.0.1 0"),
            ("full", "full - 0 0 UO 127.0.0.1 0"),
        })
        {
            File.Delete(LogPath);
            var full = Cluster("full", deadPort) + "\n  circuit_breakers: { thresholds: [{ max_connections: 0 }] }";
            var proxy = await ProxyHarness.StartAsync(Bootstrap(LoggedChain(cluster), Cluster("dead", deadPort) + "\n" + full));
            Assert.Empty(await ExchangeAsync(proxy, "x"u8.ToArray()));
            Assert.Equal(expected, Assert.Single(await LogLinesAsync(proxy, 1)));
        }
    }

    /// <summary>Raw TCP servers that each write their name to every connection, then close.</summary>
    private static List<(TcpListener Listener, Task Loop)> StartNamed(params string[] names)
    {
        var servers = new List<(TcpListener, Task)>();
        foreach (var name in names)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var loop = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        using var c = await listener.AcceptTcpClientAsync();
                        await c.GetStream().WriteAsync(System.Text.Encoding.ASCII.GetBytes(name));
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
                {
                }
            });
            servers.Add((listener, loop));
        }
        return servers;
    }

    [Theory]
    [InlineData("RING_HASH", true)]
    [InlineData("MAGLEV", true)]
    [InlineData("RING_HASH", false)]
    public async Task HashPolicy_SourceIp_SendsEveryConnectionFromOneAddressToOneHost(string lbPolicy, bool sourceIpHash)
    {
        var servers = StartNamed("a", "b", "c");
        try
        {
            var endpoints = string.Join("\n", servers.Select(s =>
                $"      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {((IPEndPoint)s.Listener.LocalEndpoint).Port} }} }} }}"));
            var cluster = $$"""
                - name: hashed
                  connect_timeout: 2s
                  type: STATIC
                  lb_policy: {{lbPolicy}}
                  load_assignment:
                    cluster_name: hashed
                    endpoints:
                    - lb_endpoints:
                {{endpoints}}
                """;
            var hash = sourceIpHash ? "hash_policy: [{ source_ip: {} }]" : "";
            await using var proxy = await ProxyHarness.StartAsync(Bootstrap(LoggedChain("hashed", hash), cluster));

            var seen = new HashSet<string>();
            for (var i = 0; i < 24; i++) seen.Add(System.Text.Encoding.ASCII.GetString(await ExchangeAsync(proxy, [])));

            // With the hash, one address maps to one host; without it ring hash picks at random (24 picks over 3 hosts).
            if (sourceIpHash) Assert.Single(seen);
            else Assert.True(seen.Count > 1, string.Join(",", seen));
            Assert.DoesNotContain("", seen);
        }
        finally
        {
            foreach (var (l, loop) in servers)
            {
                l.Stop();
                await loop;
            }
        }
    }

    [Theory]
    [InlineData("hash_policy: [{ filter_state: { key: x } }]", "hash_policy[0].filter_state")]
    [InlineData("hash_policy: [{ source_ip: {} }, { source_ip: {} }]", "hash_policy")]
    [InlineData("access_log_options: { access_log_flush_interval: 1s }", "access_log_options")]
    public void UnsupportedTcpProxyOptions_AreRefusedWithTheirPaths(string extra, string field)
    {
        var errors = ProxyHarness.Validate(Bootstrap(LoggedChain("echo", extra), Cluster("echo", 1)));
        Assert.Contains(errors.Errors, e => e.ToString().StartsWith("static_resources.listeners[0].filter_chains[0].filters[0].typed_config." + field));
    }
}
