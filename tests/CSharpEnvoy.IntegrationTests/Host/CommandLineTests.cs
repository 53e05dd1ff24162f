using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Http;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Host;

/// <summary>The csenvoy executable as users run it: Envoy's flags, exit codes and messages.</summary>
public sealed class CommandLineTests
{
    internal static string WriteTemp(string text, string ext = ".yaml")
    {
        var path = Path.Combine(Path.GetTempPath(), "csenvoy-test-" + Guid.NewGuid().ToString("N") + ext);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Version_PrintsVersionAndExitsZero()
    {
        var (code, stdout, _) = await CsEnvoyProcess.RunAsync("--version");
        Assert.Equal(0, code);
        Assert.Contains("csenvoy  version: ", stdout);
    }

    [Fact]
    public async Task UnknownFlag_ExitsNonZeroWithUsage()
    {
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--bogus");
        Assert.Equal(1, code);
        Assert.Contains("unknown argument '--bogus'", stderr);
        Assert.Contains("usage: csenvoy", stderr);
    }

    /// <summary>The flags control planes pass on every start (Envoy Gateway's, and Istio's agent's: drain strategy, hot
    /// restart settings, workers from the cpuset, access log flush interval, local address version, log format and
    /// component levels).</summary>
    [Fact]
    public async Task FlagsControlPlanesPass_AreAccepted()
    {
        var path = WriteTemp(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")));
        try
        {
            var (code, stdout, stderr) = await CsEnvoyProcess.RunAsync("--mode", "validate", "-c", path, "--drain-time-s", "45",
                "--drain-strategy", "immediate", "--parent-shutdown-time-s", "60", "--local-address-ip-version", "v4",
                "--file-flush-interval-msec", "1000", "--disable-hot-restart", "--use-dynamic-base-id", "--cpuset-threads",
                "--restart-epoch", "0", "--concurrency", "2", "--allow-unknown-static-fields", "--reject-unknown-dynamic-fields",
                "--ignore-unknown-dynamic-fields", "--log-format-escaped",
                "--log-format", "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t", "-l", "warning", "--component-log-level", "misc:error");
            Assert.True(code == 0, stderr);
            Assert.Contains("OK", stdout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>csenvoy's protos are a subset of Envoy's, so a field it does not know may be one it does not implement:
    /// <c>--allow-unknown-static-fields</c> is taken, and such a field is still refused with its path.</summary>
    [Fact]
    public async Task AllowUnknownStaticFields_StillRefusesAFieldCsenvoyDoesNotKnow()
    {
        var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")) + "\nno_such_bootstrap_field: 1\n";
        var path = WriteTemp(yaml);
        try
        {
            var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--mode", "validate", "-c", path, "--allow-unknown-static-fields");
            Assert.Equal(1, code);
            Assert.Contains("no_such_bootstrap_field: unknown field 'no_such_bootstrap_field'", stderr);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--drain-strategy", "sudden", "--drain-strategy must be gradual or immediate")]
    [InlineData("--local-address-ip-version", "v6", "--local-address-ip-version v6 is not supported by csenvoy")]
    [InlineData("--restart-epoch", "1", "--restart-epoch above 0 asks for a hot restart, which csenvoy does not do")]
    [InlineData("--file-flush-interval-msec", "soon", "--file-flush-interval-msec needs a number of milliseconds")]
    [InlineData("--parent-shutdown-time-s", "-5", "--parent-shutdown-time-s needs a non-negative number")]
    [InlineData("--log-path", "/nonexistent-dir/csenvoy.log", "cannot open --log-path '/nonexistent-dir/csenvoy.log'")]
    public async Task FlagValuesCsenvoyCannotHonour_AreRefused(string flag, string value, string message)
    {
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync(flag, value, "--config-yaml", "{}");
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
    }

    /// <summary><c>--component-log-level</c> sets single loggers over <c>-l</c> (admin /logging shows them), and
    /// /server_info reports it with the drain strategy; an unknown logger or level is refused.</summary>
    [Fact]
    public async Task ComponentLogLevels_AndDrainStrategy_ShowInLoggingAndServerInfo()
    {
        var path = WriteTemp(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")));
        try
        {
            var (process, admin) = await CsEnvoyProcess.StartWithAdminAsync(["-c", path, "-l", "warning",
                "--component-log-level", "upstream:debug,misc:error,config:trace", "--drain-strategy", "immediate"]);
            await using var _ = process;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var logging = await http.PostAsync(admin + "/logging", null);
            var levels = await logging.Content.ReadAsStringAsync();
            Assert.Contains("  upstream: debug\n", levels);
            Assert.Contains("  config: trace\n", levels);
            Assert.Contains("  router: warning\n", levels);

            var info = JsonDocument.Parse(await http.GetStringAsync(admin + "/server_info")).RootElement.GetProperty("command_line_options");
            Assert.Equal("upstream:debug,misc:error,config:trace", info.GetProperty("component_log_level").GetString());
            Assert.Equal("Immediate", info.GetProperty("drain_strategy").GetString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("bogus:debug", "--component-log-level: invalid component specified 'bogus'")]
    [InlineData("upstream:loud", "--component-log-level: invalid log level 'loud' for 'upstream'")]
    [InlineData("upstream", "--component-log-level: invalid log level '' for 'upstream'")]
    public async Task ComponentLogLevels_WithAnUnknownLoggerOrLevel_AreRefused(string value, string message)
    {
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--component-log-level", value, "--config-yaml", "{}");
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public async Task ValidateMode_GoodConfig_PrintsOkAndExitsZero()
    {
        var path = Path.Combine(CsEnvoyProcess.RepoRoot(), "configs", "quickstart.yaml");
        var (code, stdout, stderr) = await CsEnvoyProcess.RunAsync("--mode", "validate", "-c", path);
        Assert.True(code == 0, stderr);
        Assert.Contains("OK", stdout);
    }

    [Fact]
    public async Task ValidateMode_BadConfig_ListsEveryErrorWithPathAndExitsOne()
    {
        var path = WriteTemp("""
            static_resources:
              clusters:
              - name: a
                connect_timeout: never
                lb_policy: CLUSTER_PROVIDED
              - name: a
                type: EDS
            """);
        try
        {
            var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--mode", "validate", "-c", path);
            Assert.Equal(1, code);
            Assert.Contains("static_resources.clusters[0].connect_timeout: invalid duration 'never'", stderr);
            // Parse errors stop before semantic checks; a file with only semantic errors lists them all:
        }
        finally
        {
            File.Delete(path);
        }
        var semantic = WriteTemp("""
            static_resources:
              clusters:
              - name: a
                lb_policy: CLUSTER_PROVIDED
              - name: a
            """);
        try
        {
            var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--mode", "validate", "-c", semantic);
            Assert.Equal(1, code);
            Assert.Contains("static_resources.clusters[0].lb_policy: lb_policy CLUSTER_PROVIDED is not supported yet", stderr);
            Assert.Contains("static_resources.clusters[1].name: duplicate cluster name 'a'", stderr);
        }
        finally
        {
            File.Delete(semantic);
        }
    }

    [Fact]
    public async Task MissingConfigFile_ExitsOneWithMessage()
    {
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync("-c", "/nonexistent/envoy.yaml");
        Assert.Equal(1, code);
        Assert.Contains("cannot read config file '/nonexistent/envoy.yaml'", stderr);
    }

    [Fact]
    public async Task PortInUse_ExitsOneNamingListenerAndAddress()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((IPEndPoint)blocker.LocalEndpoint).Port;
        var yaml = $$"""
            static_resources:
              listeners:
              - name: busy
                address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: x
                      route_config: { virtual_hosts: [{ name: v, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }] }] }
            """;
        var (code, _, stderr) = await CsEnvoyProcess.RunAsync("--config-yaml", yaml);
        Assert.Equal(1, code);
        Assert.Contains($"cannot bind listener 'busy' to 127.0.0.1:{port}", stderr);
    }

    [Fact]
    public async Task Quickstart_ServesDirectResponseAndAdminThroughACluster_ThenQuits()
    {
        // The shipped quickstart with its two fixed ports moved to free ones, so tests never collide.
        var listenerPort = FixedPorts.Next();
        var adminPort = FixedPorts.Next();
        var text = File.ReadAllText(Path.Combine(CsEnvoyProcess.RepoRoot(), "configs", "quickstart.yaml"))
            .Replace("port_value: 10000", $"port_value: {listenerPort}")
            .Replace("port_value: 9901", $"port_value: {adminPort}");
        var path = WriteTemp(text);
        try
        {
            await using var proc = CsEnvoyProcess.Start("-c", path, "--service-node", "node-1", "--service-zone", "zone-a");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            await WaitReadyAsync(http, $"http://127.0.0.1:{adminPort}/ready", proc);

            var hello = await http.GetStringAsync($"http://127.0.0.1:{listenerPort}/");
            var stats = await http.GetStringAsync($"http://127.0.0.1:{listenerPort}/admin/stats");
            var info = await http.GetStringAsync($"http://127.0.0.1:{adminPort}/server_info");
            using var quit = await http.PostAsync($"http://127.0.0.1:{adminPort}/quitquitquit", null);
            var code = await proc.WaitForExitAsync(TimeSpan.FromSeconds(30));

            Assert.StartsWith("Hello from CSharpEnvoy", hello);
            Assert.Contains("cluster.admin.upstream_rq_total: 1", stats);
            Assert.Contains("\"service_node\": \"node-1\"", info);
            Assert.Contains("\"service_zone\": \"zone-a\"", info);
            Assert.Equal(0, code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    internal static async Task WaitReadyAsync(HttpClient http, string url, CsEnvoyProcess proc)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(proc.HasExited, "csenvoy exited early: " + proc.Stderr);
            try
            {
                using var r = await http.GetAsync(url);
                if (r.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
                // not listening yet: poll again
            }
            await Task.Delay(50);
        }
        Assert.Fail("csenvoy did not become ready: " + proc.Stderr);
    }
}
