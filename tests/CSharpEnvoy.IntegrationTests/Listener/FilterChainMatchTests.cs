using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Tls;

namespace CSharpEnvoy.IntegrationTests.Listener;

/// <summary>
/// Several filter chains on one listener, chosen per connection by <c>filter_chain_match</c> with the ClientHello the
/// tls_inspector read: each chain its own certificate and routes, the default chain for the rest, and a closed
/// connection counted as <c>no_filter_chain_match</c> when nothing fits.
/// </summary>
public sealed class FilterChainMatchTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("chains ca");

    public void Dispose() => _pki.Dispose();

    private static string Hcm(string answer) => $$"""
        - name: envoy.filters.network.http_connection_manager
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
            stat_prefix: {{answer.Replace(' ', '_')}}
            route_config:
              virtual_hosts:
              - name: all
                domains: ["*"]
                routes:
                - match: { prefix: "/" }
                  direct_response: { status: 200, body: { inline_string: "{{answer}}" } }
        """;

    /// <summary>A filter chain (as a mapping) with <paramref name="match"/> (a YAML line), its own certificate and answer.</summary>
    private string TlsChain(string match, string certName, string answer)
    {
        var pair = _pki.WritePair(certName.Replace('*', '_'), TestPki.Issue(_ca, certName, dns: [certName]));
        return $$"""
            {{match}}
            filters:
            {{Hcm(answer)}}
            {{TlsTestKit.DownstreamSocket("common_tls_context:\n" + Yaml.Indent(TlsTestKit.CertificateYaml(pair), 2))}}
            """;
    }

    private static string PlainChain(string match, string answer) => $"{match}\nfilters:\n{Hcm(answer)}";

    /// <summary>A mapping as a list item.</summary>
    private static string Item(string mapping) => "- " + Yaml.Indent(mapping, 2)[2..];

    private static string Listener(string name, string chains, string extra = "") => $$"""
        - name: {{name}}
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
          listener_filters:
          - name: envoy.filters.listener.tls_inspector
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
          filter_chains:
        {{Yaml.Indent(chains, 2)}}
        {{Yaml.Indent(extra, 2)}}
        """;

    private string Bootstrap() => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
        {{Yaml.Indent(Listener("sni", string.Join("\n",
            Item(TlsChain("filter_chain_match: { server_names: [a.example.com] }", "a.example.com", "chain a")),
            Item(TlsChain("filter_chain_match: { server_names: [\"*.example.com\"] }", "*.example.com", "chain wildcard")),
            Item(TlsChain("filter_chain_match: { server_names: [b.test], transport_protocol: tls }", "b.test", "chain b")),
            Item(PlainChain("filter_chain_match: { transport_protocol: raw_buffer }", "chain plaintext"))),
            "default_filter_chain:\n" + Yaml.Indent(TlsChain("name: fallback", "default.test", "default chain"), 2)), 2)}}
        {{Yaml.Indent(Listener("strict",
            Item(TlsChain("filter_chain_match: { server_names: [a.example.com] }", "a.example.com", "strict a"))), 2)}}
        """;

    /// <summary>A TLS GET with the given SNI; returns the body and the certificate the proxy presented.</summary>
    private async Task<(string Body, string Subject)> GetAsync(ProxyHarness proxy, string listener, string sni)
    {
        X509Certificate? presented = null;
        using var client = TlsTestKit.SniClient(IPEndPoint.Parse(proxy.ListenerAddress(listener)), sni, _ca, c => presented = c);
        var body = await client.GetStringAsync("/");
        return (body, presented!.Subject);
    }

    [Fact]
    public async Task Sni_SelectsExactThenWildcardThenDefaultChain_EachWithItsCertificateAndRoutes()
    {
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap());

        Assert.Equal(("chain a", "CN=a.example.com"), await GetAsync(proxy, "sni", "a.example.com"));
        Assert.Equal(("chain wildcard", "CN=*.example.com"), await GetAsync(proxy, "sni", "c.example.com"));
        Assert.Equal(("chain wildcard", "CN=*.example.com"), await GetAsync(proxy, "sni", "x.a.example.com"));
        Assert.Equal(("chain b", "CN=b.test"), await GetAsync(proxy, "sni", "b.test"));
        Assert.Equal(("default chain", "CN=default.test"), await GetAsync(proxy, "sni", "default.test"));
        Assert.Equal(("default chain", "CN=default.test"), await GetAsync(proxy, "sni", "unknown.org"));

        // Cleartext on the same port: the inspector finds no TLS and the raw_buffer chain serves it.
        using var plain = proxy.Client("sni");
        Assert.Equal("chain plaintext", await plain.GetStringAsync("/"));

        Assert.Equal(0, await proxy.StatAsync("listener.127.0.0.1_0.no_filter_chain_match"));
        Assert.Equal(6, await proxy.StatAsync("tls_inspector.tls_found"));
        Assert.Equal(6, await proxy.StatAsync("tls_inspector.sni_found"));
        Assert.Equal(1, await proxy.StatAsync("tls_inspector.tls_not_found"));
    }

    [Fact]
    public async Task NoChainMatches_WithoutDefaultChain_ClosesTheConnection_AndCounts()
    {
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap());
        Assert.Equal("strict a", (await GetAsync(proxy, "strict", "a.example.com")).Body);

        // Another SNI: closed before the handshake.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => GetAsync(proxy, "strict", "b.example.com"));
        // Cleartext: closed too (the only chain wants a.example.com).
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("strict")));
        var stream = tcp.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await stream.ReadAsync(new byte[256], cts.Token));

        Assert.Equal(2, await TlsTestKit.WaitStatAsync(proxy, "listener.127.0.0.1_0.no_filter_chain_match", 2));
    }

    [Fact]
    public void DuplicateMatchRules_AndPartialWildcards_AreRefusedWithTheirPath()
    {
        var yaml = $$"""
            static_resources:
              listeners:
            {{Yaml.Indent(Listener("dup", string.Join("\n",
                Item(PlainChain("filter_chain_match: { server_names: [a.test, b.test] }", "one")),
                Item(PlainChain("filter_chain_match: { server_names: [b.test] }", "two")),
                Item(PlainChain("filter_chain_match: { server_names: [\"a*.test\"] }", "three")))), 2)}}
            """;
        var errors = ProxyHarness.Validate(yaml).ToString();
        Assert.Contains("static_resources.listeners[0].filter_chains[1].filter_chain_match", errors);
        Assert.Contains("multiple filter chains with the same matching rules", errors);
        Assert.Contains("static_resources.listeners[0].filter_chains[2].filter_chain_match.server_names[0]", errors);
    }
}
