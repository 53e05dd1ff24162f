using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Bad input from the control plane is NACKed (or the stream is reconnected), never fatal, and the running
/// configuration keeps serving.</summary>
public sealed class XdsBadInputTests
{
    private static async Task<(TestBackend A, TestBackend B, TestControlPlane Cp, ProxyHarness Proxy, HttpClient Client)> StartAsync(string apiType = "GRPC")
    {
        var a = await TestBackend.StartEchoAsync("a");
        var b = await TestBackend.StartEchoAsync("b");
        var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        return (a, b, cp, proxy, client);
    }

    private static async Task StopAsync((TestBackend A, TestBackend B, TestControlPlane Cp, ProxyHarness Proxy, HttpClient Client) s)
    {
        s.Client.Dispose();
        await s.Proxy.DisposeAsync();
        await s.Cp.DisposeAsync();
        await s.A.DisposeAsync();
        await s.B.DisposeAsync();
    }

    [Fact]
    public async Task DuplicateNames_AreNacked_AndTrafficStays()
    {
        var s = await StartAsync();
        try
        {
            s.Cp.SetSnapshot("v2", EdsCluster("backend"), EdsCluster("backend"), Cla("backend", s.B.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
            var nack = await s.Cp.WaitForNackAsync(ClusterType);
            Assert.Contains("duplicate cluster 'backend'", nack.ErrorDetail.Message);
            Assert.Equal("v1", nack.VersionInfo);

            s.Cp.SetSnapshot("v3", EdsCluster("backend"), Cla("backend", s.A.Port), RdsListener("ingress", "routes"), RdsListener("ingress", "routes"), Routes("routes", "backend"));
            nack = await s.Cp.WaitForNackAsync(ListenerType);
            Assert.Contains("duplicate listener 'ingress'", nack.ErrorDetail.Message);
            for (var i = 0; i < 3; i++) Assert.Equal("a", await BackendOfAsync(s.Client));
            Assert.Equal(1, await s.Proxy.StatAsync("listener_manager.lds.update_rejected"));
        }
        finally
        {
            await StopAsync(s);
        }
    }

    [Fact]
    public async Task RouteToUnknownCluster_IsAcceptedAsEnvoy_UnlessValidateClustersIsSet()
    {
        var s = await StartAsync();
        try
        {
            // RDS does not validate clusters by default (Envoy): accepted, and such requests get 503.
            s.Cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", s.A.Port), RdsListener("ingress", "routes"), Routes("routes", "nowhere"));
            await s.Cp.WaitForAckAsync(RouteType, "v2");
            await EventuallyAsync(s.Client, "503");

            // validate_clusters: true makes it a rejection; the last good routes stay.
            s.Cp.SetSnapshot("v3", EdsCluster("backend"), Cla("backend", s.A.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
            await EventuallyAsync(s.Client, "a");
            var strict = Routes("routes", "nowhere");
            strict.ValidateClusters = true;
            s.Cp.SetSnapshot("v4", EdsCluster("backend"), Cla("backend", s.A.Port), RdsListener("ingress", "routes"), strict);
            var nack = await s.Cp.WaitForNackAsync(RouteType);
            Assert.Contains("nowhere", nack.ErrorDetail.Message);
            Assert.Equal("v3", nack.VersionInfo);
            Assert.Equal("a", await BackendOfAsync(s.Client));
        }
        finally
        {
            await StopAsync(s);
        }
    }

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task UnknownNestedType_AndGarbageBytes_AreNacked(string apiType)
    {
        var s = await StartAsync(apiType);
        try
        {
            var bad = EdsCluster("backend");
            bad.TransportSocket = new Envoy.Config.Core.V3.TransportSocket
            {
                Name = "envoy.transport_sockets.tls",
                TypedConfig = new Any { TypeUrl = "type.googleapis.com/no.such.TlsContext", Value = ByteString.CopyFrom(1, 2, 3) },
            };
            s.Cp.SetSnapshot("v2", bad, Cla("backend", s.A.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
            string message = apiType == "GRPC"
                ? (await s.Cp.WaitForNackAsync(ClusterType)).ErrorDetail.Message
                : (await s.Cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null)).ErrorDetail.Message;
            Assert.Contains("backend.transport_socket", message);

            // A listener whose bytes are not a listener.
            s.Cp.SetResources(ListenerType, "v3", [("ingress", new Any { TypeUrl = ListenerType, Value = ByteString.CopyFrom(0x0a, 0xff, 0xff, 0xff) })]);
            message = apiType == "GRPC"
                ? (await s.Cp.WaitAsync<DiscoveryRequest>(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null)).ErrorDetail.Message
                : (await s.Cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null)).ErrorDetail.Message;
            Assert.Contains("cannot decode", message);
            for (var i = 0; i < 3; i++) Assert.Equal("a", await BackendOfAsync(s.Client));
        }
        finally
        {
            await StopAsync(s);
        }
    }

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task StreamClosedMidResponse_Reconnects_AndTheNextUpdateApplies(string apiType)
    {
        var s = await StartAsync(apiType);
        try
        {
            var streams = s.Cp.StreamsOpened;
            s.Cp.BreakNextResponse();
            s.Cp.SetSnapshot("v2", Snapshot(s.B.Port));
            // The cut-off message is dropped with its stream; the client reconnects and gets v2 on the new stream.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (s.Cp.StreamsOpened <= streams)
            {
                Assert.True(DateTime.UtcNow < deadline, "the client never reconnected");
                Assert.Contains(await BackendOfAsync(s.Client), new[] { "a", "b" }); // still serving meanwhile
                await Task.Delay(20);
            }
            await EventuallyAsync(s.Client, "b");
            Assert.Equal(1, await s.Proxy.StatAsync("control_plane.connected_state"));
        }
        finally
        {
            await StopAsync(s);
        }
    }
}
