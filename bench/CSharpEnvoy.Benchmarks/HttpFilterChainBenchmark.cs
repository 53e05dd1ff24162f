using BenchmarkDotNet.Attributes;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Server;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// Per-request cost of the connection manager's HTTP filter chain: the router alone, versus fault + local rate limit
/// before it (neither acting: 0% faults, a bucket that never empties), versus the same with a per-route
/// typed_per_filter_config override. The route is a direct response, so no upstream is involved and the difference
/// between the rows is the filters' own cost.
/// </summary>
[MemoryDiagnoser]
public class HttpFilterChainBenchmark
{
    private HttpConnectionManager _routerOnly = null!;
    private HttpConnectionManager _faultAndLocalRateLimit = null!;
    private HttpConnectionManager _perRouteOverride = null!;

    private const string Fault = """
        - name: envoy.filters.http.fault
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
            delay: { fixed_delay: 1s, percentage: { numerator: 0 } }
            abort: { http_status: 503, percentage: { numerator: 0 } }
        - name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: rl
            token_bucket: { max_tokens: 4000000000, tokens_per_fill: 4000000000, fill_interval: 1s }
            filter_enabled: { runtime_key: e, default_value: { numerator: 100 } }
            filter_enforced: { runtime_key: f, default_value: { numerator: 100 } }
        """;

    private const string PerRoute = """
        typed_per_filter_config:
          envoy.filters.http.fault:
            "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
            abort: { http_status: 503, percentage: { numerator: 0 } }
        """;

    private static string Bootstrap(string filters, string routeExtra) => $$"""
        static_resources:
          listeners:
          - name: main
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: bench
                  route_config:
                    virtual_hosts:
                    - name: vh
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response: { status: 200 }
        {{Indent(routeExtra, 16)}}
                  http_filters:
        {{Indent(filters, 10)}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """;

    private static string Indent(string text, int spaces) =>
        string.Join("\n", text.Split('\n').Select(l => l.Length == 0 ? l : new string(' ', spaces) + l));

    private static HttpConnectionManager Build(string yaml)
    {
        var errors = new ConfigErrors();
        var model = ServerBuilder.LoadBootstrap(new ServerOptions { ConfigYaml = yaml }, errors) ?? throw new ConfigException(errors);
        var stats = new StatsStore();
        var services = new ServiceCollection().AddLogging().AddHttpForwarder().BuildServiceProvider();
        var router = new RouterFilter(services.GetRequiredService<IHttpForwarder>(), new ClusterManager(stats, NullLoggerFactory.Instance));
        return new HttpConnectionManager(model.Listeners[0].FilterChains[0].HttpConnectionManager!, stats, router);
    }

    [GlobalSetup]
    public void Setup()
    {
        _routerOnly = Build(Bootstrap("", ""));
        _faultAndLocalRateLimit = Build(Bootstrap(Fault, ""));
        _perRouteOverride = Build(Bootstrap(Fault, PerRoute));
    }

    private static Task Run(HttpConnectionManager hcm)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Protocol = "HTTP/1.1";
        context.Request.Host = new HostString("api.example.com");
        context.Request.Path = "/v1/items";
        context.Response.Body = Stream.Null;
        return hcm.HandleAsync(context, isTls: false);
    }

    [Benchmark(Baseline = true)]
    public Task RouterOnly() => Run(_routerOnly);

    [Benchmark]
    public Task FaultAndLocalRateLimit() => Run(_faultAndLocalRateLimit);

    [Benchmark]
    public Task FaultAndLocalRateLimit_PerRouteOverride() => Run(_perRouteOverride);
}
