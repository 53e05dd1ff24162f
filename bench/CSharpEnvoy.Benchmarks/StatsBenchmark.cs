using BenchmarkDotNet.Attributes;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// The stats one proxied request records, as the connection manager and router record them: downstream total,
/// protocol, active up/down, completed and class; upstream total, active, completed, code and class; and the two
/// histograms (downstream_rq_time, upstream_rq_time). Target: at most 300 ns and no allocation per request.
/// <see cref="PerRequestWithVirtualCluster"/> adds a virtual cluster's stats.
/// </summary>
[MemoryDiagnoser]
public class StatsBenchmark
{
    private HttpConnectionManagerStats _hcm = null!;
    private ClusterStats _cluster = null!;
    private VirtualClusterStats _vcluster = null!;
    private int _i;

    [GlobalSetup]
    public void Setup()
    {
        var store = new StatsStore();
        _hcm = new HttpConnectionManagerStats(store, "ingress_http");
        _cluster = new ClusterStats(store, "backend");
        _vcluster = new VirtualClusterStats(store, "api", "users");
        // The first 200 creates its counters; a request in steady state finds them.
        _cluster.ResponseCode(200);
        _vcluster.Charge(200, 1);
    }

    [Benchmark(Baseline = true)]
    public void PerRequest()
    {
        // Latencies vary so the histograms touch different buckets.
        var ms = (_i++ & 63) * 0.7;
        var hcm = _hcm;
        var cluster = _cluster;
        hcm.DownstreamRqTotal.Inc();
        hcm.DownstreamRqHttp1Total.Inc();
        hcm.DownstreamRqActive.Inc();
        cluster.UpstreamRqTotal.Inc();
        cluster.UpstreamRqActive.Inc();
        cluster.UpstreamRqActive.Dec();
        cluster.ResponseCode(200);
        cluster.UpstreamRqTime.Record(ms * 0.9);
        hcm.DownstreamRqActive.Dec();
        hcm.ResponseCode(200);
        hcm.DownstreamRqTime.Record(ms);
    }

    [Benchmark]
    public void PerRequestWithVirtualCluster()
    {
        PerRequest();
        _vcluster.UpstreamRqTotal.Inc();
        _vcluster.Charge(200, (_i & 63) * 0.7);
    }
}
