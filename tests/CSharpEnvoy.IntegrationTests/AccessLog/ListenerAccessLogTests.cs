using System.Text.Json;
using CSharpEnvoy.IntegrationTests.HealthChecking;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.AccessLog;

/// <summary>Listener-level <c>access_log</c>: one line per downstream connection, written when it closes.</summary>
public sealed class ListenerAccessLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-listener-log-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ListenerAccessLog_OneLinePerConnection_WithConnectionFacts()
    {
        var path = Path.Combine(_dir, "listener.log");
        await using var backend = await TestBackend.StartEchoAsync();
        var yaml = Yaml.Bootstrap("""
            - name: vh
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: backend } }]
            """, Yaml.Cluster("backend", backend.Address));
        var listenerLog = $$"""
                access_log:
                - name: envoy.access_loggers.file
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: {{path}}
                    log_format:
                      text_format_source:
                        inline_string: {{JsonSerializer.Serialize("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE% %CONNECTION_ID%\n")}}
            """;
        yaml = yaml.Replace("  - name: main\n", "  - name: main\n" + listenerLog + "\n");
        var proxy = await ProxyHarness.StartAsync(yaml);
        var address = proxy.ListenerAddress("main");

        // Two requests on one keep-alive connection, then the connection closes.
        using (var client = proxy.Client("main"))
        {
            (await client.GetAsync("/a")).Dispose();
            (await client.GetAsync("/b")).Dispose();
        }
        await HealthTestKit.WaitUntilAsync(async () => await proxy.StatAsync("http.ingress_http.downstream_cx_active") == 0, "the connection to close");
        await proxy.DisposeAsync(); // flushes the log

        var line = Assert.Single(File.ReadAllText(path).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches($"^127\\.0\\.0\\.1 {System.Text.RegularExpressions.Regex.Escape(address)} 0 [1-9][0-9]*$", line);
    }
}
