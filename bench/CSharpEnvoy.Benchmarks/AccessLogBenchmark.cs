using System.Diagnostics;
using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.DataPlane.AccessLog;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.Benchmarks;

/// <summary>Formatting one access log line of a proxied request: Envoy's default format, and a typed JSON format.</summary>
[MemoryDiagnoser]
public class AccessLogBenchmark
{
    private DefaultHttpContext _http = null!;
    private UpstreamRequest _info = null!;
    private AccessLogFormatter _default = null!;
    private AccessLogFormatter _json = null!;
    private readonly StringBuilder _sb = new(1024);

    [GlobalSetup]
    public void Setup()
    {
        _http = new DefaultHttpContext();
        var request = _http.Request;
        request.Method = "GET";
        request.Protocol = "HTTP/1.1";
        request.Host = new HostString("api.example.com");
        request.Path = "/v1/items";
        request.QueryString = new QueryString("?page=2");
        request.Headers["user-agent"] = "curl/8.5.0";
        request.Headers["x-request-id"] = "0f8fad5b-d9cb-469f-a165-70867728950e";
        request.Headers["x-forwarded-for"] = "10.0.0.7";
        _http.Response.StatusCode = 200;
        _http.Response.Headers["x-envoy-upstream-service-time"] = "12";
        _http.Connection.RemoteIpAddress = IPAddress.Parse("10.0.0.7");
        _http.Connection.RemotePort = 51234;
        _info = new UpstreamRequest { BytesSent = 1234, AttemptCount = 1, UpstreamAuthority = "api.example.com", UpstreamPathAndQuery = "/v1/items?page=2" };
        _default = AccessLogFormatter.Default;
        var json = new JsonObjectNode(new[]
        {
            new KeyValuePair<string, JsonFormatNode>("authority", new JsonTemplateNode(FormatParser.Parse("%REQ(:AUTHORITY)%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("bytes_sent", new JsonTemplateNode(FormatParser.Parse("%BYTES_SENT%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("duration", new JsonTemplateNode(FormatParser.Parse("%DURATION%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("method", new JsonTemplateNode(FormatParser.Parse("%REQ(:METHOD)%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("path", new JsonTemplateNode(FormatParser.Parse("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("start_time", new JsonTemplateNode(FormatParser.Parse("%START_TIME%", out _)!)),
            new KeyValuePair<string, JsonFormatNode>("status", new JsonTemplateNode(FormatParser.Parse("%RESPONSE_CODE%", out _)!)),
        });
        _json = new AccessLogFormatter(new AccessLogFormatModel(null, json, false));
    }

    [Benchmark(Baseline = true)]
    public int DefaultFormat()
    {
        _sb.Clear();
        var c = new AccessLogContext(_http, _info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
        _default.Format(_sb, c);
        return _sb.Length;
    }

    [Benchmark]
    public int JsonFormat()
    {
        _sb.Clear();
        var c = new AccessLogContext(_http, _info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
        _json.Format(_sb, c);
        return _sb.Length;
    }
}
