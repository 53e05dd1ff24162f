using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

public sealed class IdleTimeoutTests
{
    private static string Routes(string idle) => $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: backend, timeout: 20s, idle_timeout: {{idle}} }
        """;

    [Fact]
    public async Task RouteIdleTimeout_BeforeResponseHeaders_Is408StreamTimeout()
    {
        var release = new TaskCompletionSource();
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            await release.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await ctx.Response.WriteAsync("late");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("0.3s"), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/");
        release.SetResult();

        Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
        Assert.Equal("stream timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_timeout")); // an idle timeout, not the route timeout
    }

    [Fact]
    public async Task RouteIdleTimeout_IsResetByActivity()
    {
        // A response that trickles a byte every 100 ms for 3 s never goes idle for 1.5 s.
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            await ctx.Response.StartAsync();
            for (var i = 0; i < 30; i++)
            {
                await ctx.Response.WriteAsync("x");
                await ctx.Response.Body.FlushAsync();
                await Task.Delay(100);
            }
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("1.5s"), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        var body = await client.GetStringAsync("/");

        Assert.Equal(new string('x', 30), body);
    }
}
