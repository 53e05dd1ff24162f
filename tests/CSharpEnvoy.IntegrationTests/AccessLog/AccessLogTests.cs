using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CSharpEnvoy.IntegrationTests.Http;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.AccessLog;

/// <summary>
/// HCM access logs end to end: a real proxy writes a real file; each test disposes the proxy (which flushes the
/// logs) before reading it, so nothing waits on the flush timer.
/// </summary>
public sealed class AccessLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-accesslog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string LogPath => Path.Combine(_dir, "access.log");

    /// <summary>Envoy's documented default format as a regex, one group per operator.</summary>
    private static readonly Regex s_defaultFormat = new(
        "^\\[(?<start>\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z)\\] \"(?<method>\\S+) (?<path>\\S+) (?<protocol>\\S+)\" " +
        "(?<code>\\d+) (?<flags>\\S+) (?<rx>\\d+) (?<tx>\\d+) (?<duration>\\d+) (?<svctime>\\S+) \"(?<xff>[^\"]*)\" " +
        "\"(?<ua>[^\"]*)\" \"(?<rid>[^\"]*)\" \"(?<authority>[^\"]*)\" \"(?<upstream>[^\"]*)\"$");

    private static string Routes(string extra = "") => $$"""
        - name: vh
          domains: ["*"]
          routes:
        {{Yaml.Indent(extra, 2)}}
          - name: to_backend
            match: { prefix: "/" }
            route: { cluster: backend }
        """;

    /// <summary>An access_log entry for the HCM writing to the test's file.</summary>
    private string FileLog(string format = "", string filter = "") => $$"""
        access_log:
        - name: envoy.access_loggers.file
        {{Yaml.Indent(filter, 2)}}
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
            path: {{LogPath}}
        {{Yaml.Indent(format, 4)}}
        """;

    private static string TextFormat(string format) => $$"""
        log_format:
          text_format_source:
            inline_string: {{JsonSerializer.Serialize(format)}}
        """;

    private async Task<string[]> RunAsync(string hcmExtra, string routes, string clusters, Func<HttpClient, ProxyHarness, Task> requests)
    {
        await using (var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, clusters, hcmExtra)))
        {
            using var client = proxy.Client("main");
            await requests(client, proxy);
        }
        return File.ReadAllText(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task DefaultFormat_ProxiedRequest_HasEnvoysDocumentedShape()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        string listener = "";
        var lines = await RunAsync(FileLog(), Routes(), Yaml.Cluster("backend", backend.Address), async (client, proxy) =>
        {
            listener = proxy.ListenerAddress("main");
            using var r = await HttpTestUtil.GetAsync(client, "/hello?x=1", null, ("user-agent", "test-agent/1.0"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            await r.Content.ReadAsStringAsync();
        });

        var line = Assert.Single(lines);
        var m = s_defaultFormat.Match(line);
        Assert.True(m.Success, line);
        Assert.True(DateTime.TryParse(m.Groups["start"].Value, out _));
        Assert.Equal("GET", m.Groups["method"].Value);
        Assert.Equal("/hello?x=1", m.Groups["path"].Value);
        Assert.Equal("HTTP/1.1", m.Groups["protocol"].Value);
        Assert.Equal("200", m.Groups["code"].Value);
        Assert.Equal("-", m.Groups["flags"].Value);
        Assert.Equal("0", m.Groups["rx"].Value);
        Assert.Equal("backend GET /hello?x=1 body=0".Length.ToString(), m.Groups["tx"].Value);
        Assert.Matches("^\\d+$", m.Groups["svctime"].Value);
        Assert.Equal("-", m.Groups["xff"].Value);
        Assert.Equal("test-agent/1.0", m.Groups["ua"].Value);
        Assert.True(Guid.TryParse(m.Groups["rid"].Value, out _));
        Assert.Equal(listener, m.Groups["authority"].Value);
        Assert.Equal(backend.Address, m.Groups["upstream"].Value);
        Assert.EndsWith("\"" + backend.Address + "\"", line); // and the line ends with the newline of the format
    }

    [Fact]
    public async Task Failures_CarryEnvoysCodesFlagsAndDetails()
    {
        var release = new TaskCompletionSource();
        await using var slow = await TestBackend.StartAsync(async ctx =>
        {
            await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await ctx.Response.WriteAsync("late");
        });
        var refused = FixedPorts.Next();
        var routes = """
            - name: vh
              domains: ["*"]
              routes:
              - name: refused
                match: { prefix: "/refused" }
                route: { cluster: refused }
              - name: empty
                match: { prefix: "/empty" }
                route: { cluster: empty }
              - name: slow
                match: { prefix: "/slow" }
                route: { cluster: slow, timeout: 0.2s }
              - name: direct
                match: { prefix: "/direct" }
                direct_response: { status: 418, body: { inline_string: "teapot" } }
            """;
        var clusters = Yaml.Cluster("refused", $"127.0.0.1:{refused}") + "\n" + Yaml.Cluster("slow", slow.Address) + """

            - name: empty
              connect_timeout: 1s
              load_assignment: { cluster_name: empty }
            """;
        var format = TextFormat("%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG% %RESPONSE_CODE_DETAILS% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %ROUTE_NAME% %BYTES_SENT%\n");
        var lines = await RunAsync(FileLog(format), routes, clusters, async (client, _) =>
        {
            foreach (var path in new[] { "/nowhere", "/refused", "/empty", "/slow", "/direct" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                if (path == "/nowhere") request.Headers.Host = "unknown.example";
                using var r = await client.SendAsync(request);
                await r.Content.ReadAsStringAsync();
            }
            release.SetResult();
        });

        Assert.Equal(
        [
            "/nowhere 404 NR NoRouteFound route_not_found - - 0 - 0",
            $"/refused 503 UF UpstreamConnectionFailure upstream_reset_before_response_started{{connection_failure}} 127.0.0.1:{refused} refused 1 refused 91",
            "/empty 503 UH NoHealthyUpstream no_healthy_upstream - empty 0 empty 19",
            $"/slow 504 UT UpstreamRequestTimeout upstream_response_timeout {slow.Address} slow 1 slow 24",
            "/direct 418 - - direct_response - - 0 direct 6",
        ], lines);
    }

    [Fact]
    public async Task CustomTextFormat_ManyOperators()
    {
        await using var backend = await TestBackend.StartEchoAsync("b1");
        var format = TextFormat(
            "%REQ(:METHOD)%|%REQ(X-MISSING?USER-AGENT)%|%REQ(USER-AGENT):4%|%RESP(X-BACKEND)%|%PROTOCOL%|%BYTES_RECEIVED%|" +
            "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_LOCAL_ADDRESS%|%START_TIME(%s)%|%REQUESTED_SERVER_NAME%|" +
            "%DOWNSTREAM_PEER_URI_SAN%|%CONNECTION_ID%|%HOSTNAME%|100%%|%UPSTREAM_CLUSTER%|%REQUEST_DURATION%|%RESPONSE_DURATION%|%DURATION%\n");
        string listener = "";
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var lines = await RunAsync(FileLog(format), Routes(), Yaml.Cluster("backend", backend.Address), async (client, proxy) =>
        {
            listener = proxy.ListenerAddress("main");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = new StringContent("hello world") };
            request.Headers.TryAddWithoutValidation("user-agent", "agent-x");
            using var r = await client.SendAsync(request);
            Assert.Equal("b1 POST /upload body=11", await r.Content.ReadAsStringAsync());
        });

        var f = Assert.Single(lines).Split('|');
        Assert.Equal("POST", f[0]);
        Assert.Equal("agent-x", f[1]);
        Assert.Equal("agen", f[2]);
        Assert.Equal("b1", f[3]);
        Assert.Equal("HTTP/1.1", f[4]);
        Assert.Equal("11", f[5]);
        Assert.Equal("127.0.0.1", f[6]);
        Assert.Equal(listener, f[7]);
        Assert.InRange(long.Parse(f[8]), before - 1, before + 60);
        Assert.Equal("-", f[9]);
        Assert.Equal("-", f[10]);
        Assert.True(long.Parse(f[11]) > 0);
        Assert.Equal(Dns.GetHostName(), f[12]);
        Assert.Equal("100%", f[13]);
        Assert.Equal("backend", f[14]);
        var request_ = long.Parse(f[15]);
        var response = long.Parse(f[16]);
        var total = long.Parse(f[17]);
        Assert.True(request_ <= total && response <= total, string.Join('|', f));
    }

    [Fact]
    public async Task JsonFormat_TypedValues_NestedObjects_SortedKeys()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var format = """
            log_format:
              json_format:
                status: "%RESPONSE_CODE%"
                method: "%REQ(:METHOD)%"
                missing: "%REQ(X-NOPE)%"
                combined: "%REQ(:METHOD)% %RESPONSE_CODE% %REQ(X-NOPE)%"
                nested: { bytes: "%BYTES_SENT%", constant: 7, flag: true, text: "plain \"quoted\"" }
                list: ["%PROTOCOL%", 1]
                duration: "%DURATION%"
                upstream: "%UPSTREAM_HOST%"
            """;
        var lines = await RunAsync(FileLog(format), Routes(), Yaml.Cluster("backend", backend.Address), async (client, _) =>
        {
            using var r = await client.GetAsync("/j");
            await r.Content.ReadAsStringAsync();
        });

        var line = Assert.Single(lines);
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal(["combined", "duration", "list", "method", "missing", "nested", "status", "upstream"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Number, root.GetProperty("status").ValueKind);
        Assert.Equal(200, root.GetProperty("status").GetInt32());
        Assert.Equal("GET", root.GetProperty("method").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("missing").ValueKind);
        Assert.Equal("GET 200 -", root.GetProperty("combined").GetString());
        Assert.Equal(JsonValueKind.Number, root.GetProperty("duration").ValueKind);
        Assert.Equal(backend.Address, root.GetProperty("upstream").GetString());
        var nested = root.GetProperty("nested");
        Assert.Equal("backend GET /j body=0".Length, nested.GetProperty("bytes").GetInt32());
        Assert.Equal(7, nested.GetProperty("constant").GetInt32());
        Assert.True(nested.GetProperty("flag").GetBoolean());
        Assert.Equal("plain \"quoted\"", nested.GetProperty("text").GetString());
        Assert.Equal("HTTP/1.1", root.GetProperty("list")[0].GetString());
        Assert.Equal(1, root.GetProperty("list")[1].GetInt32());
    }

    [Fact]
    public async Task JsonFormat_OmitEmptyValues_DropsMissingKeys()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var format = """
            log_format:
              omit_empty_values: true
              json_format: { missing: "%REQ(X-NOPE)%", method: "%REQ(:METHOD)%", both: "[%REQ(X-NOPE)%]" }
            """;
        var lines = await RunAsync(FileLog(format), Routes(), Yaml.Cluster("backend", backend.Address), async (client, _) =>
        {
            using var r = await client.GetAsync("/");
            await r.Content.ReadAsStringAsync();
        });
        Assert.Equal("{\"both\":\"[]\",\"method\":\"GET\"}", Assert.Single(lines));
    }

    [Fact]
    public async Task LegacyJsonFormat_WritesEveryValueAsAString()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var format = """json_format: { status: "%RESPONSE_CODE%", missing: "%REQ(X-NOPE)%" }""";
        var lines = await RunAsync(FileLog(format), Routes(), Yaml.Cluster("backend", backend.Address), async (client, _) =>
        {
            using var r = await client.GetAsync("/");
            await r.Content.ReadAsStringAsync();
        });
        Assert.Equal("{\"missing\":\"-\",\"status\":\"200\"}", Assert.Single(lines));
    }

    public static TheoryData<string, string[]> Filters() => new()
    {
        // Requests: /ok (200), /missing (404 NR), /empty (503 UH) with header x-log: yes.
        { "status_code_filter: { comparison: { op: GE, value: { default_value: 400, runtime_key: k } } }", ["/missing", "/empty"] },
        { "status_code_filter: { comparison: { op: EQ, value: { default_value: 200, runtime_key: k } } }", ["/ok"] },
        { "status_code_filter: { comparison: { op: LE, value: { default_value: 404, runtime_key: k } } }", ["/ok", "/missing"] },
        { "duration_filter: { comparison: { op: GE, value: { default_value: 60000, runtime_key: k } } }", [] },
        { "duration_filter: { comparison: { op: LE, value: { default_value: 60000, runtime_key: k } } }", ["/ok", "/missing", "/empty"] },
        { "not_health_check_filter: {}", ["/ok", "/missing", "/empty"] },
        { "response_flag_filter: { flags: [UH] }", ["/empty"] },
        { "response_flag_filter: { flags: [NR, UF] }", ["/missing"] },
        { "response_flag_filter: {}", ["/missing", "/empty"] },
        { "header_filter: { header: { name: x-log, string_match: { exact: yes } } }", ["/empty"] },
        { "runtime_filter: { runtime_key: k, percent_sampled: { numerator: 0 } }", [] },
        { "runtime_filter: { runtime_key: k, percent_sampled: { numerator: 100 } }", ["/ok", "/missing", "/empty"] },
        { "runtime_filter: { runtime_key: k, percent_sampled: { numerator: 1000000, denominator: MILLION }, use_independent_randomness: true }", ["/ok", "/missing", "/empty"] },
        { "and_filter: { filters: [ { status_code_filter: { comparison: { op: GE, value: { default_value: 400, runtime_key: k } } } }, { response_flag_filter: { flags: [NR] } } ] }", ["/missing"] },
        { "or_filter: { filters: [ { header_filter: { header: { name: x-log, present_match: true } } }, { status_code_filter: { comparison: { value: { default_value: 200, runtime_key: k } } } } ] }", ["/ok", "/empty"] },
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task Filter_SelectsWhichRequestsAreLogged(string filter, string[] expected)
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var routes = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { path: "/ok" }
                route: { cluster: backend }
              - match: { path: "/empty" }
                route: { cluster: empty }
            """;
        var clusters = Yaml.Cluster("backend", backend.Address) + """

            - name: empty
              connect_timeout: 1s
              load_assignment: { cluster_name: empty }
            """;
        var lines = await RunAsync(FileLog(TextFormat("%REQ(:PATH)%\n"), "filter: { " + filter + " }"), routes, clusters, async (client, _) =>
        {
            foreach (var (path, header) in new[] { ("/ok", false), ("/missing", false), ("/empty", true) })
            {
                using var r = header ? await HttpTestUtil.GetAsync(client, path, null, ("x-log", "yes")) : await client.GetAsync(path);
                await r.Content.ReadAsStringAsync();
            }
        });
        Assert.Equal(expected, lines);
    }

    [Fact]
    public async Task Grpc_StatusFromTrailers_AndHttp2Protocol()
    {
        await using var backend = await Grpc.GrpcTestKit.StartBackendAsync();
        var format = TextFormat("%PROTOCOL% %RESPONSE_CODE% %GRPC_STATUS% %GRPC_STATUS(NUMBER)% %REQ(:PATH)% %UPSTREAM_CLUSTER%\n");
        var yaml = Yaml.Bootstrap(Grpc.GrpcTestKit.VirtualHosts(), Yaml.Cluster(Grpc.GrpcTestKit.ClusterName, http2: true, backend.Address), FileLog(format));
        await using (var proxy = await ProxyHarness.StartAsync(yaml))
        {
            using var channel = Grpc.GrpcTestKit.Channel(proxy);
            var reply = await Grpc.GrpcTestKit.Client(channel).UnaryAsync(new Protos.EchoRequest { Text = "x" }, deadline: Grpc.GrpcTestKit.Deadline());
            Assert.Equal("x", reply.Text);
        }
        Assert.Equal("HTTP/2 200 OK 0 /csenvoy.test.Echo/Unary grpc_backend", Assert.Single(File.ReadAllText(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task Dispose_FlushesEveryLine_AndCountsFilesystemStats()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        CSharpEnvoy.DataPlane.Stats.StatsStore? stats = null;
        var lines = await RunAsync(FileLog(TextFormat("%REQ(:PATH)%\n")), Routes(), Yaml.Cluster("backend", backend.Address), async (client, proxy) =>
        {
            stats = proxy.Server.Stats;
            for (var i = 0; i < 50; i++)
            {
                using var r = await client.GetAsync($"/n{i}");
                await r.Content.ReadAsStringAsync();
            }
        });
        // Read once the server is disposed: a request logs just after its response went out.
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"/n{i}"), lines);
        Assert.Equal(50, stats!.Counter("filesystem.write_buffered").Value);
        Assert.True(stats.Counter("filesystem.write_completed").Value >= 1);
        Assert.Equal(0, stats.Counter("filesystem.write_dropped").Value);
    }

    [Fact]
    public async Task TwoLoggers_OnOneFile_ShareOneWriter()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var extra = FileLog(TextFormat("A %REQ(:PATH)%\n")) + "\n" + FileLog(TextFormat("B %REQ(:PATH)%\n")).Replace("access_log:\n", "");
        var lines = await RunAsync(extra, Routes(), Yaml.Cluster("backend", backend.Address), async (client, _) =>
        {
            using var r = await client.GetAsync("/x");
            await r.Content.ReadAsStringAsync();
        });
        Assert.Equal(["A /x", "B /x"], lines);
    }

    [Fact]
    public void FileInMissingDirectory_FailsTheLoad_WithThePath()
    {
        var path = Path.Combine(_dir, "no-such-dir", "access.log");
        var yaml = Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", "127.0.0.1:1"), FileLog().Replace(LogPath, path));
        var errors = ProxyHarness.Validate(yaml);
        var e = Assert.Single(errors.Errors);
        Assert.Equal("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.access_log[0].typed_config.path", e.Path);
        Assert.Equal($"unable to open file '{path}': directory '{Path.GetDirectoryName(path)}' does not exist", e.Message);
    }

    [Fact]
    public void BadFormats_AndUnsupportedFilters_AreRefusedWithTheirPath()
    {
        const string hcm = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
        var yaml = Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", "127.0.0.1:1"), $$"""
            access_log:
            - name: envoy.access_loggers.stdout
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                log_format: { text_format_source: { inline_string: "%NOT_AN_OPERATOR%" } }
            - name: envoy.access_loggers.stderr
              filter: { traceable_filter: {} }
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog
                log_format: { json_format: { a: { b: "%REQ%" } } }
            - name: envoy.access_loggers.file
              filter: { response_flag_filter: { flags: [XX] } }
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
            - name: custom
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig
            """);
        var errors = ProxyHarness.Validate(yaml).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains($"{hcm}.access_log[0].typed_config.log_format.text_format_source: unsupported command operator '%NOT_AN_OPERATOR%' (supported: see docs/compatibility.md)", errors);
        Assert.Contains($"{hcm}.access_log[1].filter.traceable_filter: field 'traceable_filter' of envoy.config.accesslog.v3.AccessLogFilter is not supported by csenvoy (see docs/compatibility.md)", errors);
        Assert.Contains($"{hcm}.access_log[1].typed_config.log_format.json_format.a.b: REQ requires parameters", errors);
        Assert.Contains(errors, e => e.StartsWith($"{hcm}.access_log[2].filter.response_flag_filter.flags[0]: unknown response flag 'XX'", StringComparison.Ordinal));
        Assert.Contains($"{hcm}.access_log[2].typed_config.path: path is required", errors);
        Assert.Contains($"{hcm}.access_log[3]: unsupported access logger 'custom' (type 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig')", errors);
    }

    [Fact]
    public async Task StdoutAndStderrLoggers_Load_AndServe()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var extra = """
            access_log:
            - name: envoy.access_loggers.stdout
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
            - name: envoy.access_loggers.stderr
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog
                log_format: { json_format: { code: "%RESPONSE_CODE%" } }
            """;
        var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address), extra));
        var stats = proxy.Server.Stats;
        using (var client = proxy.Client("main"))
        {
            using var r = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        await proxy.DisposeAsync();
        Assert.Equal(2, stats.Counter("filesystem.write_buffered").Value);
        Assert.Equal(0, stats.Counter("filesystem.write_failed").Value);
    }

    /// <summary>%UPSTREAM_LOCAL_ADDRESS% names the pooled upstream connection that carried each request: eight
    /// concurrent requests hold eight HTTP/1.1 connections open, the backend echoes the peer address it saw, and every
    /// log line's address is the one the backend saw for that request. /clusters counts the host's open connections.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UpstreamLocalAddress_IsTheConnectionThatCarriedTheRequest(bool http2)
    {
        const int concurrent = 8;
        var arrived = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            ctx.Response.Headers["x-peer"] = $"{ctx.Connection.RemoteIpAddress}:{ctx.Connection.RemotePort}";
            // HTTP/1.1: hold every request until all have arrived, so each needs its own upstream connection.
            if (!http2 && Interlocked.Increment(ref arrived) == concurrent) all.TrySetResult();
            if (!http2) await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }, http2 ? Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2 : Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
        var peers = new Dictionary<string, string>();
        var cxActive = "";
        var lines = await RunAsync(FileLog(TextFormat("%REQ(X-N)% %UPSTREAM_LOCAL_ADDRESS% %UPSTREAM_HOST%\n")), Routes(),
            Yaml.Cluster("backend", http2, backend.Address), async (client, proxy) =>
            {
                var responses = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(async n =>
                {
                    using var r = await HttpTestUtil.GetAsync(client, "/", null, ("x-n", n.ToString()));
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                    return (n, Peer: r.Headers.GetValues("x-peer").Single());
                }));
                foreach (var (n, peer) in responses) peers[n.ToString()] = peer;
                using var admin = proxy.AdminClient();
                cxActive = (await admin.GetStringAsync("/clusters")).Split('\n').Single(l => l.StartsWith("backend::" + backend.Address + "::cx_active::", StringComparison.Ordinal));
            });

        Assert.Equal(concurrent, lines.Length);
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            Assert.Equal(backend.Address, parts[2]);
            Assert.Equal(peers[parts[0]], parts[1]);
        }
        Assert.Equal(http2 ? 1 : concurrent, peers.Values.Distinct().Count());
        Assert.Equal($"backend::{backend.Address}::cx_active::{(http2 ? 1 : concurrent)}", cxActive);
    }
}
