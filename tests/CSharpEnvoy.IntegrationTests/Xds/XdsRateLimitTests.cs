using System.Diagnostics;
using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.DataPlane.Xds;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary><c>ApiConfigSource.rate_limit_settings</c>: a token bucket over the discovery requests of a stream, with
/// Envoy's <c>control_plane.rate_limit_enforced</c> and <c>control_plane.pending_requests</c>.</summary>
public sealed class XdsRateLimitTests
{
    [Fact]
    public void TokenBucket_StartsFull_RefillsAtTheFillRate_UpToMaxTokens()
    {
        var time = new ManualTimeProvider();
        var bucket = new XdsRequestRateLimiter(new XdsRateLimitModel(MaxTokens: 2, FillRate: 4), time);

        Assert.Equal(TimeSpan.Zero, bucket.TryTake());
        Assert.Equal(TimeSpan.Zero, bucket.TryTake());
        Assert.Equal(TimeSpan.FromMilliseconds(250), bucket.TryTake());
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(TimeSpan.FromMilliseconds(150), bucket.TryTake());
        time.Advance(TimeSpan.FromMilliseconds(150));
        Assert.Equal(TimeSpan.Zero, bucket.TryTake());
        time.Advance(TimeSpan.FromSeconds(10)); // refills to 2, not 40
        Assert.Equal(TimeSpan.Zero, bucket.TryTake());
        Assert.Equal(TimeSpan.Zero, bucket.TryTake());
        Assert.NotEqual(TimeSpan.Zero, bucket.TryTake());
    }

    [Fact]
    public async Task AdsRateLimit_SpacesTheRequests_CountsEnforcement_AndTrafficStillFlows()
    {
        // One token, two per second: the CDS ACK and the EDS subscription it causes are queued together, so the second
        // must wait half a second; so must every request after it.
        const double fillRate = 2;
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        var bootstrap = Bootstrap(cp.Port).Replace("grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]",
            "grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]\n    rate_limit_settings: { max_tokens: 1, fill_rate: 2 }");
        await using var proxy = await ProxyHarness.StartAsync(bootstrap);
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        await cp.WaitForAckAsync(TestControlPlane.RouteType, "v1");

        var at = cp.ReceivedAt;
        Assert.True(at.Count >= 6, $"only {at.Count} requests");
        // Times are taken where the control plane receives the requests. The first one arrives with the stream's
        // setup, which a loaded machine can delay by hundreds of milliseconds after the proxy sent it (and started
        // the wait for the second), so the spacing is measured from the second request on. It is measured from that
        // request rather than between neighbours: a receive delayed on a loaded machine makes it arrive together with
        // the next (a gap of 0 ms although the proxy sent them half a second apart), but request i can never arrive
        // before it was sent, (i - 1) intervals after the second was.
        for (var i = 2; i < at.Count; i++)
        {
            var since = Stopwatch.GetElapsedTime(at[1], at[i]);
            var least = TimeSpan.FromSeconds((i - 1) / fillRate) - TimeSpan.FromMilliseconds(100);
            Assert.True(since >= least, $"request {i} came {since.TotalMilliseconds:N0} ms after the second, before {least.TotalMilliseconds:N0} ms");
        }
        Assert.True(await proxy.StatAsync("control_plane.rate_limit_enforced") >= 1);
        Assert.Equal(1, cp.StreamsOpened); // never broken by the waits
        Assert.Equal(0, await proxy.StatAsync("control_plane.pending_requests"));
    }

    [Fact]
    public async Task WithoutRateLimitSettings_RequestsAreNotHeld_AndTheStatsExistAtZero()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        Assert.Equal(0, await proxy.StatAsync("control_plane.rate_limit_enforced"));
        Assert.Equal(0, await proxy.StatAsync("control_plane.pending_requests"));
    }

    [Fact]
    public void Bootstrap_RefusesRateLimitsThatCannotWork()
    {
        var ads = "grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]";
        var errors = ProxyHarness.Validate(Bootstrap(1234).Replace(ads, ads + "\n    rate_limit_settings: { fill_rate: 0 }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.ads_config.rate_limit_settings.fill_rate" && e.Message.Contains("positive"));
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace(ads, ads + "\n    rate_limit_settings: { max_tokens: 0 }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.ads_config.rate_limit_settings.max_tokens");
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cds_config: { ads: {}, resource_api_version: V3 }",
            "cds_config: { api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }], rate_limit_settings: { fill_rate: -1 } } }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.api_config_source.rate_limit_settings.fill_rate");
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace(ads, ads + "\n    rate_limit_settings: {}"));
        Assert.False(errors.HasErrors, errors.ToString());
    }
}
