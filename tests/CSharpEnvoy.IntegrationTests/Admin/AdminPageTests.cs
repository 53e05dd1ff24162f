using System.Diagnostics;
using System.Text.RegularExpressions;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>The admin home page rendered by a real headless Chromium while traffic flows through the proxy.</summary>
public sealed class AdminPageTests(ITestOutputHelper output)
{
    private const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/fail" }
            route: { cluster: failing }
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    private static string Chromium()
    {
        foreach (var p in new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" })
            if (File.Exists(p)) return p;
        Assert.Fail("Chromium is needed for the admin page test: apt-get install -y chromium (.ci/run installs it)");
        return "";
    }

    [Fact]
    public async Task AdminPage_RendersRealNumbersWhileTrafficFlows()
    {
        var chromium = Chromium();
        await using var backend = await TestBackend.StartEchoAsync();
        await using var failing = await TestBackend.StartAsync(ctx => { ctx.Response.StatusCode = 503; return Task.CompletedTask; });
        var clusters = Yaml.Cluster("backend", backend.Address) + "\n" + Yaml.Cluster("failing", failing.Address);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, clusters));
        using var client = proxy.Client("main");
        for (var i = 0; i < 25; i++) (await client.GetAsync("/")).Dispose();

        // Keep traffic flowing while the browser renders (bounded: stops with the browser, 60 s at most).
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var traffic = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    (await client.GetAsync(n++ % 5 == 0 ? "/fail" : "/", stop.Token)).Dispose();
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        });

        var profile = Directory.CreateTempSubdirectory("csenvoy-chromium-");
        var artifacts = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts"));
        var screenshot = Path.Combine(artifacts.FullName, "admin-page.png");
        try
        {
            var url = proxy.AdminUri + "";
            // Virtual time lets the page's 1 s refresh run several times without the test waiting in real time;
            // the page's fetches to the admin endpoints are real.
            var dom = await RunChromiumAsync(chromium, profile.FullName, "--dump-dom", url);
            await RunChromiumAsync(chromium, profile.FullName, $"--screenshot={screenshot}", url);
            stop.Cancel();
            await traffic;
            output.WriteLine($"screenshot: {screenshot}");

            var total = long.Parse(Regex.Match(dom, @"id=""total-requests"">([0-9,]+)<").Groups[1].Value.Replace(",", ""));
            Assert.True(total >= 25, $"total requests shown: {total}");
            Assert.Matches(@"id=""rps"">[0-9.,]+<", dom);                        // a computed live rate, not the placeholder
            Assert.Matches(@"id=""latency"">[0-9.,]+ / [0-9.,]+<", dom);
            Assert.Matches(@"<tr data-cluster=""backend""><td>backend</td><td class=""requests"">[1-9][0-9,]*</td>", dom);
            Assert.Contains($"<code>{backend.Address}</code> <span class=\"ok\">healthy</span>", dom);
            Assert.Matches(@"<tr data-cluster=""failing""><td>failing</td><td class=""requests"">[1-9]", dom);
            Assert.Matches(@"id=""chart-rps"" data-points=""[1-9][0-9]*""", dom);
            Assert.Contains("<td><code>prefix /fail</code></td><td>→ failing</td>", dom);
            Assert.Contains("class=\"ok\">LIVE</span>", dom);
            Assert.True(new FileInfo(screenshot).Length > 10_000, "the screenshot is missing or empty");
        }
        finally
        {
            stop.Cancel();
            profile.Delete(recursive: true);
        }
    }

    private static async Task<string> RunChromiumAsync(string chromium, string profile, string action, string url)
    {
        var psi = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile, "--window-size=1400,1100",
            "--virtual-time-budget=6000", action, url,
        }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("chromium did not finish within 60 s: " + await stderr);
        }
        return await stdout;
    }
}
