using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Yarp.ReverseProxy.Configuration;

// usage: CSharpEnvoy.YarpBaseline <listen-port> <backend-url> <listen: h1|h2c> <upstream: h1|h2c>
var port = int.Parse(args[0]);
var backend = args[1];
var h2 = args[2] == "h2c";
var upstreamH2 = args[3] == "h2c";
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k =>
{
    k.AddServerHeader = false;
    k.Listen(IPAddress.Loopback, port, o => o.Protocols = h2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
});
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "{**catch-all}" } }],
    [new ClusterConfig
    {
        ClusterId = "backend",
        Destinations = new Dictionary<string, DestinationConfig> { ["d1"] = new() { Address = backend } },
        HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig
        {
            Version = upstreamH2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        },
    }]);
var app = builder.Build();
app.MapReverseProxy();
app.Run();
