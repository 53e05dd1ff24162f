using BenchmarkDotNet.Attributes;
using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Benchmarks;

/// <summary>Virtual host lookup among 10,000 domains and first-match route scans over 10 / 1,000 / 10,000 prefix routes.</summary>
[MemoryDiagnoser]
public class RouteMatchingBenchmark
{
    private sealed class Req(string path) : IRouteRequest
    {
        public string Path { get; } = path;
        public string Query => "";
        public string? GetHeader(string lowerName) => null;
    }

    private VirtualHostTable<string> _vhosts = null!;
    private RouteTable<string> _routes = null!;
    private Req _lastRoute = null!;

    [Params(10, 1_000, 10_000)]
    public int Routes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var b = new VirtualHostTable<string>.Builder("bench");
        for (var i = 0; i < 5_000; i++)
        {
            b.Add($"vh{i}", new[] { $"svc{i}.example.com" });
            b.Add($"wc{i}", new[] { $"*.zone{i}.example.com" });
        }
        _vhosts = b.Build();
        var list = new List<(RouteMatchModel, string)>();
        for (var i = 0; i < Routes; i++) list.Add((RouteMatchModel.ForPrefix($"/api/v1/service{i}/"), $"r{i}"));
        _routes = new RouteTable<string>(list);
        _lastRoute = new Req($"/api/v1/service{Routes - 1}/items");
    }

    [Benchmark]
    public string? ExactVirtualHost() => _vhosts.Find("svc4321.example.com");

    [Benchmark]
    public string? WildcardVirtualHost() => _vhosts.Find("a.b.zone4321.example.com");

    [Benchmark]
    public string? LastPrefixRoute() => _routes.Find(_lastRoute);
}
