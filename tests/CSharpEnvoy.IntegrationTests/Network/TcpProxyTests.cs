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
}
