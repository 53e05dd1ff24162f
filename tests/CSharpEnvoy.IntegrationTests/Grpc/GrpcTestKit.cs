using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CSharpEnvoy.IntegrationTests.Grpc;

/// <summary>Shared setup for the gRPC tests: an h2c gRPC backend, a proxy in front of it, and a client channel.</summary>
internal static class GrpcTestKit
{
    public const string ClusterName = "grpc_backend";

    // Above the 4 MB gRPC default so the large-message tests measure the proxy, not the library limits.
    public const int MaxMessageSize = 16 * 1024 * 1024;

    /// <summary>Bounds every wait on the backend, so a proxy that buffers fails the test instead of hanging it.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);

    public static DateTime Deadline(int seconds = 10) => DateTime.UtcNow.AddSeconds(seconds);

    public static Task<TestBackend> StartBackendAsync(EchoProbe? probe = null) =>
        TestBackend.StartAppAsync(app => app.MapGrpcService<EchoService>(), HttpProtocols.Http2, services =>
        {
            services.AddGrpc(o =>
            {
                o.MaxReceiveMessageSize = MaxMessageSize;
                o.MaxSendMessageSize = MaxMessageSize;
            });
            services.AddSingleton(probe ?? new EchoProbe());
        });

    public const string CatchAllRoute = """
        - match: { prefix: "/" }
          route: { cluster: grpc_backend }
        """;

    /// <summary>One virtual host with <paramref name="routes"/> (default: every path to the gRPC cluster).</summary>
    public static string VirtualHosts(string routes = CatchAllRoute) => $"""
        - name: vh
          domains: ["*"]
          routes:
        {Yaml.Indent(routes, 2)}
        """;

    public static Task<ProxyHarness> StartProxyAsync(TestBackend backend, string routes = CatchAllRoute) =>
        ProxyHarness.StartAsync(Yaml.Bootstrap(VirtualHosts(routes), Yaml.Cluster(ClusterName, http2: true, backend.Address)));

    /// <summary>A gRPC channel to the proxy's "main" listener over h2c (prior knowledge: http:// address).</summary>
    public static GrpcChannel Channel(ProxyHarness proxy) => GrpcChannel.ForAddress(proxy.ListenerUri("main"), new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(5) },
        MaxReceiveMessageSize = MaxMessageSize,
        MaxSendMessageSize = MaxMessageSize,
    });

    public static Echo.EchoClient Client(GrpcChannel channel) => new(channel);

    /// <summary>A message in gRPC's length-prefixed framing: flag 0 (not compressed), big-endian length, the bytes.</summary>
    public static byte[] Frame(Google.Protobuf.IMessage message)
    {
        var payload = Google.Protobuf.MessageExtensions.ToByteArray(message);
        var frame = new byte[5 + payload.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    public static ByteString RandomBytes(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return ByteString.CopyFrom(bytes);
    }

}
