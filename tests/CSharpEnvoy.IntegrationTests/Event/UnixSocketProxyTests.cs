using System.Net.Sockets;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Event;

/// <summary>
/// Unix domain sockets on the dispatcher both ways: a listener on a <c>pipe</c> address (accepted sockets without TCP
/// options) proxying to a cluster whose endpoint is a <c>pipe</c> (a non-blocking connect to a socket file).
/// </summary>
public sealed class UnixSocketProxyTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AListenerOnAPipe_ProxiesToAClusterOnAPipe()
    {
        var dir = Directory.CreateTempSubdirectory("csenvoy-uds-");
        try
        {
            var backendPath = Path.Combine(dir.FullName, "backend.sock");
            var listenerPath = Path.Combine(dir.FullName, "listener.sock");
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(backendPath));
            await using var backend = builder.Build();
            backend.Run(ctx => ctx.Response.WriteAsync("over uds " + ctx.Request.Path));
            await backend.StartAsync();

            var cluster = $$"""
                - name: backend
                  connect_timeout: 1s
                  type: STATIC
                  load_assignment:
                    cluster_name: backend
                    endpoints:
                    - lb_endpoints:
                      - endpoint: { address: { pipe: { path: "{{backendPath}}" } } }
                """;
            var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, cluster);
            var tcpListener = "    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n    filter_chains:";
            Assert.Contains(tcpListener, yaml);
            yaml = yaml.Replace(tcpListener, $"    address: {{ pipe: {{ path: \"{listenerPath}\" }} }}\n    filter_chains:");
            await using var proxy = await ProxyHarness.StartAsync(yaml);

            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(listenerPath)).WaitAsync(Bound);
            for (var i = 0; i < 2; i++)
            {
                await client.SendAsync(Encoding.ASCII.GetBytes($"GET /r{i} HTTP/1.1\r\nHost: x\r\n\r\n")).WaitAsync(Bound);
                var response = await ReadResponseAsync(client, $"over uds /r{i}");
                Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task<string> ReadResponseAsync(Socket client, string body)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        // The backend's body has no length, so it comes chunked: the response ends with the last chunk.
        while (!text.ToString().EndsWith(body + "\r\n0\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await client.ReceiveAsync(buffer).WaitAsync(Bound);
            Assert.NotEqual(0, n);
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return text.ToString();
    }
}
