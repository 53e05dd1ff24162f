using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>The connection manager's <c>strip_any_host_port</c> and <c>strip_matching_host_port</c>: the Host header
/// loses its port before routing, and goes upstream without it.</summary>
public sealed class HostPortStrippingTests
{
    private const string Routes = """
        - name: named
          domains: ["app.example"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: backend }
        - name: other
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            direct_response: { status: 404, body: { inline_string: "other" } }
        """;

    private static async Task<(HttpStatusCode Status, string? UpstreamHost)> GetAsync(HttpClient client, string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        request.Headers.Host = host;
        using var r = await client.SendAsync(request);
        return (r.StatusCode, r.Headers.TryGetValues("x-echo-host", out var v) ? v.Single() : null);
    }

    [Fact]
    public async Task StripAnyHostPort_RoutesAndForwardsTheHostWithoutItsPort()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "strip_any_host_port: true"));
        using var client = proxy.Client("main");

        Assert.Equal((HttpStatusCode.OK, "app.example"), await GetAsync(client, "app.example:8443"));
        Assert.Equal((HttpStatusCode.OK, "app.example"), await GetAsync(client, "app.example"));
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(client, "other.example:80")).Status);
    }

    [Fact]
    public async Task StripMatchingHostPort_OnlyStripsTheListenersPort()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "strip_matching_host_port: true"));
        using var client = proxy.Client("main");
        var port = proxy.ListenerUri("main").Port;

        Assert.Equal((HttpStatusCode.OK, "app.example"), await GetAsync(client, $"app.example:{port}"));
        // Another port stays, so the host is not "app.example": the catch-all answers.
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(client, $"app.example:{(port == 1 ? 2 : port - 1)}")).Status);
        // Without the option the port stays too.
        await using var plain = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address)));
        using var plainClient = plain.Client("main");
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(plainClient, $"app.example:{plain.ListenerUri("main").Port}")).Status);
    }

    [Fact]
    public void BothOptions_AreRefused()
    {
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "strip_any_host_port: true\nstrip_matching_host_port: true")).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.strip_any_host_port: only one of strip_matching_host_port or strip_any_host_port can be set", errors);
    }

    [Fact]
    public async Task StripTrailingHostDot_RoutesTheDottedHost_WithOrWithoutAPort()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "strip_trailing_host_dot: true\nstrip_any_host_port: true"));
        using var client = proxy.Client("main");

        Assert.Equal((HttpStatusCode.OK, "app.example"), await GetAsync(client, "app.example."));
        Assert.Equal((HttpStatusCode.OK, "app.example"), await GetAsync(client, "app.example.:8080"));
        // Without the option the dotted name is another host.
        await using var plain = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address)));
        using var plainClient = plain.Client("main");
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(plainClient, "app.example.")).Status);
    }
}
