using System.Text;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>The connection manager's <c>normalize_path</c>, <c>merge_slashes</c> and
/// <c>path_with_escaped_slashes_action</c> (Istio sets normalize_path, Envoy Gateway all three).</summary>
public sealed class PathNormalizationTests
{
    [Theory]
    [InlineData("/a/b", "/a/b")]
    [InlineData("/a/./b/../c", "/a/c")]
    [InlineData("/../../a", "/a")]
    [InlineData("/a/b/..", "/a/")]
    [InlineData("/a/%2e%2E/b", "/b")]
    [InlineData("/%7efoo/%41%2fx%3a", "/~foo/A%2Fx%3A")]
    [InlineData("/a b/\"q\"/<x>", "/a%20b/%22q%22/%3Cx%3E")]
    [InlineData("/100%/x", "/100%/x")]
    [InlineData("/a\\..\\b", "/a\\..\\b")]
    public void Canonicalize_AsRfc3986(string path, string expected) => Assert.Equal(expected, PathNormalizer.Canonicalize(path));

    [Theory]
    [InlineData("/a%2Fb%2fc%5Cd%5ce", "/a/b/c\\d\\e")]
    [InlineData("/a%2", null)]
    [InlineData("/plain", null)]
    public void UnescapeSlashes_DecodesOnlySlashesAndBackslashes(string path, string? expected) => Assert.Equal(expected, PathNormalizer.UnescapeSlashes(path));

    [Fact]
    public void Order_IsEscapedSlashesThenNormalizeThenMerge()
    {
        var model = new HttpConnectionManagerModel
        {
            StatPrefix = "x", HttpFilters = [], NormalizePath = true, MergeSlashes = true,
            PathWithEscapedSlashesAction = PathWithEscapedSlashesAction.UnescapeAndForward,
        };
        Assert.Equal(PathNormalizeAction.Continue, PathNormalizer.Normalize("//a%2F%2F..//b/./c", model, out var normalized));
        Assert.Equal("/a/b/c", normalized);
        Assert.Equal(PathNormalizeAction.Reject, PathNormalizer.Normalize("*", model, out _));
    }

    private const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/api/" }
            route: { cluster: backend }
        """;

    private static async Task<(TestBackend Backend, ProxyHarness Proxy)> StartAsync(string hcm)
    {
        var backend = await TestBackend.StartAsync(ctx =>
        {
            ctx.Response.Headers["x-raw"] = ctx.Features.Get<IHttpRequestFeature>()!.RawTarget;
            return Task.CompletedTask;
        });
        return (backend, await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address), hcmExtra: hcm)));
    }

    /// <summary>One raw HTTP/1.1 request (HttpClient would clean the path itself); the response head.</summary>
    private static async Task<string> RawGetAsync(ProxyHarness proxy, string target, string extraHeaders = "")
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: x\r\n{extraHeaders}Connection: close\r\n\r\n"), cts.Token);
        return await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token);
    }

    private static string? Header(string head, string name) =>
        head.Split("\r\n").FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim();

    [Fact]
    public async Task NormalizeAndMerge_RouteAndForwardTheCleanPath_QueryUntouched()
    {
        var (backend, proxy) = await StartAsync("normalize_path: true\nmerge_slashes: true");
        await using var b = backend;
        await using var p = proxy;

        // Without normalization "/x/../api//v1" would not match the "/api/" prefix.
        var head = await RawGetAsync(proxy, "/x/../api//v1/./%7Eme?q=/../a//b");
        Assert.StartsWith("HTTP/1.1 200", head);
        Assert.Equal("/api/v1/~me?q=/../a//b", Header(head, "x-raw"));
    }

    [Fact]
    public async Task WithoutTheOptions_ThePathGoesAsReceived()
    {
        var (backend, proxy) = await StartAsync("");
        await using var b = backend;
        await using var p = proxy;
        var head = await RawGetAsync(proxy, "/api//v1/%7Eme");
        Assert.Equal("/api//v1/%7Eme", Header(head, "x-raw"));
    }

    [Fact]
    public async Task EscapedSlashes_RejectRedirectForwardOrKeep()
    {
        var (backend, reject) = await StartAsync("path_with_escaped_slashes_action: REJECT_REQUEST");
        await using var b = backend;
        await using (reject)
        {
            Assert.StartsWith("HTTP/1.1 400", await RawGetAsync(reject, "/api/a%2Fb"));
            Assert.StartsWith("HTTP/1.1 200", await RawGetAsync(reject, "/api/ab"));
            Assert.Equal(1, await reject.StatAsync("http.ingress_http.downstream_rq_failed_path_normalization"));
        }

        await using (var redirect = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT")))
        {
            var head = await RawGetAsync(redirect, "/api/a%2fb%5Cc?x=%2F");
            Assert.StartsWith("HTTP/1.1 307", head);
            Assert.Equal("/api/a/b\\c?x=%2F", Header(head, "location"));
            Assert.Equal(1, await redirect.StatAsync("http.ingress_http.downstream_rq_redirected_with_normalized_path"));
            Assert.Equal(0, await redirect.StatAsync("cluster.backend.upstream_rq_total"));
            // A gRPC client cannot follow a redirect: INTERNAL.
            var grpc = await RawGetAsync(redirect, "/api/a%2Fb", "content-type: application/grpc\r\n");
            Assert.StartsWith("HTTP/1.1 200", grpc);
            Assert.Equal("13", Header(grpc, "grpc-status"));
        }

        await using (var forward = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD")))
            Assert.Equal("/api/a/b", Header(await RawGetAsync(forward, "/api/a%2Fb"), "x-raw"));

        await using (var keep = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "path_with_escaped_slashes_action: KEEP_UNCHANGED")))
            Assert.Equal("/api/a%2Fb", Header(await RawGetAsync(keep, "/api/a%2Fb"), "x-raw"));
    }
}
