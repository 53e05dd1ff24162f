using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// The xDS push as a deployment sees it: a real csenvoy process (the published binary: ReadyToRun or Native AOT, so
/// its first push runs the code it ships with) connects to this process's ADS server (state of the world over gRPC);
/// the server answers its CDS request with 10,000 EDS clusters and its EDS request with their 100,000 endpoints, and
/// times each response from the moment it is written to the moment csenvoy ACKs it (csenvoy ACKs after applying).
/// Run: <c>dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- xds-e2e path/to/csenvoy</c>.
/// </summary>
internal static class XdsEndToEndBenchmark
{
    private const string ClusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    private const string EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    private const int Clusters = 10_000;

    private sealed class Ads(Channel<DiscoveryRequest> requests, Channel<DiscoveryResponse> responses) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream,
            IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
        {
            var writer = Task.Run(async () =>
            {
                await foreach (var r in responses.Reader.ReadAllAsync(context.CancellationToken)) await responseStream.WriteAsync(r);
            });
            await foreach (var r in requestStream.ReadAllAsync(context.CancellationToken)) await requests.Writer.WriteAsync(r);
            await writer;
        }
    }

    public static async Task RunAsync(string csenvoy)
    {
        var requests = Channel.CreateUnbounded<DiscoveryRequest>();
        var responses = Channel.CreateUnbounded<DiscoveryResponse>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = null;
            o.MaxSendMessageSize = null;
        });
        builder.Services.AddSingleton(new Ads(requests, responses));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, lo => lo.Protocols = HttpProtocols.Http2));
        await using var app = builder.Build();
        app.MapGrpcService<Ads>();
        await app.StartAsync();
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;

        var bootstrap = Path.Combine(Path.GetTempPath(), $"csenvoy-xds-e2e-{Environment.ProcessId}.yaml");
        await File.WriteAllTextAsync(bootstrap, $$"""
            node: { id: bench, cluster: bench }
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            dynamic_resources:
              ads_config:
                api_type: GRPC
                transport_api_version: V3
                grpc_services: [{ envoy_grpc: { cluster_name: xds } }]
              cds_config: { ads: {}, resource_api_version: V3 }
            static_resources:
              clusters:
              - name: xds
                type: STATIC
                connect_timeout: 1s
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    explicit_http_config: { http2_protocol_options: {} }
                load_assignment:
                  cluster_name: xds
                  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } } }] }]
            """);

        var cds = new DiscoveryResponse { VersionInfo = "1", TypeUrl = ClusterType, Nonce = "cds-1" };
        for (var i = 0; i < Clusters; i++) cds.Resources.Add(Any.Pack(XdsPushBenchmark.Cluster(i)));
        var eds = new DiscoveryResponse { VersionInfo = "1", TypeUrl = EndpointType, Nonce = "eds-1" };
        for (var i = 0; i < Clusters; i++) eds.Resources.Add(Any.Pack(XdsPushBenchmark.Assignment(i, 8000)));
        Console.WriteLine($"responses: CDS {cds.CalculateSize() / 1048576.0:N1} MB, EDS {eds.CalculateSize() / 1048576.0:N1} MB on the wire");

        var start = csenvoy.EndsWith(".dll", StringComparison.Ordinal)
            ? new ProcessStartInfo("dotnet") { ArgumentList = { csenvoy } }
            : new ProcessStartInfo(csenvoy);
        foreach (var a in new[] { "-c", bootstrap, "-l", "warning" }) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var proxy = Process.Start(start)!;
        proxy.OutputDataReceived += (_, _) => { };
        proxy.ErrorDataReceived += (_, e) => { if (e.Data is { } line) Console.Error.WriteLine("csenvoy: " + line); };
        proxy.BeginOutputReadLine();
        proxy.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await Until(requests, r => r.TypeUrl == ClusterType && r.ResponseNonce == "", deadline.Token);
            var cpu0 = Cpu(proxy);
            var faults0 = MinorFaults(proxy);
            var sw = Stopwatch.StartNew();
            await responses.Writer.WriteAsync(cds);
            var cdsAck = await Until(requests, r => r.TypeUrl == ClusterType && r.ResponseNonce == "cds-1", deadline.Token);
            var cdsTime = sw.Elapsed;
            var edsRequest = await Until(requests, r => r.TypeUrl == EndpointType && r.ResourceNames.Count >= Clusters, deadline.Token);
            var subscribed = sw.Elapsed;
            await responses.Writer.WriteAsync(eds);
            var edsAck = await Until(requests, r => r.TypeUrl == EndpointType && r.ResponseNonce == "eds-1", deadline.Token);
            var total = sw.Elapsed;
            var cpu = Cpu(proxy) - cpu0;
            var faults = MinorFaults(proxy) - faults0;
            if (cdsAck.ErrorDetail is { } ce) throw new InvalidOperationException("CDS NACKed: " + ce.Message);
            if (edsAck.ErrorDetail is { } ee) throw new InvalidOperationException("EDS NACKed: " + ee.Message);
            Console.WriteLine($"machine load average: {File.ReadAllText("/proc/loadavg").Split(' ')[0]} on {Environment.ProcessorCount} cores");
            Console.WriteLine($"CDS ({Clusters:N0} clusters) written → ACK: {cdsTime.TotalMilliseconds:N0} ms");
            Console.WriteLine($"EDS subscription ({edsRequest.ResourceNames.Count:N0} names) after the CDS ACK: {(subscribed - cdsTime).TotalMilliseconds:N0} ms");
            Console.WriteLine($"EDS ({Clusters * 10:N0} endpoints) written → ACK: {(total - subscribed).TotalMilliseconds:N0} ms");
            Console.WriteLine($"CDS written → EDS ACK: {total.TotalMilliseconds:N0} ms wall; csenvoy CPU over it: {cpu.TotalMilliseconds:N0} ms; csenvoy RSS after: {Rss(proxy)} MB");
            Console.WriteLine($"csenvoy page faults over it: {faults:N0} ({faults * 4 / 1024:N0} MB of fresh pages touched)");
        }
        finally
        {
            if (!proxy.HasExited) proxy.Kill(entireProcessTree: true);
            await proxy.WaitForExitAsync();
            File.Delete(bootstrap);
        }
    }

    private static async Task<DiscoveryRequest> Until(Channel<DiscoveryRequest> requests, Func<DiscoveryRequest, bool> match, CancellationToken ct)
    {
        while (true)
        {
            var r = await requests.Reader.ReadAsync(ct);
            if (match(r)) return r;
        }
    }

    /// <summary>User + system time of the process from /proc (ticks of 10 ms).</summary>
    private static TimeSpan Cpu(Process p)
    {
        var stat = File.ReadAllText($"/proc/{p.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return TimeSpan.FromMilliseconds((long.Parse(fields[11]) + long.Parse(fields[12])) * 10);
    }

    /// <summary>Minor page faults so far: each first touch of a fresh 4 KB page of heap.</summary>
    private static long MinorFaults(Process p)
    {
        var stat = File.ReadAllText($"/proc/{p.Id}/stat");
        return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[7]);
    }

    private static long Rss(Process p)
    {
        foreach (var line in File.ReadLines($"/proc/{p.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        return -1;
    }
}
