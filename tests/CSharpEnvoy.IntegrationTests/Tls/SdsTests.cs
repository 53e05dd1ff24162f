using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using static CSharpEnvoy.IntegrationTests.Xds.FilesystemXdsTests;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// SDS: a listener's certificate from a watched file, rotated while clients keep opening connections (new handshakes
/// get the new certificate, an open connection keeps working), bad secrets rejected while the last good one serves,
/// and static secrets by name.
/// </summary>
public sealed class SdsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("sds test ca");

    public void Dispose() => _pki.Dispose();

    private string SecretFile => Path.Combine(_pki.Dir, "server-secret.yaml");

    /// <summary>A DiscoveryResponse file holding the TLS certificate secret <paramref name="name"/> (files by path).</summary>
    private static string CertificateSecretYaml(string version, string name, (string Cert, string Key) pair) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
          name: {{name}}
          tls_certificate:
            certificate_chain: { filename: "{{pair.Cert}}" }
            private_key: { filename: "{{pair.Key}}" }
        """;

    private X509Certificate2 PublishServerCertificate(string version, string file)
    {
        var cert = TestPki.Issue(_ca, "proxy-" + file, dns: ["proxy.example.com"]);
        Publish(SecretFile, CertificateSecretYaml(version, "server", _pki.WritePair(file, cert)));
        return cert;
    }

    private string FileSdsContext() => $$"""
        common_tls_context:
          alpn_protocols: [http/1.1]
          tls_certificate_sds_secret_configs:
          - name: server
            sds_config:
              path_config_source: { path: "{{SecretFile}}" }
        """;

    private const string Listener = "listener.127.0.0.1_0.";

    /// <summary>An HTTPS client that records the serial of every server certificate it is shown.</summary>
    private HttpClient SerialRecordingClient(ProxyHarness proxy, System.Collections.Concurrent.ConcurrentQueue<string> serials, bool newConnectionEachRequest) =>
        SerialRecordingClient(proxy.ListenerAddress("main"), serials, newConnectionEachRequest);

    private HttpClient SerialRecordingClient(string address, System.Collections.Concurrent.ConcurrentQueue<string> serials, bool newConnectionEachRequest)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = newConnectionEachRequest ? TimeSpan.Zero : Timeout.InfiniteTimeSpan };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            if (cert is null || !TlsTestKit.TrustedBy(cert, _ca)) return false;
            serials.Enqueue(cert.GetSerialNumberString());
            return true;
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"https://{address}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    [Fact]
    public async Task FileSecret_ListenerCertificate_RotatesUnderLoadWithoutFailedRequests()
    {
        var first = PublishServerCertificate("1", "server-v1");
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(FileSdsContext()), TlsTestKit.Cluster(backend.Address)));

        // A connection opened before the rotation.
        var openSerials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var open = SerialRecordingClient(proxy, openSerials, newConnectionEachRequest: false);
        using (var r = await open.GetAsync("/before")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([first.SerialNumber], openSerials);

        // 4 clients, each a new TLS connection per request, 150 requests each; the rotation lands in the middle.
        const int clients = 4, perClient = 150;
        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var done = 0;
        var rotateAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var load = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            using var client = SerialRecordingClient(proxy, serials, newConnectionEachRequest: true);
            for (var i = 0; i < perClient; i++)
            {
                try
                {
                    using var r = await client.GetAsync("/load");
                    if (r.StatusCode != HttpStatusCode.OK) failures.Enqueue(((int)r.StatusCode).ToString());
                }
                catch (HttpRequestException ex)
                {
                    failures.Enqueue(ex.Message);
                }
                if (Interlocked.Increment(ref done) == clients * perClient / 3) rotateAt.TrySetResult();
            }
        })).ToArray();

        await rotateAt.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var second = PublishServerCertificate("2", "server-v2");
        await WaitForStatAsync(proxy, "sds.server.update_success", 2);
        await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(120));

        Assert.Empty(failures);
        var seen = serials.ToArray();
        Assert.Equal(clients * perClient, seen.Length);
        Assert.Contains(first.SerialNumber, seen);
        Assert.Contains(second.SerialNumber, seen);
        // Once a handshake got the new certificate, no later one is handed the old one.
        var firstNew = Array.IndexOf(seen, second.SerialNumber);
        Assert.DoesNotContain(first.SerialNumber, seen[(firstNew + clients)..]);

        // A new handshake now sees the new serial; the connection opened before still works without a new handshake.
        var after = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using (var fresh = SerialRecordingClient(proxy, after, newConnectionEachRequest: false))
        using (var r = await fresh.GetAsync("/after")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([second.SerialNumber], after);
        using (var r = await open.GetAsync("/still-open")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([first.SerialNumber], openSerials);

        Assert.Equal(0, await proxy.StatAsync("sds.server.update_rejected"));
        Assert.True(await proxy.StatAsync(Listener + "server_ssl_socket_factory.ssl_context_update_by_sds") >= 1);
    }

    [Fact]
    public async Task FileSecret_BadUpdates_RejectedWhileTheLastGoodCertificateServes()
    {
        var good = PublishServerCertificate("1", "server-v1");
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(FileSdsContext()), TlsTestKit.Cluster(backend.Address)));
        await WaitForStatAsync(proxy, "sds.server.update_success", 1);

        // A key that is not the certificate's, a file that does not exist, and a PEM that is not one.
        var other = _pki.WritePair("other", TestPki.Issue(_ca, "other"));
        var (cert2, _) = _pki.WritePair("v2", TestPki.Issue(_ca, "v2"));
        Publish(SecretFile, CertificateSecretYaml("2", "server", (cert2, other.Key)));
        await WaitForStatAsync(proxy, "sds.server.update_rejected", 1);
        Publish(SecretFile, CertificateSecretYaml("3", "server", (Path.Combine(_pki.Dir, "missing.crt"), other.Key)));
        await WaitForStatAsync(proxy, "sds.server.update_rejected", 2);
        var garbage = _pki.Write("garbage.crt", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        Publish(SecretFile, CertificateSecretYaml("4", "server", (garbage, other.Key)));
        await WaitForStatAsync(proxy, "sds.server.update_rejected", 3);

        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = SerialRecordingClient(proxy, serials, newConnectionEachRequest: true);
        using (var r = await client.GetAsync("/")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([good.SerialNumber], serials);
        Assert.Equal(1, await proxy.StatAsync("sds.server.update_success"));

        // /certs and /config_dump show the serving version, its private key file name kept.
        using var admin = proxy.AdminClient();
        var certs = await admin.GetStringAsync("/certs");
        Assert.Contains(good.SerialNumber.ToLowerInvariant(), certs);
        var dump = await admin.GetStringAsync("/config_dump?resource=dynamic_active_secrets");
        Assert.Contains("\"name\": \"server\"", dump);
        Assert.Contains("\"version_info\": \"1\"", dump);
    }

    [Fact]
    public async Task StaticSecrets_ByName_ServeTheListenerAndRedactInlineKeys()
    {
        var cert = TestPki.Issue(_ca, "static-proxy", dns: ["proxy.example.com"]);
        var keyPem = TestPki.KeyPem(cert).Replace("\n", "\\n");
        var certPem = TestPki.CertPem(cert).Replace("\n", "\\n");
        var context = """
            common_tls_context:
              tls_certificate_sds_secret_configs: [{ name: server_cert }]
            """;
        var bootstrap = TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster("127.0.0.1:1"))
            .Replace("static_resources:\n", $$"""
                static_resources:
                  secrets:
                  - name: server_cert
                    tls_certificate:
                      certificate_chain: { inline_string: "{{certPem}}" }
                      private_key: { inline_string: "{{keyPem}}" }

                """);
        await using var proxy = await ProxyHarness.StartAsync(bootstrap);

        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = SerialRecordingClient(proxy, serials, newConnectionEachRequest: true);
        using (var r = await client.GetAsync("/")) Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode); // no backend: the TLS part is what counts
        Assert.Equal([cert.SerialNumber], serials);

        using var admin = proxy.AdminClient();
        var dump = await admin.GetStringAsync("/config_dump?resource=static_secrets");
        Assert.Contains("[redacted]", dump);
        Assert.DoesNotContain("PRIVATE KEY", dump);
    }

    [Fact]
    public void UnknownStaticSecret_AndUnsupportedSecretKinds_AreRefusedWithTheirPaths()
    {
        var context = """
            common_tls_context:
              tls_certificate_sds_secret_configs: [{ name: nowhere }]
            """;
        var errors = ProxyHarness.Validate(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster("127.0.0.1:1")));
        Assert.Contains(errors.Errors, e => e.ToString().Contains("unknown static certificate secret 'nowhere'"));

        var withTicketKeys = TlsTestKit.Bootstrap("", TlsTestKit.Cluster("127.0.0.1:1")).Replace("static_resources:\n", """
            static_resources:
              secrets:
              - name: keys
                session_ticket_keys: { keys: [{ inline_string: "x" }] }

            """);
        errors = ProxyHarness.Validate(withTicketKeys);
        Assert.Contains(errors.Errors, e => e.ToString().StartsWith("static_resources.secrets[0].session_ticket_keys"));
    }

    // ------------------------------------------------------------------ SDS over gRPC

    private static Envoy.Extensions.TransportSockets.Tls.V3.Secret CertificateSecret(string name, X509Certificate2 cert) => new()
    {
        Name = name,
        TlsCertificate = new Envoy.Extensions.TransportSockets.Tls.V3.TlsCertificate
        {
            CertificateChain = new Envoy.Config.Core.V3.DataSource { InlineString = TestPki.CertPem(cert) },
            PrivateKey = new Envoy.Config.Core.V3.DataSource { InlineString = TestPki.KeyPem(cert) },
        },
    };

    private static Envoy.Extensions.TransportSockets.Tls.V3.Secret CaSecret(string name, X509Certificate2 ca) => new()
    {
        Name = name,
        ValidationContext = new Envoy.Extensions.TransportSockets.Tls.V3.CertificateValidationContext
        {
            TrustedCa = new Envoy.Config.Core.V3.DataSource { InlineString = TestPki.CertPem(ca) },
        },
    };

    private static bool IsRequestFor(IMessage request, string typeUrl) =>
        request is Envoy.Service.Discovery.V3.DiscoveryRequest d ? d.TypeUrl == typeUrl : ((Envoy.Service.Discovery.V3.DeltaDiscoveryRequest)request).TypeUrl == typeUrl;

    /// <summary>An LDS listener terminating TLS with the SDS secret <c>server_cert</c> (ADS) and routing to <c>backend</c>.</summary>
    private static Envoy.Config.Listener.V3.Listener TlsListener() => AdsTests.Load<Envoy.Config.Listener.V3.Listener>("""
        name: ingress
        address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              common_tls_context:
                tls_certificate_sds_secret_configs:
                - name: server_cert
                  sds_config: { ads: {}, resource_api_version: V3 }
          filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: ingress
              route_config:
                name: local
                virtual_hosts: [{ name: vh, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: backend } }] }]
              http_filters:
              - name: envoy.filters.http.router
                typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
        """);

    /// <summary>A CDS cluster to an HTTPS backend with its client certificate and CA from SDS (ADS), the CA combined
    /// with a default context that checks the backend's SAN.</summary>
    private static Envoy.Config.Cluster.V3.Cluster MtlsCluster(int port) => AdsTests.Load<Envoy.Config.Cluster.V3.Cluster>($$"""
        name: backend
        type: STATIC
        connect_timeout: 2s
        load_assignment:
          cluster_name: backend
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } } }] }]
        transport_socket:
          name: envoy.transport_sockets.tls
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
            common_tls_context:
              tls_certificate_sds_secret_configs:
              - name: client_cert
                sds_config: { ads: {}, resource_api_version: V3 }
              combined_validation_context:
                default_validation_context:
                  match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: backend.example.com } }]
                validation_context_sds_secret_config:
                  name: upstream_ca
                  sds_config: { ads: {}, resource_api_version: V3 }
        """);

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task Ads_ListenerAndClusterSecrets_WarmUntilTheyArrive_ThenServeMtls(string apiType)
    {
        var backendCert = TestPki.Issue(_ca, "backend", dns: ["backend.example.com"]);
        var clientCert = TestPki.Issue(_ca, "sidecar-client");
        var serverCert = TestPki.Issue(_ca, "proxy", dns: ["proxy.example.com"]);
        await using var backend = await TlsBackend.StartAsync(backendCert, requireClientCertFrom: _ca);
        await using var cp = await TestControlPlane.StartAsync();
        // The listener and the cluster arrive, their secrets do not: the cluster warms, and as in Envoy's initialization
        // LDS is not even asked for until the cluster manager is initialized (the cluster's secrets arrived).
        cp.SetSnapshot("1", TlsListener(), MtlsCluster(backend.Port));
        var starting = ProxyHarness.StartAsync(AdsTests.Bootstrap(cp.Port, apiType));
        await cp.WaitAsync<IMessage>(r => IsRequestFor(r, TestControlPlane.SecretType));
        Assert.DoesNotContain(cp.Received, r => IsRequestFor(r, TestControlPlane.ListenerType));
        Assert.False(starting.IsCompleted);

        // The cluster's secrets arrive: LDS starts; the listener warms for its own certificate, the server is not LIVE.
        cp.SetSnapshot("2", TlsListener(), MtlsCluster(backend.Port), CertificateSecret("client_cert", clientCert), CaSecret("upstream_ca", _ca));
        await using var proxy = await starting;
        await WaitForStatAsync(proxy, "listener_manager.lds.update_success", 1);
        Assert.False(proxy.Server.ListenerAddresses.ContainsKey("ingress"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.total_listeners_warming"));
        Assert.Equal(0, await proxy.StatAsync("cluster_manager.warming_clusters"));
        using var admin = proxy.AdminClient();
        using (var notReady = await admin.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            Assert.Equal("INITIALIZING\n", await notReady.Content.ReadAsStringAsync());
        }

        cp.SetSnapshot("3", TlsListener(), MtlsCluster(backend.Port),
            CertificateSecret("server_cert", serverCert), CertificateSecret("client_cert", clientCert), CaSecret("upstream_ca", _ca));
        await WaitForStatAsync(proxy, "sds.upstream_ca.update_success", 1);
        await AdsTests.ListenerClientAsync(proxy, "ingress");

        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = SerialRecordingClient(proxy.Server.ListenerAddresses["ingress"], serials, newConnectionEachRequest: true);
        using var response = await client.GetAsync("/mtls");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("CN=sidecar-client", response.Headers.GetValues("x-echo-client-cert").Single());
        Assert.Equal([serverCert.SerialNumber], serials);
        Assert.Equal(1, await proxy.StatAsync("sds.client_cert.update_success"));
        Assert.Equal("LIVE\n", await admin.GetStringAsync("/ready"));

        // A bad secret (a certificate without its key) is refused; the listener keeps its certificate.
        var broken = CertificateSecret("server_cert", TestPki.Issue(_ca, "broken"));
        broken.TlsCertificate.PrivateKey = new Envoy.Config.Core.V3.DataSource { InlineString = TestPki.KeyPem(clientCert) };
        cp.SetSnapshot("4", TlsListener(), MtlsCluster(backend.Port), broken, CertificateSecret("client_cert", clientCert), CaSecret("upstream_ca", _ca));
        await WaitForStatAsync(proxy, "sds.server_cert.update_rejected", 1);
        using (var r = await client.GetAsync("/after-nack")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([serverCert.SerialNumber, serverCert.SerialNumber], serials);
    }

    [Fact]
    public async Task SdsStream_StaticListener_WaitsForItsSecretThenServes()
    {
        var serverCert = TestPki.Issue(_ca, "proxy", dns: ["proxy.example.com"]);
        await using var backend = await TestBackend.StartEchoAsync();
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("1", CertificateSecret("server", serverCert));
        var context = """
            common_tls_context:
              tls_certificate_sds_secret_configs:
              - name: server
                sds_config:
                  resource_api_version: V3
                  api_config_source:
                    api_type: GRPC
                    transport_api_version: V3
                    grpc_services: [{ envoy_grpc: { cluster_name: sds_cluster } }]
            """;
        var sdsCluster = $$"""
            - name: sds_cluster
              type: STATIC
              connect_timeout: 1s
              typed_extension_protocol_options:
                envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                  "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                  explicit_http_config: { http2_protocol_options: {} }
              load_assignment:
                cluster_name: sds_cluster
                endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{cp.Port}} } } } }] }]
            """;
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster(backend.Address) + "\n" + sdsCluster));

        // StartAsync returned: the secret was there before the port opened.
        Assert.Equal(1, await proxy.StatAsync("sds.server.update_success"));
        Assert.True(cp.StreamsByMethod.ContainsKey("StreamSecrets"));
        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = SerialRecordingClient(proxy, serials, newConnectionEachRequest: true);
        using (var r = await client.GetAsync("/")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal([serverCert.SerialNumber], serials);
    }

    [Fact]
    public async Task SecretThatNeverArrives_ListenerOpensAfterInitialFetchTimeout_AndResetsHandshakes()
    {
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("1"); // no secrets at all
        var context = """
            common_tls_context:
              tls_certificate_sds_secret_configs:
              - name: missing
                sds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.5s }
            """;
        var bootstrap = TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster("127.0.0.1:1"))
            .Replace("static_resources:\n", $$"""
                dynamic_resources:
                  ads_config:
                    api_type: GRPC
                    transport_api_version: V3
                    grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]
                static_resources:

                """)
            .Replace("  clusters:\n", $$"""
                  clusters:
                  - name: xds_cluster
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: { http2_protocol_options: {} }
                    load_assignment:
                      cluster_name: xds_cluster
                      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{cp.Port}} } } } }] }]

                """);
        await using var proxy = await ProxyHarness.StartAsync(bootstrap);

        Assert.Equal(1, await proxy.StatAsync("sds.missing.init_fetch_timeout"));
        var serials = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = SerialRecordingClient(proxy, serials, newConnectionEachRequest: true);
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/"));
        Assert.Empty(serials);
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(proxy, Listener + "server_ssl_socket_factory.downstream_context_secrets_not_ready", 1));
    }

    [Fact]
    public async Task FileSecrets_ClusterClientCertificateAndCa_RotateForNewUpstreamConnections()
    {
        var backendCert = TestPki.Issue(_ca, "backend", dns: ["backend.example.com"]);
        // The backend closes every connection, so each request makes a new upstream handshake.
        await using var backend = await TlsBackend.StartAsync(backendCert, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, requireClientCertFrom: _ca,
            configure: app => app.Run((Microsoft.AspNetCore.Http.RequestDelegate)(async ctx =>
            {
                ctx.Response.Headers.Connection = "close";
                ctx.Response.Headers["x-echo-client-cert"] = ctx.Connection.ClientCertificate?.Subject ?? "";
                await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, "ok");
            })));
        var certFile = Path.Combine(_pki.Dir, "client-secret.yaml");
        var caFile = Path.Combine(_pki.Dir, "ca-secret.yaml");
        Publish(certFile, CertificateSecretYaml("1", "client", _pki.WritePair("client-v1", TestPki.Issue(_ca, "client-v1"))));
        Publish(caFile, $$"""
            version_info: "1"
            resources:
            - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
              name: upstream_ca
              validation_context: { trusted_ca: { filename: "{{_pki.Write("ca.pem", TestPki.CertPem(_ca))}}" } }
            """);
        var upstream = $$"""
            common_tls_context:
              tls_certificate_sds_secret_configs:
              - name: client
                sds_config: { path_config_source: { path: "{{certFile}}" } }
              validation_context_sds_secret_config:
                name: upstream_ca
                sds_config: { path_config_source: { path: "{{caFile}}" } }
            sni: backend.example.com
            """;
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap("", TlsTestKit.Cluster(backend.Address, TlsTestKit.UpstreamSocket(upstream))));
        using var client = proxy.Client("main");

        async Task<string> ClientSubjectAsync()
        {
            using var r = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return r.Headers.GetValues("x-echo-client-cert").Single();
        }

        Assert.Equal("CN=client-v1", await ClientSubjectAsync());
        Publish(certFile, CertificateSecretYaml("2", "client", _pki.WritePair("client-v2", TestPki.Issue(_ca, "client-v2"))));
        await WaitForStatAsync(proxy, "sds.client.update_success", 2);
        Assert.Equal("CN=client-v2", await ClientSubjectAsync());
        Assert.True(await proxy.StatAsync("cluster.backend.client_ssl_socket_factory.ssl_context_update_by_sds") >= 1);

        // A CA that did not sign the backend's certificate: new upstream handshakes fail verification (503 UF).
        Publish(caFile, $$"""
            version_info: "2"
            resources:
            - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
              name: upstream_ca
              validation_context: { trusted_ca: { filename: "{{_pki.Write("other-ca.pem", TestPki.CertPem(TestPki.CreateCa("other ca")))}}" } }
            """);
        await WaitForStatAsync(proxy, "sds.upstream_ca.update_success", 2);
        using (var r = await client.GetAsync("/")) Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.True(await proxy.StatAsync("cluster.backend.ssl.fail_verify_error") >= 1);
    }
}
