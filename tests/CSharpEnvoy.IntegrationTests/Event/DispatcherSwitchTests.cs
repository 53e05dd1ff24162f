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
}
