using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using CSharpEnvoy.IntegrationTests.Grpc;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Google.Protobuf;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.grpc_web</c>: gRPC-Web calls (binary and base64 text, over HTTP/1.1 and HTTP/2)
/// reach a real h2c gRPC server; replies carry the trailers as the body's last frame; non-gRPC replies become
/// grpc-status/grpc-message headers.</summary>
public sealed class GrpcWebTests
{
    private const string Filter = "- name: envoy.filters.http.grpc_web\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb\n";

    private static string Bootstrap(string backend) => FilterYaml.Bootstrap(Filter, """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/nowhere" }
            direct_response: { status: 404, body: { inline_string: "no such service" } }
          - match: { prefix: "/" }
            route: { cluster: grpc_backend }
        """, Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, backend), logPath: null);

    private static byte[] Frame(IMessage message) => GrpcTestKit.Frame(message);

    /// <summary>The frames of a gRPC-Web body: (flags, payload) in order.</summary>
    private static List<(byte Flags, byte[] Payload)> Frames(byte[] body)
    {
        var frames = new List<(byte, byte[])>();
        for (var i = 0; i < body.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(i + 1, 4));
            frames.Add((body[i], body.AsSpan(i + 5, length).ToArray()));
            i += 5 + length;
        }
        return frames;
    }

    private static async Task<(HttpResponseMessage Response, byte[] Body)> CallAsync(HttpClient client, string path, byte[] body, string contentType, string? accept = null, bool http2 = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        if (http2) request.Version = HttpVersion.Version20;
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
        request.Headers.TryAddWithoutValidation("x-grpc-web", "1");
        var response = await client.SendAsync(request);
        return (response, await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BinaryCall_GetsTheReplyFrame_ThenTheTrailersFrame(bool http2)
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address));
        using var client = proxy.Client("main", http2);

        var (response, body) = await CallAsync(client, "/csenvoy.test.Echo/Unary", Frame(new EchoRequest { Text = "from the browser" }), "application/grpc-web+proto", http2: http2);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc-web+proto", response.Content.Headers.ContentType!.MediaType);
        var frames = Frames(body);
        Assert.Equal(2, frames.Count);
        Assert.Equal(0, frames[0].Flags);
        Assert.Equal("from the browser", EchoReply.Parser.ParseFrom(frames[0].Payload).Text);
        Assert.Equal(0x80, frames[1].Flags);
        Assert.Contains("grpc-status:0\r\n", Encoding.ASCII.GetString(frames[1].Payload));
        // The trailers travel in the body, not as HTTP trailers.
        Assert.Empty(response.TrailingHeaders);
    }

    [Fact]
    public async Task TextCall_IsBase64BothWays_FrameByFrame()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address));
        using var client = proxy.Client("main");

        var request = Encoding.ASCII.GetBytes(Convert.ToBase64String(Frame(new EchoRequest { Text = "as text" })));
        var (response, body) = await CallAsync(client, "/csenvoy.test.Echo/Unary", request, "application/grpc-web-text", accept: "application/grpc-web-text");
        Assert.Equal("application/grpc-web-text+proto", response.Content.Headers.ContentType!.MediaType);
        // Each frame is encoded on its own: decode the padded groups one after the other.
        var text = Encoding.ASCII.GetString(body);
        var decoded = new List<byte>();
        foreach (var chunk in SplitPadded(text)) decoded.AddRange(Convert.FromBase64String(chunk));
        var frames = Frames(decoded.ToArray());
        Assert.Equal("as text", EchoReply.Parser.ParseFrom(frames[0].Payload).Text);
        Assert.Contains("grpc-status:0", Encoding.ASCII.GetString(frames[^1].Payload));

        // Bad base64 is refused with Envoy's 400 (the request is gRPC upstream-side, so the reply is a gRPC status).
        var (bad, _) = await CallAsync(client, "/csenvoy.test.Echo/Unary", Encoding.ASCII.GetBytes("!!!notbase64"), "application/grpc-web-text");
        Assert.Equal("13", bad.Headers.GetValues("grpc-status").Single()); // 400 → INTERNAL
        Assert.Equal("Bad gRPC-web request, invalid base64 data.", bad.Headers.GetValues("grpc-message").Single());
    }

    private static IEnumerable<string> SplitPadded(string text)
    {
        var start = 0;
        for (var i = 0; i < text.Length; i += 4)
        {
            if (text[i + 3] != '=') continue;
            yield return text[start..(i + 4)];
            start = i + 4;
        }
        if (start < text.Length) yield return text[start..];
    }

    [Fact]
    public async Task Failures_ArriveAsGrpcStatus_ForGrpcAndForPlainHttpReplies()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address));
        using var client = proxy.Client("main");

        // A gRPC error (trailers-only): the status is in the headers.
        var (failed, failedBody) = await CallAsync(client, "/csenvoy.test.Echo/Unary", Frame(new EchoRequest { FailCode = 5, FailMessage = "not here" }), "application/grpc-web+proto");
        Assert.Equal(HttpStatusCode.OK, failed.StatusCode);
        Assert.Equal("5", failed.Headers.GetValues("grpc-status").Single());
        Assert.Equal("not here", failed.Headers.GetValues("grpc-message").Single());
        Assert.Empty(failedBody);

        // A plain HTTP reply: its body becomes grpc-message and its status grpc-status (404 → UNIMPLEMENTED).
        var (plain, plainBody) = await CallAsync(client, "/nowhere", Frame(new EchoRequest()), "application/grpc-web+proto");
        Assert.Equal("12", plain.Headers.GetValues("grpc-status").Single());
        Assert.Equal("no such service", plain.Headers.GetValues("grpc-message").Single());
        Assert.Empty(plainBody);
        Assert.Equal("application/grpc-web+proto", plain.Content.Headers.ContentType!.MediaType);
    }
}
