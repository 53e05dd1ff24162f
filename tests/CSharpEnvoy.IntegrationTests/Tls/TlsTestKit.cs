using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>Bootstraps, HTTPS backends and clients for the TLS tests.</summary>
internal static class TlsTestKit
{
    public const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    /// <summary>A DownstreamTlsContext transport socket (indented for a filter chain) with the given context body.</summary>
    public static string DownstreamSocket(string contextBody) => $$"""
        transport_socket:
          name: envoy.transport_sockets.tls
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
        {{Yaml.Indent(contextBody, 4)}}
        """;

    public static string UpstreamSocket(string contextBody) => $$"""
        transport_socket:
          name: envoy.transport_sockets.tls
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        {{Yaml.Indent(contextBody, 4)}}
        """;

    public static string CertificateYaml((string Cert, string Key) pair) => $$"""
        tls_certificates:
        - certificate_chain: { filename: "{{pair.Cert}}" }
          private_key: { filename: "{{pair.Key}}" }
        """;

    /// <summary>Admin and one listener "main" whose filter chain has <paramref name="filterChainExtra"/> (e.g. a
    /// transport socket), plus clusters.</summary>
    public static string Bootstrap(string filterChainExtra, string clusters, string codec = "AUTO", string hcmExtra = "") => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: main
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress_http
                  codec_type: {{codec}}
        {{Yaml.Indent(hcmExtra, 10)}}
                  route_config:
                    name: local_route
                    virtual_hosts:
        {{Yaml.Indent(Routes, 12)}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        {{Yaml.Indent(filterChainExtra, 6)}}
          clusters:
        {{Yaml.Indent(clusters, 2)}}
        """;

    /// <summary>A STATIC cluster "backend" at <paramref name="address"/> with extra cluster fields (transport socket, protocol options).</summary>
    public static string Cluster(string address, string extra = "")
    {
        var i = address.LastIndexOf(':');
        return $$"""
            - name: backend
              connect_timeout: 2s
              type: STATIC
              load_assignment:
                cluster_name: backend
                endpoints:
                - lb_endpoints:
                  - endpoint: { address: { socket_address: { address: {{address[..i]}}, port_value: {{address[(i + 1)..]}} } } }
            {{Yaml.Indent(extra, 2)}}
            """;
    }

    public const string Http2Options = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
            explicit_http_config: { http2_protocol_options: {} }
        """;

    /// <summary>An HTTPS client for a TLS listener, trusting only <paramref name="ca"/> (or anything when null).</summary>
    public static HttpClient Client(ProxyHarness proxy, X509Certificate2? ca, X509Certificate2? clientCert = null, bool http2 = false)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false, PooledConnectionLifetime = TimeSpan.Zero };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, chain, _) => ca is null || TrustedBy(cert, ca);
        if (clientCert is not null) handler.SslOptions.ClientCertificates = new X509CertificateCollection { clientCert };
        return new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://{proxy.ListenerAddress("main")}"),
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>An HTTPS client sending <paramref name="sni"/> to a listener at <paramref name="endPoint"/>, trusting only
    /// <paramref name="ca"/>; <paramref name="presented"/> sees each certificate the listener presents.</summary>
    public static HttpClient SniClient(IPEndPoint endPoint, string sni, X509Certificate2 ca, Action<X509Certificate?>? presented = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await s.ConnectAsync(endPoint, ct);
                return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
            },
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            presented?.Invoke(cert);
            return TrustedBy(cert, ca);
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"https://{sni}:{endPoint.Port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public static bool TrustedBy(X509Certificate? cert, X509Certificate2 ca)
    {
        if (cert is null) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
    }

    /// <summary>Polls a stat until it reaches <paramref name="expected"/> (server-side counters land just after the client sees the result).</summary>
    public static async Task<long> WaitStatAsync(ProxyHarness proxy, string name, long expected)
    {
        long v = 0;
        for (var i = 0; i < 50; i++)
        {
            v = await proxy.StatAsync(name);
            if (v >= expected) return v;
            await Task.Delay(50);
        }
        return v;
    }
}

/// <summary>A Kestrel HTTPS backend echoing what it received (protocol, scheme, SNI, client certificate, headers).</summary>
internal sealed class TlsBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TlsBackend(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public string? LastSni { get; private set; }

    public static async Task<TlsBackend> StartAsync(X509Certificate2 serverCert, HttpProtocols protocols = HttpProtocols.Http1AndHttp2,
        X509Certificate2? requireClientCertFrom = null, Action<WebApplication>? configure = null)
    {
        TlsBackend? self = null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, lo =>
            {
                lo.Protocols = protocols;
                var https = new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, sni) =>
                    {
                        if (self is not null) self.LastSni = sni;
                        return serverCert;
                    },
                };
                if (requireClientCertFrom is not null)
                {
                    https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                    https.ClientCertificateValidation = (cert, _, _) => TlsTestKit.TrustedBy(cert, requireClientCertFrom);
                }
                lo.UseHttps(https);
            });
        });
        var app = builder.Build();
        if (configure is not null) configure(app);
        else app.Run(async ctx =>
        {
            ctx.Response.Headers["x-echo-protocol"] = ctx.Request.Protocol;
            ctx.Response.Headers["x-echo-scheme"] = ctx.Request.Scheme;
            var client = ctx.Connection.ClientCertificate;
            if (client is not null) ctx.Response.Headers["x-echo-client-cert"] = client.Subject;
            foreach (var h in ctx.Request.Headers)
                ctx.Response.Headers["x-echo-req-" + h.Key.ToLowerInvariant()] = h.Value.ToString();
            await ctx.Response.WriteAsync("tls backend");
        });
        await app.StartAsync();
        self = new TlsBackend(app, new Uri(app.Urls.First()).Port);
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
