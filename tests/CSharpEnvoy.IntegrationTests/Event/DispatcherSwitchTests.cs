using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Event;

/// <summary>
/// The csenvoy executable with its dispatchers (the default) and with <c>CSENVOY_DISPATCHER=0</c>, where HTTP/1.1 runs
/// on .NET's socket engine and Kestrel's socket transport (the path every platform without epoll takes): both proxy
/// keep-alive requests, and only the first has dispatcher threads.
/// </summary>
public sealed class DispatcherSwitchTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheExecutableProxies_WithAndWithoutDispatchers(bool dispatcher)
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var bootstrap = Path.Combine(Path.GetTempPath(), $"csenvoy-dispatcher-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(bootstrap, Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        try
        {
            var environment = dispatcher ? null : new Dictionary<string, string> { ["CSENVOY_DISPATCHER"] = "0" };
            var (process, admin) = await CsEnvoyProcess.StartWithAdminAsync(environment, ["-c", bootstrap, "-l", "warning"]);
            await using var _ = process;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var listener = await CsEnvoyProcess.ListenerAddressAsync(http, admin, "main");

            for (var i = 0; i < 3; i++)
            {
                using var response = await http.GetAsync($"http://{listener}/r{i}");
                Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
                Assert.Equal($"backend GET /r{i} body=0", await response.Content.ReadAsStringAsync());
            }

            var threads = Directory.GetDirectories($"/proc/{process.Id}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim()).ToList();
            Assert.Equal(dispatcher, threads.Any(t => t.StartsWith("csenvoy-dispatc", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(bootstrap);
        }
    }

    /// <summary>Envoy's <c>--concurrency</c> sets the number of worker threads, here dispatchers (0 still runs one),
    /// and the <c>server.concurrency</c> gauge reports it; a value that is not a count is refused at startup.</summary>
    [Theory]
    [InlineData(3, 3)]
    [InlineData(0, 1)]
    public async Task Concurrency_SetsTheNumberOfDispatcherThreads(int concurrency, int expected)
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var bootstrap = Path.Combine(Path.GetTempPath(), $"csenvoy-concurrency-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(bootstrap, Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        try
        {
            var (process, admin) = await CsEnvoyProcess.StartWithAdminAsync(["-c", bootstrap, "-l", "warning", "--concurrency", concurrency.ToString()]);
            await using var _ = process;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var listener = await CsEnvoyProcess.ListenerAddressAsync(http, admin, "main");
            using (var response = await http.GetAsync($"http://{listener}/c"))
                Assert.Equal("backend GET /c body=0", await response.Content.ReadAsStringAsync());

            var threads = Directory.GetDirectories($"/proc/{process.Id}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim()).ToList();
            Assert.Equal(expected, threads.Count(t => t.StartsWith("csenvoy-dispatc", StringComparison.Ordinal)));
            var stats = await http.GetStringAsync(admin + "/stats?filter=^server\\.concurrency$");
            Assert.Equal($"server.concurrency: {expected}", stats.Trim());
        }
        finally
        {
            File.Delete(bootstrap);
        }
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("two")]
    [InlineData("5000")]
    public async Task Concurrency_ThatIsNotACount_IsRefused(string value)
    {
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--concurrency", value, "--config-yaml", "{}");
        Assert.Equal(1, code);
        Assert.Contains("--concurrency needs a number of worker threads from 0 to 1024", stderr);
    }
}
