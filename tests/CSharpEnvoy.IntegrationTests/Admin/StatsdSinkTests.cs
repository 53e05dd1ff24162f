using System.Net;
using System.Net.Sockets;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>StatsD and DogStatsD sinks, received on a real UDP socket.</summary>
public sealed class StatsdSinkTests
{
    private static string Sink(string type, int port) => $$"""

        stats_flush_interval: 0.1s
        stats_sinks:
        - name: {{(type == "statsd" ? "envoy.stat_sinks.statsd" : "envoy.stat_sinks.dog_statsd")}}
          typed_config:
            "@type": type.googleapis.com/envoy.config.metrics.v3.{{(type == "statsd" ? "StatsdSink" : "DogStatsdSink")}}
            address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } }
        """;

    /// <summary>Reads datagrams until <paramref name="done"/> says so (bounded by a deadline), returning every line.</summary>
    private static async Task<List<string>> ReceiveUntilAsync(UdpClient udp, Func<List<string>, bool> done)
    {
        var lines = new List<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (!done(lines))
        {
            var r = await udp.ReceiveAsync(cts.Token);
            lines.AddRange(Encoding.UTF8.GetString(r.Buffer).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        return lines;
    }

    private static long SumCounter(List<string> lines, string prefix)
    {
        long total = 0;
        foreach (var l in lines)
            if (l.StartsWith(prefix, StringComparison.Ordinal) && l.EndsWith("|c", StringComparison.Ordinal) && !l.Contains("|#"))
                total += long.Parse(l[prefix.Length..^2]);
        return total;
    }

    [Fact]
    public async Task Statsd_SendsCounterDeltasGaugesAndTimers()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)) + Sink("statsd", port));
        using var client = proxy.Client("main");
        for (var i = 0; i < 5; i++) (await client.GetAsync("/")).Dispose();

        var lines = await ReceiveUntilAsync(udp, l =>
            SumCounter(l, "envoy.cluster.backend.upstream_rq_200:") == 5 &&
            l.Count(x => x.StartsWith("envoy.cluster.backend.upstream_rq_time:", StringComparison.Ordinal) && x.EndsWith("|ms", StringComparison.Ordinal)) == 5 &&
            l.Any(x => x.StartsWith("envoy.cluster.backend.membership_total:1|g", StringComparison.Ordinal)));

        // Deltas, not totals: summed over every flush the counter reaches exactly the number of requests.
        Assert.Equal(5, SumCounter(lines, "envoy.cluster.backend.upstream_rq_200:"));
        Assert.All(lines, l => Assert.Matches(@"^envoy\.[^:|]+:-?[0-9.]+\|(c|g|ms)$", l));
    }

    [Fact]
    public async Task DogStatsd_SendsTaggedNames()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)) + Sink("dog", port));
        using var client = proxy.Client("main");
        for (var i = 0; i < 3; i++) (await client.GetAsync("/")).Dispose();

        const string tagged = "envoy.cluster.upstream_rq:";
        const string tags = "|c|#envoy.response_code:200,envoy.cluster_name:backend";
        long Sum(List<string> l) => l.Where(x => x.StartsWith(tagged, StringComparison.Ordinal) && x.EndsWith(tags, StringComparison.Ordinal))
            .Sum(x => long.Parse(x[tagged.Length..^tags.Length]));
        var lines = await ReceiveUntilAsync(udp, l => Sum(l) == 3);

        Assert.Equal(3, Sum(lines));
        Assert.Contains(lines, l => l.StartsWith("envoy.cluster.upstream_rq_time:", StringComparison.Ordinal) && l.EndsWith("|ms|#envoy.cluster_name:backend", StringComparison.Ordinal));
    }

    [Fact]
    public void TcpStatsd_IsRefusedWithItsPath()
    {
        var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")) + """

            stats_sinks:
            - name: envoy.stat_sinks.statsd
              typed_config:
                "@type": type.googleapis.com/envoy.config.metrics.v3.StatsdSink
                tcp_cluster_name: statsd
            """;
        var errors = ProxyHarness.Validate(yaml);
        Assert.Contains(errors.Errors, e => e.Path == "stats_sinks[0].typed_config.tcp_cluster_name" && e.Message.Contains("UDP address"));
    }
}
