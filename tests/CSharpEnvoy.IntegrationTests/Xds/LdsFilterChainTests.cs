using System.Net;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Tls;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>
/// LDS listeners with the shapes static ones have: several filter chains chosen by SNI (tls_inspector), a chain whose
/// routes come from RDS, a tcp_proxy chain; and Envoy's in-place filter chain update, which keeps the connections of
/// the chains it does not change and drains those of the one it changes.
/// </summary>
public sealed class LdsFilterChainTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("lds chains ca");

    public void Dispose() => _pki.Dispose();

    private string TlsSocket(string certName, string file) =>
        TlsTestKit.DownstreamSocket("common_tls_context:\n" + Yaml.Indent(TlsTestKit.CertificateYaml(_pki.WritePair(file, TestPki.Issue(_ca, certName, dns: [certName]))), 2));

    private const string HcmType = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    /// <summary>Listener "edge": a.example.com answers inline, b.example.com routes by RDS ("routes"), cleartext goes
    /// through tcp_proxy to the cluster "backend". <paramref name="bCertFile"/> names chain b's certificate files (a new
    /// name is a new certificate, so a changed chain).</summary>
    private Envoy.Config.Listener.V3.Listener EdgeListener(string bCertFile) => Load<Envoy.Config.Listener.V3.Listener>($$"""
        name: edge
        address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        listener_filters:
        - name: envoy.filters.listener.tls_inspector
          typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector }
        filter_chains:
        - filter_chain_match: { server_names: [a.example.com] }
          filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": {{HcmType}}
              stat_prefix: chain_a
              route_config:
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "chain a" } } }]
        {{Yaml.Indent(TlsSocket("a.example.com", "a"), 2)}}
        - filter_chain_match: { server_names: [b.example.com] }
          filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": {{HcmType}}
              stat_prefix: chain_b
              rds: { route_config_name: routes, config_source: { ads: {}, resource_api_version: V3 } }
        {{Yaml.Indent(TlsSocket("b.example.com", bCertFile), 2)}}
        - filter_chain_match: { transport_protocol: raw_buffer }
          filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: raw
              cluster: backend
        """);

    private async Task<(ProxyHarness Proxy, TestControlPlane Cp, TestBackend Backend)> StartAsync()
    {
        var backend = await TestBackend.StartEchoAsync("a");
        var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", EdsCluster("backend"), Cla("backend", backend.Port), EdgeListener("b1"), Routes("routes", "backend"));
        var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        return (proxy, cp, backend);
    }

    [Fact]
    public async Task SniChains_RdsChain_AndTcpProxyChain_ServeOverAds()
    {
        var (proxy, cp, backend) = await StartAsync();
        await using var _ = proxy;
        await using var __ = cp;
        await using var ___ = backend;
        using var cleartext = await ListenerClientAsync(proxy, "edge");
        var edge = IPEndPoint.Parse(proxy.ListenerAddress("edge"));
        string? subject = null;
        using var a = TlsTestKit.SniClient(edge, "a.example.com", _ca, c => subject = c?.Subject);
        using var b = TlsTestKit.SniClient(edge, "b.example.com", _ca, c => subject = c?.Subject);

        Assert.Equal("chain a", await a.GetStringAsync("/"));
        Assert.Equal("CN=a.example.com", subject);
        await EventuallyAsync(b, "a"); // b's routes came by RDS
        Assert.Equal("CN=b.example.com", subject);
        using var raw = await cleartext.GetAsync("/through-tcp-proxy");
        Assert.Equal("a GET /through-tcp-proxy body=0", await raw.Content.ReadAsStringAsync());

        Assert.Equal(1, await TlsTestKit.WaitStatAsync(proxy, "tcp.raw.downstream_cx_total", 1));
        Assert.Equal(1, await proxy.StatAsync("http.chain_b.rds.routes.update_success"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.lds.update_success"));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.lds.update_rejected"));
    }

    [Fact]
    public async Task UpdateChangingOneChain_KeepsTheOtherChainsConnections_AndDrainsTheChangedOnes()
    {
        var (proxy, cp, backend) = await StartAsync();
        await using var _ = proxy;
        await using var __ = cp;
        await using var ___ = backend;
        using var cleartext = await ListenerClientAsync(proxy, "edge");
        var address = proxy.ListenerAddress("edge");
        var edge = IPEndPoint.Parse(address);
        var serials = new List<string>();
        using var a = TlsTestKit.SniClient(edge, "a.example.com", _ca);
        using var b = TlsTestKit.SniClient(edge, "b.example.com", _ca, c => serials.Add(c!.GetSerialNumberString()));
        Assert.Equal("chain a", await a.GetStringAsync("/"));
        await EventuallyAsync(b, "a");
        Assert.Equal("a", await BackendOfAsync(cleartext));

        // v2: chain b gets another certificate; chains a and tcp_proxy are the same.
        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", backend.Port), EdgeListener("b2"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(ListenerType, "v2");

        // The unchanged chains keep their connections (no new one opened, no close asked).
        using var a2 = await a.GetAsync("/");
        Assert.Equal("chain a", await a2.Content.ReadAsStringAsync());
        Assert.NotEqual(true, a2.Headers.ConnectionClose);
        Assert.Equal("a", await BackendOfAsync(cleartext));
        Assert.Equal(1, await proxy.StatAsync("http.chain_a.downstream_cx_total"));
        Assert.Equal(1, await proxy.StatAsync("tcp.raw.downstream_cx_total"));
        // The changed chain's open connection drains: its next response asks the client to close ...
        using var b2 = await b.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, b2.StatusCode);
        Assert.True(b2.Headers.ConnectionClose, "a connection on the changed chain should be told to close");
        // ... and the new connection gets the new chain with its new certificate.
        Assert.Equal("a", await BackendOfAsync(b));
        Assert.Equal(2, serials.Distinct().Count());

        Assert.Equal(address, proxy.ListenerAddress("edge")); // same socket
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_in_place_updated"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_modified"));
    }
}
