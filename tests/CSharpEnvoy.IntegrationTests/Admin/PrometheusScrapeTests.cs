using System.Diagnostics;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>/stats/prometheus read by Prometheus' own parser (<c>promtool check metrics</c>, Debian package
/// <c>prometheus</c>) and by the Python client's parser (<c>python3-prometheus-client</c>): both accept it, and the
/// Python parser reads exactly the series and values our strict reader reads, escaped label values included.</summary>
public sealed class PrometheusScrapeTests
{
    private const string Promtool = "/usr/bin/promtool";
    private const string DebianPython = "/usr/bin/python3";

    // Label values with a quote and a backslash (a fixed tag) must survive the exposition's escaping.
    private const string Tag = "a\\\"b\\\\c";   // YAML double-quoted: a"b\c

    private static async Task<string> ScrapeAsync()
    {
        await using var backend = await TestBackend.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = ctx.Request.Path.StartsWithSegments("/fail") ? 503 : 200;
            return Task.CompletedTask;
        });
        const string routes = """
            - name: api
              domains: ["*"]
              routes:
              - match: { prefix: "/canary" }
                route: { cluster: svc_v1-canary }
              - match: { prefix: "/" }
                route: { cluster: backend }
              virtual_clusters:
              - name: failing
                headers:
                - { name: ":path", string_match: { prefix: /fail } }
            """;
        var stats = $$"""
            stats_config:
              stats_tags:
              - tag_name: team
                fixed_value: "{{Tag}}"
            """;
        await using var proxy = await ProxyHarness.StartAsync(stats + "\n" + Yaml.Bootstrap(routes,
            Yaml.Cluster("backend", backend.Address) + "\n" + Yaml.Cluster("svc_v1-canary", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 20; i++)
        {
            (await client.GetAsync(i % 5 == 0 ? "/fail" : "/")).Dispose();
            (await client.GetAsync("/canary")).Dispose();
        }
        using var admin = proxy.AdminClient();
        return await admin.GetStringAsync("/stats/prometheus");
    }

    [Fact]
    public async Task Promtool_ParsesTheExposition_WithOnlyEnvoysOwnNamingLints()
    {
        var text = await ScrapeAsync();

        var (exit, stdout, stderr) = await RunAsync(Promtool, ["check", "metrics"], text);

        // Exit 1 is a parse error; 3 is lint findings only. Envoy's exposition has no HELP lines and keeps its own
        // stat names (counters without "_total", gauges such as membership_total), which promtool flags as style.
        var output = stdout + stderr;
        Assert.True(exit is 0 or 3, $"promtool exit {exit}: {output}");
        Assert.DoesNotContain("error", output, StringComparison.OrdinalIgnoreCase);
        var lints = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lints);
        foreach (var lint in lints)
            Assert.Matches(@"^envoy_[a-zA-Z0-9_]+ (no help text|counter metrics should have ""_total"" suffix|non-counter metrics should not have ""_total"" suffix)$", lint);
        // A broken exposition is caught by the same check (the test can fail).
        var (brokenExit, brokenOut, brokenErr) = await RunAsync(Promtool, ["check", "metrics"], text.Replace("envoy_cluster_name=\"backend\"", "envoy_cluster_name=\"back\"end\""));
        Assert.Equal(1, brokenExit);
        Assert.Contains("parsing error", brokenOut + brokenErr);
    }

    [Fact]
    public async Task PythonClientParser_ReadsTheSameSeries_AsTheStrictReader()
    {
        var text = await ScrapeAsync();
        var ours = PrometheusText.Parse(text);

        const string script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for family in text_string_to_metric_families(sys.stdin.read()):
                out.append([family.name, family.type, [[s.name, s.labels, s.value] for s in family.samples]])
            print(json.dumps(out))
            """;
        var (exit, stdout, stderr) = await RunAsync(DebianPython, ["-c", script], text);
        Assert.True(exit == 0, $"python parser exit {exit}: {stderr}");

        // The Python parser yields one family per TYPE line, in order. It keeps counters in OpenMetrics form (the family
        // loses a "_total" suffix, its samples gain one), so a counter's samples are named after our family again.
        var families = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(ours.Families.Count, families.Count);
        var theirs = new Dictionary<string, double>();
        for (var i = 0; i < families.Count; i++)
        {
            var (name, type) = ours.Families[i];
            Assert.Equal(type, families[i][1].GetString());
            Assert.Equal(type == "counter" && name.EndsWith("_total", StringComparison.Ordinal) ? name[..^6] : name, families[i][0].GetString());
            foreach (var s in families[i][2].EnumerateArray())
            {
                var sample = type == "counter" ? name : s[0].GetString()!;
                var labels = s[1].EnumerateObject().Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetString()!)).ToList();
                Assert.True(theirs.TryAdd(new PrometheusText.Sample(sample, labels, 0).CanonicalKey, s[2].GetDouble()), "duplicate " + sample);
            }
        }

        var mine = ours.Samples.ToDictionary(s => s.CanonicalKey, s => s.Value);
        Assert.Equal(mine.Count, theirs.Count);
        foreach (var (series, value) in mine)
        {
            Assert.True(theirs.TryGetValue(series, out var other), "the Python parser lacks " + series);
            Assert.Equal(value, other);
        }
        // The escaped fixed tag reads back unescaped, and the traffic's counts are there.
        Assert.Contains(ours.Samples, s => s.Labels.Contains(new("team", "a\"b\\c")));
        Assert.Equal(4, mine[Key("envoy_cluster_upstream_rq", ("envoy_cluster_name", "backend"), ("envoy_response_code", "503"), ("team", "a\"b\\c"))]);
        Assert.Equal(20, mine[Key("envoy_cluster_upstream_rq_total", ("envoy_cluster_name", "svc_v1-canary"), ("team", "a\"b\\c"))]);
    }

    private static string Key(string name, params (string Name, string Value)[] labels) =>
        new PrometheusText.Sample(name, labels.Select(l => new KeyValuePair<string, string>(l.Name, l.Value)).ToList(), 0).CanonicalKey;

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, string[] args, string stdin)
    {
        Assert.True(File.Exists(file), $"{file} is missing: .ci/run installs it (apt-get install prometheus python3-prometheus-client)");
        var psi = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }
}
