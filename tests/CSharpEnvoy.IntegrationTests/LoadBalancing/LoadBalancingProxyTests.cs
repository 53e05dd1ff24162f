using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>Load balancers and hash policies end to end: the real proxy, real backends, real sockets.</summary>
public sealed class LoadBalancingProxyTests
{
    private const string Route = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route:
              cluster: c
        """;

    private static string RouteWithHashPolicy(string policies) => $"""
        - name: vh
          domains: ["*"]
          routes:
          - match: {"{"} prefix: "/" {"}"}
            route:
              cluster: c
              hash_policy:
        {Yaml.Indent(policies, 6)}
        """;

    /// <summary>A STATIC cluster "c" over the backends with the given lb settings (indented cluster fields).</summary>
    private static string Cluster(string lb, params TestBackend[] backends)
    {
        var eps = string.Join("\n", backends.Select(b =>
            $"      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {b.Port} }} }} }}"));
        return $"""
            - name: c
              connect_timeout: 1s
              type: STATIC
            {Yaml.Indent(lb, 2)}
              load_assignment:
                cluster_name: c
                endpoints:
                - lb_endpoints:
            {eps}
            """;
    }

    /// <summary>A backend that counts arrivals and, while <see cref="Hold"/> is set, keeps requests open.</summary>
    private sealed class GatedBackend : IAsyncDisposable
    {
        private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Arrivals;
        public volatile bool Hold;
        public TestBackend Backend = null!;

        public static async Task<GatedBackend> StartAsync(string name)
        {
            var g = new GatedBackend();
            g.Backend = await TestBackend.StartAsync(async ctx =>
            {
                Interlocked.Increment(ref g.Arrivals);
                if (g.Hold) await g._gate.Task;
                ctx.Response.Headers["x-backend"] = name;
                await ctx.Response.WriteAsync(name);
            });
            return g;
        }

        public void Release()
        {
            Hold = false;
            _gate.TrySetResult();
        }

        public async ValueTask DisposeAsync()
        {
            Release();
            await Backend.DisposeAsync();
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not reached");
            await Task.Delay(2);
        }
    }

    /// <summary>
    /// Holds requests open on the slow backend, then sends new requests one at a time: a least-request balancer
    /// sends them to the idle backend (every one with FULL_SCAN; with Envoy's default two random choices, all but the
    /// ~1/4 of picks whose two samples are both the busy host).
    /// </summary>
    [Theory]
    [InlineData("lb_policy: LEAST_REQUEST", 60.0)]
    [InlineData("""
        load_balancing_policy:
          policies:
          - typed_extension_config:
              name: envoy.load_balancing_policies.least_request
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest
                selection_method: FULL_SCAN
        """, 100.0)]
    public async Task LeastRequest_SendsNewRequestsToTheIdleBackend(string lb, double minIdleShare)
    {
        await using var slow = await GatedBackend.StartAsync("slow");
        await using var fast = await GatedBackend.StartAsync("fast");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(lb, slow.Backend, fast.Backend)));
        using var client = proxy.Client("main");
        var pending = new List<Task<HttpResponseMessage>>();

        // Phase 1: both backends hold, 16 concurrent requests spread over them; then the fast one lets its go.
        slow.Hold = true;
        fast.Hold = true;
        for (var i = 0; i < 16; i++) pending.Add(client.GetAsync("/"));
        await WaitUntil(() => slow.Arrivals + fast.Arrivals == 16);
        Assert.True(slow.Arrivals >= 2, $"slow backend got {slow.Arrivals} of 16");
        fast.Release();
        await WaitUntil(() => pending.Count(t => t.IsCompleted) == fast.Arrivals);
        var held = slow.Arrivals;

        // Phase 2: one request at a time; each either completes on the fast backend or joins the held ones.
        const int n = 100;
        var toFast = 0;
        for (var i = 0; i < n; i++)
        {
            var before = slow.Arrivals + fast.Arrivals;
            var fastBefore = fast.Arrivals;
            var t = client.GetAsync("/");
            pending.Add(t);
            await WaitUntil(() => slow.Arrivals + fast.Arrivals > before);
            if (fast.Arrivals > fastBefore)
            {
                toFast++;
                using var r = await t;
                Assert.Equal("fast", Header(r, "x-backend"));
            }
        }
        Assert.True(100.0 * toFast / n >= minIdleShare, $"{toFast} of {n} new requests went to the idle backend ({held} held on the slow one)");

        slow.Release();
        foreach (var t in pending) (await t).Dispose();
    }

    [Fact]
    public async Task HeaderHashPolicy_SameValue_SameBackend()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var c = await TestBackend.StartEchoAsync("c");
        foreach (var lb in new[] { "lb_policy: RING_HASH", "lb_policy: MAGLEV" })
        {
            await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(
                RouteWithHashPolicy("- header: { header_name: x-user }"), Cluster(lb, a, b, c)));
            using var client = proxy.Client("main");
            var seen = new HashSet<string>();
            for (var user = 0; user < 20; user++)
            {
                string? first = null;
                for (var i = 0; i < (user == 0 ? 50 : 3); i++)
                {
                    using var req = new HttpRequestMessage(HttpMethod.Get, "/");
                    req.Headers.Add("x-user", "user-" + user);
                    using var r = await client.SendAsync(req);
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                    var backend = Header(r, "x-backend")!;
                    first ??= backend;
                    Assert.Equal(first, backend); // 50 requests of user-0 (and 3 of each other user) stick
                }
                seen.Add(first!);
            }
            Assert.True(seen.Count >= 2, $"{lb}: 20 users all hashed to one backend");
        }
    }

    [Fact]
    public async Task CookieHashPolicy_GeneratesTheCookie_ThenSticks()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var c = await TestBackend.StartEchoAsync("c");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(
            RouteWithHashPolicy("- cookie: { name: session, ttl: 3600s, path: / }"), Cluster("lb_policy: RING_HASH", a, b, c)));
        using var client = proxy.Client("main");

        using var first = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var setCookie = Assert.Single(first.Headers.GetValues("set-cookie"));
        Assert.Matches("^session=\"[0-9a-f]{16}\"; Max-Age=3600; Path=/; HttpOnly$", setCookie);
        var cookie = setCookie[..setCookie.IndexOf(';')];
        var backend = Header(first, "x-backend");

        for (var i = 0; i < 20; i++)
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "/");
            req.Headers.Add("cookie", "other=1; " + cookie);
            using var r = await client.SendAsync(req);
            Assert.False(r.Headers.Contains("set-cookie")); // present: not generated again
            Assert.Equal(backend, Header(r, "x-backend"));
        }
    }

    [Fact]
    public async Task WeightedRoundRobin_SplitsByLoadBalancingWeight()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        var cluster = $"""
            - name: c
              connect_timeout: 1s
              load_assignment:
                cluster_name: c
                endpoints:
                - lb_endpoints:
                  - endpoint: {"{"} address: {"{"} socket_address: {"{"} address: 127.0.0.1, port_value: {a.Port} {"}"} {"}"} {"}"}
                    load_balancing_weight: 3
                  - endpoint: {"{"} address: {"{"} socket_address: {"{"} address: 127.0.0.1, port_value: {b.Port} {"}"} {"}"} {"}"}
                    load_balancing_weight: 1
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster));
        using var client = proxy.Client("main");
        var countA = 0;
        for (var i = 0; i < 40; i++)
        {
            using var r = await client.GetAsync("/");
            if (Header(r, "x-backend") == "a") countA++;
        }
        Assert.Equal(30, countA); // EDF: exactly 3 of every 4 sequential requests
    }
}
