using System.Diagnostics;
using System.Net;
using System.Text;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.DataPlane.AccessLog;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.AccessLog;

/// <summary>The format parser and formatter on their own: START_TIME forms, header fallbacks, truncation, syntax errors.</summary>
public sealed class AccessLogFormatterTests
{
    private static readonly DateTime s_time = new DateTime(2024, 3, 5, 7, 8, 9, DateTimeKind.Utc).AddTicks(1234567);

    [Theory]
    [InlineData("%Y-%m-%dT%H:%M:%E3SZ", "2024-03-05T07:08:09.123Z")]
    [InlineData("%Y/%m/%dT%H:%M:%S%z", "2024/03/05T07:08:09+0000")]
    [InlineData("%s", "1709622489")]
    [InlineData("%s.%3f", "1709622489.123")]
    [InlineData("%s.%6f", "1709622489.123456")]
    [InlineData("%s.%9f", "1709622489.123456700")]
    [InlineData("%f", "123456700")]
    [InlineData("%1f|%E6S|%E*S", "1|09.123456|09.1234567")]
    [InlineData("%d %b %Y %T %Z", "05 Mar 2024 07:08:09 UTC")]
    [InlineData("%j %a %A %B %y %D %F %R %%", "065 Tue Tuesday March 24 03/05/24 2024-03-05 07:08 %")]
    public void StartTime_StrftimeForms(string format, string expected)
    {
        var sb = new StringBuilder();
        new TimeFormat(format).Append(sb, s_time);
        Assert.Equal(expected, sb.ToString());
    }

    [Fact]
    public void StartTime_Default_IsEnvoysIso8601WithMilliseconds()
    {
        var sb = new StringBuilder();
        TimeFormat.Default.Append(sb, s_time);
        Assert.Equal("2024-03-05T07:08:09.123Z", sb.ToString());
    }

    [Theory]
    [InlineData("%REQ(X-A?X-B)%", "a-value")]
    [InlineData("%REQ(X-MISSING?X-B)%", "b-value")]
    [InlineData("%REQ(X-MISSING?X-ALSO-MISSING)%", "-")]
    [InlineData("%REQ(X-A):3%", "a-v")]
    [InlineData("%REQ(X-MISSING?X-B):1%", "b")]
    [InlineData("%REQ(x-a)% %REQ(:METHOD)% %REQ(:AUTHORITY)% %REQ(:PATH)%", "a-value POST example.com /p?q=1")]
    [InlineData("%RESP(X-R)% %RESP(X-NONE)% %TRAILER(GRPC-STATUS)%", "resp-value - -")]
    [InlineData("100%% %PROTOCOL%", "100% HTTP/1.1")]
    [InlineData("%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG% %RESPONSE_CODE_DETAILS%", "503 UH,NC NoHealthyUpstream,NoClusterFound some_details")]
    [InlineData("%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%", "some details")]
    [InlineData("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %UPSTREAM_LOCAL_ADDRESS%", "- - - 0 -")]
    [InlineData("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS%", "10.1.2.3:4567 10.1.2.3 [::1]:10000")]
    [InlineData("%DOWNSTREAM_PEER_URI_SAN% %REQUESTED_SERVER_NAME% %UPSTREAM_TRANSPORT_FAILURE_REASON% %GRPC_STATUS%", "- - - -")]
    [InlineData("%BYTES_RECEIVED% %BYTES_SENT%", "12 34")]
    public void Text_Operators(string format, string expected) => Assert.Equal(expected, Format(format));

    [Fact]
    public void Text_OmitEmptyValues_WritesNothingForMissingValues()
    {
        var model = new AccessLogFormatModel(FormatParser.Parse("[%REQ(X-MISSING)%][%REQ(X-A)%]", out _), null, OmitEmptyValues: true);
        Assert.Equal("[][a-value]", Format(model));
    }

    [Fact]
    public void GrpcStatus_ForGrpcRequests_FromHeadersOrMappedFromHttpStatus()
    {
        Assert.Equal("Unavailable 14 UNAVAILABLE", Format("%GRPC_STATUS% %GRPC_STATUS(NUMBER)% %GRPC_STATUS(SNAKE_STRING)%", grpc: true));
        Assert.Equal("NotFound 5", Format("%GRPC_STATUS% %GRPC_STATUS_NUMBER%", grpc: true, grpcStatus: "5"));
    }

    [Theory]
    [InlineData("%FOO%", "unsupported command operator '%FOO%'")]
    [InlineData("%PROTOCOL(X)%", "PROTOCOL does not take any parameters or length")]
    [InlineData("%REQ%", "REQ requires parameters")]
    [InlineData("%START_TIME:10%", "START_TIME does not allow length to be specified.")]
    [InlineData("%REQ(A?B?C)%", "More than 1 alternative header specified in token: A?B?C")]
    [InlineData("%GRPC_STATUS(NAME)%", "GrpcStatusFormatter only supports CAMEL_STRING, SNAKE_STRING or NUMBER.")]
    [InlineData("abc %req% def", "no valid command operator at position 4")]
    public void Parser_RefusesBadOperators(string format, string message)
    {
        Assert.Null(FormatParser.Parse(format, out var error));
        Assert.Contains(message, error);
    }

    [Fact]
    public void DefaultFormat_IsEnvoysByteForByte()
    {
        Assert.Equal(
            "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
            AccessLogFormatModel.DefaultFormat);
    }

    private static string Format(string format, bool grpc = false, string? grpcStatus = null) =>
        Format(new AccessLogFormatModel(FormatParser.Parse(format, out var error) ?? throw new Xunit.Sdk.XunitException(error), null, false), grpc, grpcStatus);

    private static string Format(AccessLogFormatModel model, bool grpc = false, string? grpcStatus = null)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "POST";
        http.Request.Protocol = "HTTP/1.1";
        http.Request.Host = new HostString("example.com");
        http.Request.Path = "/p";
        http.Request.QueryString = new QueryString("?q=1");
        http.Request.Headers["x-a"] = "a-value";
        http.Request.Headers["x-b"] = "b-value";
        if (grpc) http.Request.ContentType = "application/grpc";
        http.Response.StatusCode = 503;
        http.Response.Headers["x-r"] = "resp-value";
        if (grpcStatus is not null) http.Response.Headers["grpc-status"] = grpcStatus;
        http.Connection.RemoteIpAddress = IPAddress.Parse("10.1.2.3");
        http.Connection.RemotePort = 4567;
        http.Connection.LocalIpAddress = IPAddress.IPv6Loopback;
        http.Connection.LocalPort = 10000;
        var info = new UpstreamRequest
        {
            Flags = ResponseFlags.NoClusterFound | ResponseFlags.NoHealthyUpstream,
            ResponseCodeDetails = "some details",
            BytesReceived = 12,
            BytesSent = 34,
        };
        var c = new AccessLogContext(http, info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
        var sb = new StringBuilder();
        new AccessLogFormatter(model).Format(sb, c);
        return sb.ToString();
    }
}
