using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using CSharpEnvoy.LoadGenerator;

// Constant-rate (open-loop) HTTP/1.1 load, the fixed-rate case of bench/load/run.sh:
//   CSharpEnvoy.LoadGenerator http://127.0.0.1:8080/ --rate 1000 --connections 16 --duration 20 [--warmup 3]
//       [--timeout 10] [--cpu-pid <pid>] [--header 'name: value']...
//   CSharpEnvoy.LoadGenerator --self-check
// Prints one JSON object on one line (latencies in microseconds); a summary goes to stderr. Linux only (ppoll).
if (args is ["--self-check"])
{
    return SelfCheck.Run();
}
if (args.Length == 0 || args[0].StartsWith('-') || !Uri.TryCreate(args[0], UriKind.Absolute, out var url) || url.Scheme != "http")
{
    Console.Error.WriteLine("usage: CSharpEnvoy.LoadGenerator http://host:port/path [--rate N] [--connections N] [--duration S] [--warmup S] [--timeout S] [--cpu-pid PID] [--header 'name: value']... | --self-check");
    return 2;
}
double rate = 1000, duration = 20, warmup = 0, timeout = 10;
var connections = 16;
var cpuPid = 0;
var headers = new StringBuilder();
for (var i = 1; i < args.Length; i++)
{
    var value = i + 1 < args.Length ? args[i + 1] : "";
    switch (args[i])
    {
        case "--rate": rate = double.Parse(value, CultureInfo.InvariantCulture); break;
        case "--connections": connections = int.Parse(value, CultureInfo.InvariantCulture); break;
        case "--duration": duration = double.Parse(value, CultureInfo.InvariantCulture); break;
        case "--warmup": warmup = double.Parse(value, CultureInfo.InvariantCulture); break;
        case "--timeout": timeout = double.Parse(value, CultureInfo.InvariantCulture); break;
        case "--cpu-pid": cpuPid = int.Parse(value, CultureInfo.InvariantCulture); break;
        case "--header": headers.Append(value).Append("\r\n"); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
    i++;
}
if (rate <= 0 || duration <= 0 || connections <= 0 || timeout <= 0 || warmup < 0)
{
    Console.Error.WriteLine("--rate, --duration, --connections and --timeout must be positive");
    return 2;
}
if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine("Linux only: the scheduler waits with ppoll(2)");
    return 2;
}
if (cpuPid > 0 && !ProcessCpu.Exists(cpuPid))
{
    Console.Error.WriteLine($"--cpu-pid {cpuPid}: no such process");
    return 2;
}

var address = IPAddress.TryParse(url.Host, out var ip) ? ip : Dns.GetHostAddresses(url.Host)[0];
var request = Encoding.ASCII.GetBytes($"GET {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\n{headers}\r\n");
using var runner = new ConstantRateRunner(new IPEndPoint(address, url.Port), request, connections, TimeSpan.FromSeconds(timeout));
LinuxPoll.DisableTimerSlack();
try
{
    runner.Open();
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
if (warmup > 0)
{
    runner.Run(rate, warmup); // the generator's own JIT tiers up here, and the target's connections are warm
}

var self = Process.GetCurrentProcess();
var selfCpu0 = self.TotalProcessorTime;
var targetCpu0 = cpuPid > 0 ? ProcessCpu.Ticks(cpuPid) : 0;
var gcs0 = GC.CollectionCount(0);
var result = runner.Run(rate, duration);
self.Refresh();
var selfCpu = self.TotalProcessorTime - selfCpu0;
var gcs = GC.CollectionCount(0) - gcs0;
var targetTicks = cpuPid > 0 ? ProcessCpu.Ticks(cpuPid) - targetCpu0 : 0;

var finished = Math.Max(1, result.Completed);
using (var json = new Utf8JsonWriter(Console.OpenStandardOutput()))
{
    json.WriteStartObject();
    json.WriteString("url", url.ToString());
    json.WriteNumber("rate", rate);
    json.WriteNumber("connections", connections);
    json.WriteNumber("duration_s", duration);
    json.WriteNumber("scheduled", result.Scheduled);
    json.WriteNumber("completed", result.Completed);
    json.WriteNumber("errors", result.Errors);
    json.WriteNumber("timeouts", result.Timeouts);
    json.WriteNumber("unsent", result.Unsent);
    json.WriteNumber("non_2xx", result.Non2xx);
    json.WriteNumber("reconnects", result.Reconnects);
    json.WriteNumber("achieved_rps", Math.Round(result.AchievedRate, 1));
    WriteLatencies(json, "latency_us", result.FromDue);
    WriteLatencies(json, "service_us", result.FromSend);
    WriteLatencies(json, "send_lag_us", result.SendLag);
    json.WriteNumber("generator_cpu_us_per_request", Math.Round(selfCpu.TotalMicroseconds / finished, 1));
    json.WriteNumber("generator_gcs", gcs); // 0 expected: the loop does not allocate
    if (cpuPid > 0)
    {
        json.WriteNumber("target_cpu_us_per_request", Math.Round(targetTicks * 1e6 / LinuxPoll.ClockTicksPerSecond() / finished, 1));
    }
    json.WriteEndObject();
}
Console.WriteLine();
Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{result.Completed}/{result.Scheduled} responses ({result.Errors} errors, {result.Non2xx} non-2xx) at {result.AchievedRate:F1}/s; " +
    $"from due p50 {result.FromDue.ValueAtPercentile(50)} p99 {result.FromDue.ValueAtPercentile(99)} p99.9 {result.FromDue.ValueAtPercentile(99.9)} max {result.FromDue.Max} µs; " +
    $"from send p99 {result.FromSend.ValueAtPercentile(99)} µs; generator {selfCpu.TotalMicroseconds / finished:F1} µs CPU/request"));
return result.Errors == 0 && result.Unsent == 0 ? 0 : 1;

static void WriteLatencies(Utf8JsonWriter json, string name, LatencyHistogram h)
{
    json.WriteStartObject(name);
    json.WriteNumber("p50", h.ValueAtPercentile(50));
    json.WriteNumber("p90", h.ValueAtPercentile(90));
    json.WriteNumber("p99", h.ValueAtPercentile(99));
    json.WriteNumber("p999", h.ValueAtPercentile(99.9));
    json.WriteNumber("max", h.Max);
    json.WriteNumber("mean", Math.Round(h.Mean, 1));
    json.WriteEndObject();
}
