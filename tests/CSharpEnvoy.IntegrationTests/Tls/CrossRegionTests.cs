using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// The shipped configs/cross-region example end to end: a caller talks plain HTTP to region A's sidecar; requests for
/// region B go over mTLS (h2, the sidecar's SPIFFE identity, exact SNI) to region B's gateway, which verifies the
/// client certificate, applies RBAC and hands the service the caller's identity in x-forwarded-client-cert. Every
/// refusal (no certificate, another CA, expired, a SAN outside the mesh, a mesh identity RBAC does not allow,
/// plaintext) is stopped at the gateway and counted; the service never sees those requests.
/// </summary>
public sealed class CrossRegionTests : IDisposable
{
    private const string SidecarId = "spiffe://mesh.example/region-a/sidecar-a";
    private const string GatewayId = "spiffe://mesh.example/region-b/gateway";
    private const string GatewaySni = "gateway-b.mesh.example";
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _meshCa = TestPki.CreateCa("mesh ca");
    private readonly X509Certificate2 _sidecar;

    public CrossRegionTests()
    {
        File.WriteAllText(Path.Combine(_pki.Dir, "mesh-ca.crt"), TestPki.CertPem(_meshCa));
        _pki.WritePair("gateway-b", TestPki.Issue(_meshCa, "gateway-b", dns: [GatewaySni], uris: [GatewayId]));
        _sidecar = TestPki.Issue(_meshCa, "sidecar-a", uris: [SidecarId]);
        _pki.WritePair("sidecar-a", _sidecar);
    }

    public void Dispose() => _pki.Dispose();

    private string Config(string file, params (string From, string To)[] replacements)
    {
        var text = File.ReadAllText(Path.Combine(CsEnvoyProcess.RepoRoot(), "configs", "cross-region", file))
            .Replace("certs/", _pki.Dir + "/");
        foreach (var (from, to) in replacements)
        {
            Assert.Contains(from, text);
            text = text.Replace(from, to);
        }
        return text;
    }

    /// <summary>A service backend counting the requests it sees and echoing the x-forwarded-client-cert it got.</summary>
    private sealed class Service : IAsyncDisposable
    {
        private int _count;
        public TestBackend Backend { get; private set; } = null!;
        public int Count => Volatile.Read(ref _count);

        public static async Task<Service> StartAsync(string name)
        {
            var s = new Service();
            s.Backend = await TestBackend.StartAsync(ctx =>
            {
                Interlocked.Increment(ref s._count);
                ctx.Response.Headers["x-service"] = name;
                ctx.Response.Headers["x-seen-xfcc"] = ctx.Request.Headers["x-forwarded-client-cert"].ToString();
                return ctx.Response.WriteAsync(name);
            });
            return s;
        }

        public ValueTask DisposeAsync() => Backend.DisposeAsync();
    }

    /// <summary>One HTTP/1.1 request straight to the gateway on one TLS connection with <paramref name="clientCert"/>
    /// (or none); null when the connection is refused during or right after the handshake.</summary>
    private async Task<HttpStatusCode?> CallGatewayAsync(ProxyHarness gateway, X509Certificate2? clientCert)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(gateway.ListenerAddress("gateway_b")));
        await using var ssl = new SslStream(tcp.GetStream());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = GatewaySni,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
                ClientCertificates = clientCert is null ? null : new X509CertificateCollection { clientCert },
                RemoteCertificateValidationCallback = (_, cert, _, _) => TlsTestKit.TrustedBy(cert, _meshCa),
            }, cts.Token);
            await ssl.WriteAsync("GET /orders HTTP/1.1\r\nHost: gateway-b\r\nConnection: close\r\n\r\n"u8.ToArray(), cts.Token);
            var head = await ReadResponseHeadAsync(ssl, cts.Token);
            return head.Length == 0 ? null : (HttpStatusCode)int.Parse(head.Split(' ')[1]);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
            return null;
        }
    }

    [Fact]
    public async Task RegionB_GoesOverMtlsThroughTheGateway_AndEveryRefusalIsStoppedAndCounted()
    {
        await using var serviceA = await Service.StartAsync("service-a");
        await using var serviceB = await Service.StartAsync("service-b");
        await using var gateway = await ProxyHarness.StartAsync(Config("gateway-b.yaml",
            ("port_value: 9902", "port_value: 0"), ("address: 0.0.0.0, port_value: 10443", "address: 127.0.0.1, port_value: 0"),
            ("port_value: 8082", $"port_value: {serviceB.Backend.Port}")));
        var gatewayPort = IPEndPoint.Parse(gateway.ListenerAddress("gateway_b")).Port;
        await using var sidecar = await ProxyHarness.StartAsync(Config("sidecar-a.yaml",
            ("port_value: 9901", "port_value: 0"), ("port_value: 10000", "port_value: 0"),
            ("port_value: 8081", $"port_value: {serviceA.Backend.Port}"), ("port_value: 10443", $"port_value: {gatewayPort}")));
        using var caller = sidecar.Client("sidecar_a");

        // Local region: straight to service A, no TLS involved.
        using (var local = await GetAsync(caller, "/orders", null, ("x-region", "a")))
        {
            Assert.Equal(HttpStatusCode.OK, local.StatusCode);
            Assert.Equal("service-a", Header(local, "x-service"));
        }

        // Region B: sidecar -> (mTLS, h2) -> gateway -> service B, which sees the sidecar's verified identity only.
        using (var remote = await GetAsync(caller, "/orders", null, ("x-region", "b"), ("x-forwarded-client-cert", "By=forged;URI=spiffe://mesh.example/admin")))
        {
            Assert.Equal(HttpStatusCode.OK, remote.StatusCode);
            Assert.Equal("service-b", Header(remote, "x-service"));
            var hash = Convert.ToHexStringLower(SHA256.HashData(_sidecar.RawData));
            Assert.Equal($"By={GatewayId};Hash={hash};Subject=\"CN=sidecar-a\";URI={SidecarId}", Header(remote, "x-seen-xfcc"));
        }
        Assert.Equal(1, serviceB.Count);
        Assert.Equal(1, await gateway.StatAsync("http.gateway_b.downstream_cx_http2_total"));
        Assert.Equal(1, await gateway.StatAsync("http.gateway_b.rbac.allowed"));

        // The refusals, straight at the gateway.
        var otherCa = TestPki.CreateCa("rogue ca");
        Assert.Null(await CallGatewayAsync(gateway, null));
        Assert.Null(await CallGatewayAsync(gateway, TestPki.Issue(otherCa, "sidecar-a", uris: [SidecarId])));
        Assert.Null(await CallGatewayAsync(gateway, TestPki.Issue(_meshCa, "sidecar-a", uris: [SidecarId],
            notBefore: DateTimeOffset.UtcNow.AddDays(-10), notAfter: DateTimeOffset.UtcNow.AddDays(-1))));
        Assert.Null(await CallGatewayAsync(gateway, TestPki.Issue(_meshCa, "outsider", uris: ["spiffe://elsewhere.example/sidecar-a"])));
        Assert.Equal(HttpStatusCode.Forbidden, await CallGatewayAsync(gateway, TestPki.Issue(_meshCa, "intruder", uris: ["spiffe://mesh.example/region-a/intruder"])));
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, gatewayPort);
            var stream = tcp.GetStream();
            await stream.WriteAsync("GET /orders HTTP/1.1\r\nHost: gateway\r\n\r\n"u8.ToArray());
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Assert.Equal(0, await stream.ReadAsync(new byte[64], cts.Token));
        }

        const string ssl = "listener.127.0.0.1_0.ssl.";
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(gateway, ssl + "fail_verify_no_cert", 1));
        Assert.Equal(2, await TlsTestKit.WaitStatAsync(gateway, ssl + "fail_verify_error", 2));
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(gateway, ssl + "fail_verify_san", 1));
        Assert.Equal(1, await gateway.StatAsync("http.gateway_b.rbac.denied"));
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(gateway, "listener.127.0.0.1_0.no_filter_chain_match", 1));
        Assert.Equal(1, serviceB.Count);
        Assert.Equal(1, serviceA.Count);
    }
}
