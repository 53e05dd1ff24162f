using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>server_name and server_header_transformation on proxied, direct and local responses. The Kestrel
/// backends send "Server: Kestrel".</summary>
public sealed class ServerHeaderTests
{
    private const string Routes = """
        - name: vh
          domains: ["example.com"]
          routes:
          - match: { prefix: "/direct" }
            direct_response: { status: 200, body: { inline_string: "direct" } }
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    private static async Task<(string? Proxied, string? Direct, string? LocalReply)> ServerHeadersAsync(string hcmExtra)
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address), hcmExtra));
        using var client = proxy.Client("main");

        using var proxied = await GetAsync(client, "/", "example.com");
        using var direct = await GetAsync(client, "/direct", "example.com");
        using var noRoute = await GetAsync(client, "/", "unknown.example");

        Assert.Equal(HttpStatusCode.OK, proxied.StatusCode);
        Assert.Equal("backend", Header(proxied, "x-backend"));
        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, noRoute.StatusCode);
        return (Header(proxied, "server"), Header(direct, "server"), Header(noRoute, "server"));
    }

    [Fact]
    public async Task Default_OverwritesWithEnvoy()
    {
        var (proxied, direct, local) = await ServerHeadersAsync("");

        Assert.Equal("envoy", proxied);
        Assert.Equal("envoy", direct);
        Assert.Equal("envoy", local);
    }

    [Fact]
    public async Task ServerName_Overwrite()
    {
        var (proxied, direct, local) = await ServerHeadersAsync("server_name: edge-proxy\nserver_header_transformation: OVERWRITE");

        Assert.Equal("edge-proxy", proxied);
        Assert.Equal("edge-proxy", direct);
        Assert.Equal("edge-proxy", local);
    }

    [Fact]
    public async Task AppendIfAbsent_KeepsTheUpstreamsServer()
    {
        var (proxied, direct, local) = await ServerHeadersAsync("server_name: edge-proxy\nserver_header_transformation: APPEND_IF_ABSENT");

        Assert.Equal("Kestrel", proxied);
        Assert.Equal("edge-proxy", direct);
        Assert.Equal("edge-proxy", local);
    }

    [Fact]
    public async Task PassThrough_NeverSetsServer()
    {
        var (proxied, direct, local) = await ServerHeadersAsync("server_name: edge-proxy\nserver_header_transformation: PASS_THROUGH");

        Assert.Equal("Kestrel", proxied);
        // Envoy's own responses carry no server header in PASS_THROUGH mode.
        Assert.Null(direct);
        Assert.Null(local);
    }
}
