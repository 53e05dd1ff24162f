using System.Diagnostics;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.HealthChecking;

/// <summary>Backends whose health and answers a test flips, clusters with health_checks / outlier_detection, and
/// bounded waits on stats (never fixed sleeps).</summary>
internal static class HealthTestKit
{
    public const string Route = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route:
              cluster: c
        """;

    /// <summary>A STATIC cluster "c" over the given ports with extra (cluster-level) YAML.</summary>
    public static string Cluster(string extra, params int[] ports)
    {
        var eps = string.Join("\n", ports.Select(p =>
            $"      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {p} }} }} }}"));
        return $"""
            - name: c
              connect_timeout: 1s
              type: STATIC
            {Yaml.Indent(extra, 2)}
              load_assignment:
                cluster_name: c
                endpoints:
                - lb_endpoints:
            {eps}
            """;
    }

    /// <summary>A backend named <paramref name="name"/>: /healthz answers <see cref="HealthStatus"/>; other paths
    /// answer <see cref="Status"/> with x-backend.</summary>
    public sealed class FlipBackend : IAsyncDisposable
    {
        public volatile int HealthStatus = 200;
        public volatile int Status = 200;
        public volatile bool ImmediateFailHeader;
        public volatile bool ImmediateFailOnTraffic;
        public int HealthChecks;
        public int Requests;
        public TestBackend Backend = null!;
        public string Name { get; private init; } = "";
        public string? LastHealthHost;
        public string? LastHealthUserAgent;
        public string? LastHealthCustom;

        public static async Task<FlipBackend> StartAsync(string name)
        {
            var b = new FlipBackend { Name = name };
            b.Backend = await TestBackend.StartAsync(async ctx =>
            {
                if (ctx.Request.Path == "/healthz")
                {
                    Interlocked.Increment(ref b.HealthChecks);
                    b.LastHealthHost = ctx.Request.Host.Value;
                    b.LastHealthUserAgent = ctx.Request.Headers.UserAgent;
                    b.LastHealthCustom = ctx.Request.Headers["x-hc"];
                    ctx.Response.StatusCode = b.HealthStatus;
                    if (b.ImmediateFailHeader) ctx.Response.Headers["x-envoy-immediate-health-check-fail"] = "true";
                    return;
                }
                Interlocked.Increment(ref b.Requests);
                ctx.Response.StatusCode = b.Status;
                ctx.Response.Headers["x-backend"] = name;
                if (b.ImmediateFailOnTraffic) ctx.Response.Headers["x-envoy-immediate-health-check-fail"] = "true";
                await ctx.Response.WriteAsync(name);
            });
            return b;
        }

        public int Port => Backend.Port;

        public ValueTask DisposeAsync() => Backend.DisposeAsync();
    }

    /// <summary>Polls <paramref name="condition"/> until true (bounded: fails after 10 s).</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(10)) Assert.Fail("timed out waiting for " + what);
            await Task.Delay(10);
        }
    }

    /// <summary>One interval (1 s unless given) of a cluster's health checks: moves the clock, waits for every host's
    /// check to finish and its next check to be armed.</summary>
    public static async Task RoundAsync(ProxyHarness proxy, ManualTimeProvider time, int hosts, string cluster = "c", TimeSpan? interval = null)
    {
        var success = $"cluster.{cluster}.health_check.success";
        var failure = $"cluster.{cluster}.health_check.failure";
        var before = await proxy.StatAsync(success) + await proxy.StatAsync(failure);
        time.Advance(interval ?? TimeSpan.FromSeconds(1));
        await WaitUntilAsync(async () => await proxy.StatAsync(success) + await proxy.StatAsync(failure) >= before + hosts, "a round of checks");
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= hosts), "the next checks to be armed");
    }

    public static Task WaitStatAsync(ProxyHarness proxy, string stat, long atLeast) =>
        WaitUntilAsync(async () => await proxy.StatAsync(stat) >= atLeast, $"{stat} >= {atLeast}");

    /// <summary>Waits until <paramref name="timers"/> timers are armed (every session is sleeping), then moves the clock.</summary>
    public static async Task TickAsync(ManualTimeProvider time, TimeSpan by, int timers)
    {
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= timers), $"{timers} armed timers");
        time.Advance(by);
    }

    public static async Task<string> ClustersAsync(ProxyHarness proxy)
    {
        using var admin = proxy.AdminClient();
        return await admin.GetStringAsync("/clusters");
    }

    public static string HealthFlags(string clusters, int port) =>
        clusters.Split('\n').Single(l => l.StartsWith($"c::127.0.0.1:{port}::health_flags::", StringComparison.Ordinal))
            [$"c::127.0.0.1:{port}::health_flags::".Length..];

    /// <summary>Sends <paramref name="n"/> requests and returns how many each backend (x-backend) answered.</summary>
    public static async Task<Dictionary<string, int>> SpreadAsync(ProxyHarness proxy, int n)
    {
        using var client = proxy.Client("main");
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < n; i++)
        {
            using var r = await client.GetAsync("/x");
            var b = r.Headers.TryGetValues("x-backend", out var v) ? v.First() : "(" + (int)r.StatusCode + ")";
            counts[b] = counts.GetValueOrDefault(b) + 1;
        }
        return counts;
    }
}
