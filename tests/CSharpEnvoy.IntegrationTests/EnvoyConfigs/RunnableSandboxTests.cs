using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Sandbox configs csenvoy fully supports today: each is loaded as it is (only hosts and ports rewritten, see
/// <see cref="EnvoyConfigRewriter"/>), real Kestrel backends stand in for the sandbox's services, and the proxy must
/// answer the way the sandbox expects.
/// </summary>
public sealed class RunnableSandboxTests
{
    /// <summary>Unnamed listeners are named after their address; after the rewrite that is this.</summary>
    private const string UnnamedListener = "#0"; // the first listener (unnamed listeners get a UUID, as in Envoy)

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    // ----- front-proxy: the two service envoys behind the front proxy -----

    [Fact]
    public async Task FrontProxy_ServiceEnvoys_EachRouteItsOwnServicePath()
    {
        // front-proxy/envoy.yaml's two upstreams are service-envoy.yaml and service-envoy-2.yaml, each forwarding
        // /service/N to its local service (the front proxy itself is tested below, with its TLS listener).
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        await using var service2 = await TestBackend.StartEchoAsync("service2");
        await using var envoy1 = await StartAsync("front-proxy/service-envoy.yaml", ("service1", service1));
        await using var envoy2 = await StartAsync("front-proxy/service-envoy-2.yaml", ("service2", service2));
        using var client1 = envoy1.Client(UnnamedListener);
        using var client2 = envoy2.Client(UnnamedListener);

        using var one = await client1.GetAsync("/service/1");
        using var two = await client2.GetAsync("/service/2?x=1");
        using var twoOnEnvoy1 = await client1.GetAsync("/service/2");

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal("service1 GET /service/1 body=0", await one.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        Assert.Equal("service2 GET /service/2?x=1 body=0", await two.Content.ReadAsStringAsync());
        // Each service envoy only knows its own prefix.
        Assert.Equal(HttpStatusCode.NotFound, twoOnEnvoy1.StatusCode);
        Assert.Equal(1, await envoy1.StatAsync("http.service_envoy_1.downstream_rq_2xx"));
        Assert.Equal(1, await envoy1.StatAsync("http.service_envoy_1.no_route"));
        Assert.Equal(1, await envoy1.StatAsync("cluster.service1.upstream_rq_200"));
        Assert.Equal(1, await envoy2.StatAsync("cluster.service2.upstream_rq_200"));
    }

    // ----- zipkin: the front proxy (an OUTBOUND listener) reporting to Zipkin -----

    [Fact]
    public async Task Zipkin_FrontProxy_ReportsEgressSpansNamedByDecorators_AndPropagatesB3()
    {
        var (collector, receiver) = await Tracing.ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var envoy1 = await TestBackend.StartEchoAsync("envoy-1");
        var proxy = await StartAsync("zipkin/envoy-front-proxy.yaml", ("envoy_cluster1", envoy1), ("envoy_cluster2", envoy1), ("zipkin", collector));
        using var client = proxy.Client(UnnamedListener);

        using var response = await client.GetAsync("/trace/1");
        var traceId = response.Headers.GetValues("x-b3-traceid").Single();
        await proxy.DisposeAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var span = Assert.Single(receiver.Spans);
        Assert.Equal("routeToEnvoy1", span.GetProperty("name").GetString());
        Assert.Equal("CLIENT", span.GetProperty("kind").GetString());
        Assert.Equal(traceId, span.GetProperty("traceId").GetString());
        Assert.Equal("envoy-proxy-front", span.GetProperty("localEndpoint").GetProperty("serviceName").GetString());
        Assert.Equal(span.GetProperty("id").GetString(), response.Headers.GetValues("x-echo-req-x-b3-spanid").Single());
        // An egress request tells the next hop its operation.
        Assert.Equal("routeToEnvoy1", response.Headers.GetValues("x-echo-req-x-envoy-decorator-operation").Single());
    }

    // ----- double-proxy: the plain HTTP proxy in front of the app -----

    [Fact]
    public async Task DoubleProxy_PlainListener_ProxiesEverythingToTheApp()
    {
        await using var app = await TestBackend.StartEchoAsync("app");
        await using var proxy = await StartAsync("double-proxy/envoy.yaml", ("service1", app));
        using var client = proxy.Client(UnnamedListener);

        using var root = await client.GetAsync("/");
        using var post = await client.PostAsync("/api/items", new StringContent("hello"));

        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("app GET / body=0", await root.Content.ReadAsStringAsync());
        Assert.Equal("app POST /api/items body=5", await post.Content.ReadAsStringAsync());
        Assert.Equal(proxy.ListenerAddress(UnnamedListener), root.Headers.GetValues("x-echo-host").Single());
    }

    // ----- websocket: upgrades allowed by the connection manager, and by the route -----

    [Fact]
    public async Task WebSocket_HcmUpgradeConfig_PassesWebSocketThrough()
    {
        await using var service = await StartWebSocketEchoAsync();
        await using var proxy = await StartAsync("websocket/envoy-ws.yaml", ("service_ws", service));

        var echoed = await WebSocketRoundTripAsync(proxy, "/", "hello");
        using var client = proxy.Client(UnnamedListener);
        using var plain = await client.GetAsync("/plain");

        Assert.Equal("echo: hello", echoed);
        Assert.Equal("http GET /plain", await plain.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task WebSocketRoute_RouteUpgradeConfig_PassesWebSocketOnWs_AndAnswersDirectlyElsewhere()
    {
        await using var service = await StartWebSocketEchoAsync();
        await using var proxy = await StartAsync("websocket/envoy-ws-route.yaml", ("service_ws", service));
        using var client = proxy.Client(UnnamedListener);

        var echoed = await WebSocketRoundTripAsync(proxy, "/ws", "over the route");
        using var root = await client.GetAsync("/");
        // A websocket-enabled route still serves requests without upgrade headers as plain HTTP.
        using var plainWs = await client.GetAsync("/ws/info");

        Assert.Equal("echo: over the route", echoed);
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("NotWebSocket\n", await root.Content.ReadAsStringAsync());
        Assert.Equal("http GET /ws/info", await plainWs.Content.ReadAsStringAsync());
    }

    // ----- cors: the backend's policies per route (open to any origin, disabled, restricted by regex) -----

    [Fact]
    public async Task CorsBackend_OpenDisabledAndRestrictedRoutes()
    {
        await using var service = await TestBackend.StartEchoAsync("backend");
        await using var proxy = await StartAsync("cors/backend/envoy.yaml", ("backend_service", service));
        using var client = proxy.Client(UnnamedListener);

        async Task<(HttpStatusCode Status, string? AllowOrigin, string Body)> PreflightAsync(string path, string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Options, path);
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Access-Control-Request-Method", "GET");
            using var r = await client.SendAsync(request);
            return (r.StatusCode, r.Headers.TryGetValues("access-control-allow-origin", out var v) ? v.Single() : null, await r.Content.ReadAsStringAsync());
        }

        // "/cors/open": the virtual host's policy, any origin (its matcher matches "*"), answered by the proxy.
        Assert.Equal((HttpStatusCode.OK, "http://example.com", ""), await PreflightAsync("/cors/open", "http://example.com"));
        // "/cors/disabled": filter_enabled 0% on the route; the preflight reaches the service.
        var disabled = await PreflightAsync("/cors/disabled", "http://example.com");
        Assert.Null(disabled.AllowOrigin);
        Assert.StartsWith("backend OPTIONS /cors/disabled", disabled.Body);
        // "/cors/restricted": only *.envoyproxy.io; another origin's preflight is forwarded.
        Assert.Equal((HttpStatusCode.OK, "https://www.envoyproxy.io", ""), await PreflightAsync("/cors/restricted", "https://www.envoyproxy.io"));
        var other = await PreflightAsync("/cors/restricted", "http://example.com");
        Assert.Null(other.AllowOrigin);
        Assert.StartsWith("backend OPTIONS /cors/restricted", other.Body);

        using var actual = new HttpRequestMessage(HttpMethod.Get, "/cors/open");
        actual.Headers.Add("Origin", "http://example.com");
        using var response = await client.SendAsync(actual);
        Assert.Equal("http://example.com", response.Headers.GetValues("access-control-allow-origin").Single());
        Assert.Equal("backend GET /cors/open body=0", await response.Content.ReadAsStringAsync());
    }

    // ----- csrf (same site): per-route CSRF policies behind the CORS filter -----

    [Fact]
    public async Task CsrfSameSite_EnforcedDisabledShadowAndAdditionalOriginRoutes()
    {
        await using var service = await TestBackend.StartEchoAsync("service");
        await using var proxy = await StartAsync("csrf/samesite/envoy.yaml", ("generic_service", service));
        using var client = proxy.Client(UnnamedListener);

        async Task<HttpStatusCode> PostAsync(string path, string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("x") };
            request.Headers.Add("Origin", origin);
            using var r = await client.SendAsync(request);
            return r.StatusCode;
        }

        var own = "http://" + proxy.ListenerAddress(UnnamedListener);
        // The virtual host's policy enforces: a cross-site POST is refused, a same-site one passes.
        Assert.Equal(HttpStatusCode.Forbidden, await PostAsync("/submit", "http://evil.example"));
        Assert.Equal(HttpStatusCode.OK, await PostAsync("/submit", own));
        Assert.Equal(HttpStatusCode.OK, await PostAsync("/csrf/disabled", "http://evil.example"));
        Assert.Equal(HttpStatusCode.OK, await PostAsync("/csrf/shadow", "http://evil.example"));
        Assert.Equal(HttpStatusCode.OK, await PostAsync("/csrf/additional_origin", "http://evil.example"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.csrf.request_invalid")); // enforced + shadow
    }

    // ----- gzip: JSON responses compressed, gzipped uploads decompressed -----

    [Fact]
    public async Task Gzip_CompressesJsonResponses_AndDecompressesUploads()
    {
        byte[] received = [];
        await using var service = await TestBackend.StartAsync(async ctx =>
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            received = ms.ToArray();
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(HttpFilters.CompressorTests.Json);
        });
        await using var proxy = await StartAsync("gzip/envoy.yaml", ("service", service));
        using var client = proxy.Client(UnnamedListener);
        var json = System.Text.Encoding.UTF8.GetBytes(HttpFilters.CompressorTests.Json);
        using var upload = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(upload, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) gz.Write(json);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = new ByteArrayContent(upload.ToArray()) };
        request.Content.Headers.ContentEncoding.Add("gzip");
        request.Headers.AcceptEncoding.ParseAdd("gzip");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(json, received);
        Assert.Equal("gzip", response.Content.Headers.ContentEncoding.Single());
        using var decoded = new System.IO.Compression.GZipStream(await response.Content.ReadAsStreamAsync(), System.IO.Compression.CompressionMode.Decompress);
        Assert.Equal(HttpFilters.CompressorTests.Json, await new StreamReader(decoded).ReadToEndAsync());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.compressor.text_optimized.gzip.response.compressed"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.decompressor.upload.gzip.request.decompressed"));
    }

    // ----- csrf (cross-site) and grpc-bridge (server side): plain proxies with a stdout access log -----

    [Fact]
    public async Task CsrfCrossSite_ProxiesToTheService_AndLogsEachRequest()
    {
        await using var service = await TestBackend.StartEchoAsync("service");
        var proxy = await StartAsync("csrf/crosssite/envoy.yaml", ("generic_service", service));
        var stats = proxy.Server.Stats;
        await using (proxy)
        {
            using var client = proxy.Client(UnnamedListener);
            using var response = await client.GetAsync("/index.html");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("service GET /index.html body=0", await response.Content.ReadAsStringAsync());
        }
        // The stdout access log (default format) wrote the request's line once the server was disposed.
        Assert.Equal(1, stats.Counter("filesystem.write_buffered").Value);
    }

    [Fact]
    public async Task GrpcBridgeServer_ProxiesGrpcToTheH2cService_AndLogsIt()
    {
        await using var backend = await Grpc.GrpcTestKit.StartBackendAsync();
        var proxy = await StartAsync("grpc-bridge/server/envoy-proxy.yaml", ("backend_grpc_service", backend));
        var stats = proxy.Server.Stats;
        await using (proxy)
        {
            using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(proxy.ListenerUri(UnnamedListener), new global::Grpc.Net.Client.GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler { UseProxy = false },
            });
            var client = new Protos.Echo.EchoClient(channel);
            var reply = await client.UnaryAsync(new Protos.EchoRequest { Text = "bridge" }, deadline: Grpc.GrpcTestKit.Deadline());
            Assert.Equal("bridge", reply.Text);
        }
        Assert.Equal(1, stats.Counter("filesystem.write_buffered").Value);
    }

    [Fact]
    public async Task GrpcBridgeClient_BridgesAnHttp1Caller_ThroughTheServerProxy_ToTheGrpcService()
    {
        // The sandbox's chain: an HTTP/1.1 caller, the client envoy (grpc_http1_bridge, add_user_agent, HTTP/1.1
        // upstream), the server envoy (HTTP/1.1 in, h2c out) and the gRPC service.
        await using var backend = await Grpc.GrpcTestKit.StartBackendAsync();
        await using var server = await StartAsync("grpc-bridge/server/envoy-proxy.yaml", ("backend_grpc_service", backend));
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read("grpc-bridge/client/envoy-proxy.yaml"),
            new Dictionary<string, string> { ["backend-proxy"] = server.ListenerAddress(UnnamedListener) });
        await using var client = await ProxyHarness.StartAsync(yaml);
        using var http = client.Client(UnnamedListener);

        var frame = Grpc.GrpcTestKit.Frame(new Protos.EchoRequest { Text = "bridged" });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/csenvoy.test.Echo/Unary") { Content = new ByteArrayContent(frame) };
        request.Headers.Host = "grpc";
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal("bridged", Protos.EchoReply.Parser.ParseFrom(body.AsSpan(5).ToArray()).Text);
    }

    // ----- ext_authz: the sandbox's token check, by its HTTP service and by its gRPC one -----

    [Fact]
    public async Task ExtAuthzHttpService_AllowsKnownTokens_ForwardingTheUser_AndDeniesOthers()
    {
        // The sandbox's HTTP authorization service: "Bearer token1" is user1; anything else gets 403.
        await using var upstream = await TestBackend.StartEchoAsync("upstream");
        await using var authz = await TestBackend.StartAsync(async ctx =>
        {
            if (ctx.Request.Headers.Authorization == "Bearer token1")
            {
                ctx.Response.Headers["x-current-user"] = "user1";
                return;
            }
            ctx.Response.StatusCode = 403;
            await ctx.Response.WriteAsync("Forbidden");
        });
        await using var proxy = await StartAsync("ext_authz/config/http-service.yaml", ("upstream-service", upstream), ("ext_authz-http-service", authz));
        using var client = proxy.Client(UnnamedListener);

        using var anonymous = await client.GetAsync("/service");
        Assert.Equal(HttpStatusCode.Forbidden, anonymous.StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/service");
        request.Headers.Add("Authorization", "Bearer token1");
        using var allowed = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("user1", Http.HttpTestUtil.Upstream(allowed, "x-current-user"));
    }

    [Fact]
    public async Task ExtAuthzGrpcService_AllowsAndDenies_ByTheServicesAnswer()
    {
        await using var upstream = await TestBackend.StartEchoAsync("upstream");
        var (authz, state) = await HttpFilters.TestAuthorizationService.StartAsync();
        await using var _ = authz;
        state.Decide = r => Task.FromResult(r.Attributes.Request.Http.Headers.TryGetValue("authorization", out var a) && a == "Bearer token2"
            ? new Envoy.Service.Auth.V3.CheckResponse { Status = new Google.Rpc.Status() }
            : new Envoy.Service.Auth.V3.CheckResponse { Status = new Google.Rpc.Status { Code = 7 } });
        await using var proxy = await StartAsync("ext_authz/config/grpc-service/v3.yaml", ("upstream-service", upstream), ("ext_authz-grpc-service", authz));
        using var client = proxy.Client(UnnamedListener);

        using var anonymous = await client.GetAsync("/service");
        Assert.Equal(HttpStatusCode.Forbidden, anonymous.StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/service");
        request.Headers.Add("Authorization", "Bearer token2");
        using var allowed = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(2, state.Requests.Count);
    }

    // ----- dynamic-config-fs: the listener and cluster of its LDS/CDS files -----

    [Fact]
    public async Task DynamicConfigFs_ResourceFiles_ServeAsStaticResources()
    {
        // The resources of the bootstrap's (dynamic-config-fs/envoy.yaml) files are plain listener/cluster configs;
        // loaded as static resources they must work too. lds.yaml gives 'filters' as a single object, which Envoy accepts.
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        var yaml = EnvoyConfigRewriter.StaticBootstrapFromResourceFiles(
            new[] { EnvoyConfigCorpus.Read("dynamic-config-fs/configs/lds.yaml"), EnvoyConfigCorpus.Read("dynamic-config-fs/configs/cds.yaml") },
            new Dictionary<string, string> { ["example_proxy_cluster"] = service1.Address });
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("listener_0");

        using var response = await client.GetAsync("/anything");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("service1 GET /anything body=0", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.example_proxy_cluster.upstream_rq_200"));
    }

    [Fact]
    public async Task DynamicConfigFs_Bootstrap_ServesFromItsWatchedFiles()
    {
        // The sandbox's bootstrap as it is, with its two files copied (service1 → a test backend, the listener on an
        // ephemeral loopback port) and its paths pointed at the copies.
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        var dir = Directory.CreateTempSubdirectory("csenvoy-dynamic-config-fs-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "cds.yaml"), EnvoyConfigCorpus.Read("dynamic-config-fs/configs/cds.yaml")
                .Replace("address: service1", "address: 127.0.0.1").Replace("port_value: 8080", $"port_value: {service1.Port}"));
            File.WriteAllText(Path.Combine(dir, "lds.yaml"), EnvoyConfigCorpus.Read("dynamic-config-fs/configs/lds.yaml")
                .Replace("address: 0.0.0.0", "address: 127.0.0.1").Replace("port_value: 10000", "port_value: 0"));
            var yaml = EnvoyConfigCorpus.Read("dynamic-config-fs/envoy.yaml").Replace("/var/lib/envoy/", dir + "/")
                .Replace("address: 0.0.0.0", "address: 127.0.0.1").Replace("port_value: 19000", "port_value: 0");
            await using var proxy = await ProxyHarness.StartAsync(yaml);
            using var client = await Xds.AdsTests.ListenerClientAsync(proxy, "listener_0");

            using var response = await client.GetAsync("/anything");

            Assert.Equal("service1 GET /anything body=0", await response.Content.ReadAsStringAsync());
            Assert.Equal(1, await proxy.StatAsync("listener_manager.lds.update_success"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // ----- front-proxy and tls: TLS listeners (inline self-signed certificate) and TLS upstreams -----

    [Fact]
    public async Task FrontProxy_TlsListener_ServesHttpsWithItsInlineCertificate()
    {
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        await using var service2 = await TestBackend.StartEchoAsync("service2");
        await using var proxy = await StartAsync("front-proxy/envoy.yaml", ("service1-envoy", service1), ("service2-envoy", service2));
        X509Certificate2? seen = null;
        // The context has no alpn_protocols, so, as with Envoy, no ALPN is negotiated and clients speak HTTP/1.1.
        using var client = HttpsClient(proxy, "#1", http2: false, c => seen = c);

        using var one = await client.GetAsync("/service/1");
        using var plain = await proxy.Client("#0").GetAsync("/service/2");

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(new Version(1, 1), one.Version);
        Assert.Equal("service1 GET /service/1 body=0", await one.Content.ReadAsStringAsync());
        Assert.Equal("https", one.Headers.GetValues("x-echo-req-x-forwarded-proto").Single());
        Assert.Equal("CN=front-envoy", seen?.Subject);
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal("http", plain.Headers.GetValues("x-echo-req-x-forwarded-proto").Single());
    }

    [Fact]
    public async Task Tls_HttpsToHttp_TerminatesTls()
    {
        await using var service = await TestBackend.StartEchoAsync("service-http");
        await using var proxy = await StartAsync("tls/envoy-https-http.yaml", ("service-http", service));
        using var client = HttpsClient(proxy, UnnamedListener, http2: false);

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("service-http GET / body=0", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("tls/envoy-http-https.yaml", false)]
    [InlineData("tls/envoy-https-https.yaml", true)]
    public async Task Tls_ToAnHttpsService_OriginatesTls(string file, bool downstreamTls)
    {
        await using var service = await Tls.TlsBackend.StartAsync(Tls.TestPki.Issue(Tls.TestPki.CreateCa("sandbox ca"), "service-https"));
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read(file), new Dictionary<string, string> { ["service-https"] = service.Address });
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = downstreamTls ? HttpsClient(proxy, UnnamedListener, http2: false) : proxy.Client(UnnamedListener);

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("https", response.Headers.GetValues("x-echo-scheme").Single());
    }

    [Fact]
    public async Task WebSocketWss_TlsOnBothSides_PassesWebSocketThrough()
    {
        await using var service = await Tls.TlsBackend.StartAsync(Tls.TestPki.Issue(Tls.TestPki.CreateCa("wss ca"), "service-wss"),
            Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, configure: ConfigureWebSocketEcho);
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read("websocket/envoy-wss.yaml"), new Dictionary<string, string> { ["service_wss"] = service.Address });
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var cts = new CancellationTokenSource(s_timeout);
        using var ws = new ClientWebSocket();
        ws.Options.Proxy = null;
        ws.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true; // the sandbox's self-signed certificate

        await ws.ConnectAsync(new Uri($"wss://{proxy.ListenerAddress(UnnamedListener)}/"), cts.Token);
        await ws.SendAsync(Encoding.UTF8.GetBytes("over tls"), WebSocketMessageType.Text, true, cts.Token);
        var buffer = new byte[4096];
        var received = await ws.ReceiveAsync(buffer, cts.Token);

        Assert.Equal("echo: over tls", Encoding.UTF8.GetString(buffer, 0, received.Count));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
    }

    /// <summary>An HTTPS client for a sandbox listener; the sandboxes use self-signed certificates, so any is accepted
    /// and handed to <paramref name="onCertificate"/>.</summary>
    private static HttpClient HttpsClient(ProxyHarness proxy, string listener, bool http2, Action<X509Certificate2>? onCertificate = null)
    {
        var handler = new SocketsHttpHandler { UseProxy = false };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            if (cert is not null) onCertificate?.Invoke(X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
            return true;
        };
        return new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://{proxy.ListenerAddress(listener)}"),
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = s_timeout,
        };
    }

    // ----- helpers -----

    // ----- route-mirror: request_mirror_policies by cluster and by cluster_header -----

    [Fact]
    public async Task RouteMirror_MirrorClustersGetTheCopy()
    {
        var mirrored = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Task<TestBackend> Mirror(string name) => TestBackend.StartAsync(ctx =>
        {
            mirrored.Enqueue(name + " " + ctx.Request.Path + " " + ctx.Request.Host.Host);
            return Task.CompletedTask;
        });
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        await using var service2 = await TestBackend.StartEchoAsync("service2");
        await using var mirror1 = await Mirror("service1-mirror");
        await using var mirror2 = await Mirror("service2-mirror");
        await using var proxy = await StartAsync("route-mirror/envoy.yaml", ("service1", service1), ("service2", service2),
            ("service1-mirror", mirror1), ("service2-mirror", mirror2));
        using var client = proxy.Client(UnnamedListener);

        using var one = await client.GetAsync("/service/1");
        using var twoRequest = new HttpRequestMessage(HttpMethod.Get, "/service/2");
        twoRequest.Headers.Add("x-mirror-cluster", "service2-mirror");
        using var two = await client.SendAsync(twoRequest);

        Assert.Equal("service1 GET /service/1 body=0", await one.Content.ReadAsStringAsync());
        Assert.Equal("service2 GET /service/2 body=0", await two.Content.ReadAsStringAsync());
        for (var i = 0; i < 200 && mirrored.Count < 2; i++) await Task.Delay(25);
        var host = proxy.ListenerAddress(UnnamedListener).Split(':')[0];
        Assert.Equal(new[] { $"service1-mirror /service/1 {host}-shadow", $"service2-mirror /service/2 {host}-shadow" }, mirrored.OrderBy(x => x));
    }

    // ----- locality-load-balancing: priorities, locality weights and health checks on another port -----

    /// <summary>
    /// The sandbox's scenario: backend-local-1 (P0) takes everything while healthy; when its health check (on the
    /// endpoint's health_check_config port) fails, P1's two localities (weight 1 each) share the traffic; when they
    /// fail too, P2's backend-remote-2 does.
    /// </summary>
    [Fact]
    public async Task LocalityLoadBalancing_FailsOverByPriority_AndSplitsP1ByLocalityWeight()
    {
        string[] names = ["backend-local-1", "backend-local-2", "backend-remote-1", "backend-remote-2"];
        var backends = new List<HealthChecking.HealthTestKit.FlipBackend>();
        try
        {
            var text = EnvoyConfigCorpus.Read("locality-load-balancing/envoy.yaml");
            foreach (var name in names)
            {
                var b = await HealthChecking.HealthTestKit.FlipBackend.StartAsync(name);
                backends.Add(b);
                var block = $"address: {name}\n                port_value: 8080\n            health_check_config:\n              port_value: 8080";
                Assert.Contains(block, text);
                text = text.Replace(block, $"address: {name}\n                port_value: {b.Port}\n            health_check_config:\n              port_value: {b.Port}");
            }
            // The sandbox's health check path is "/": the flip backends answer their health status on /healthz.
            text = text.Replace("path: \"/\"", "path: /healthz");
            var time = new ManualTimeProvider();
            await using var proxy = await ProxyHarness.StartAsync(EnvoyConfigRewriter.RewriteBootstrap(text), time: time);
            await HealthChecking.HealthTestKit.WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= 4), "first checks to finish");
            using var client = proxy.Client("backend");

            async Task<Dictionary<string, int>> Spread(int n)
            {
                var counts = new Dictionary<string, int>();
                for (var i = 0; i < n; i++)
                {
                    using var r = await client.GetAsync("/");
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                    var b = r.Headers.GetValues("x-backend").Single();
                    counts[b] = counts.GetValueOrDefault(b) + 1;
                }
                return counts;
            }
            async Task Fail(int i)
            {
                backends[i].HealthStatus = 503;
                await HealthChecking.HealthTestKit.RoundAsync(proxy, time, 4, "backend", TimeSpan.FromSeconds(4));
            }

            Assert.Equal(new Dictionary<string, int> { ["backend-local-1"] = 20 }, await Spread(20));
            await Fail(0);
            var p1 = await Spread(40);
            Assert.Equal(20, p1.GetValueOrDefault("backend-local-2"));
            Assert.Equal(20, p1.GetValueOrDefault("backend-remote-1"));
            await Fail(1);
            await Fail(2);
            Assert.Equal(new Dictionary<string, int> { ["backend-remote-2"] = 20 }, await Spread(20));
            Assert.Contains("::priority::2", await HealthChecking.HealthTestKit.ClustersAsync(proxy));
        }
        finally
        {
            foreach (var b in backends) await b.DisposeAsync();
        }
    }

    internal static async Task<ProxyHarness> StartAsync(string corpusFile, params (string Cluster, TestBackend Backend)[] backends)
    {
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read(corpusFile),
            backends.ToDictionary(b => b.Cluster, b => b.Backend.Address));
        return await ProxyHarness.StartAsync(yaml);
    }

    /// <summary>The sandbox's websocket service: echoes each text message back with an "echo: " prefix; plain HTTP
    /// requests get "http METHOD PATH".</summary>
    internal static Task<TestBackend> StartWebSocketEchoAsync() => TestBackend.StartAppAsync(ConfigureWebSocketEcho);

    private static void ConfigureWebSocketEcho(WebApplication app)
    {
        app.UseWebSockets();
        app.Run(async ctx =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                await ctx.Response.WriteAsync($"http {ctx.Request.Method} {ctx.Request.Path}");
                return;
            }
            using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var received = await ws.ReceiveAsync(buffer, ctx.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, ctx.RequestAborted);
                    return;
                }
                var reply = Encoding.UTF8.GetBytes("echo: " + Encoding.UTF8.GetString(buffer, 0, received.Count));
                await ws.SendAsync(reply, WebSocketMessageType.Text, true, ctx.RequestAborted);
            }
        });
    }

    /// <summary>Opens a WebSocket through the proxy's unnamed listener, sends one text message, returns the reply.</summary>
    internal static async Task<string> WebSocketRoundTripAsync(ProxyHarness proxy, string path, string message)
    {
        using var cts = new CancellationTokenSource(s_timeout);
        using var ws = new ClientWebSocket();
        ws.Options.Proxy = null;
        await ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress(UnnamedListener)}{path}"), cts.Token);
        await ws.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, cts.Token);
        var buffer = new byte[4096];
        var received = await ws.ReceiveAsync(buffer, cts.Token);
        var text = Encoding.UTF8.GetString(buffer, 0, received.Count);
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        return text;
    }
}
