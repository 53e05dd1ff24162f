using System.IO.Compression;
using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.compressor</c>: which responses are compressed (accept-encoding negotiation, length,
/// content type, etag, cache-control, status), the headers that change, brotli and gzip, several compressor filters,
/// per-route overrides, request compression, streaming, and Envoy's stats.</summary>
public sealed class CompressorTests
{
    private const string CompressorType = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor";
    private const string PerRouteType = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";
    private const string Gzip = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip";
    private const string Brotli = "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli";
    private const string Zstd = "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd";

    internal static readonly string Json = "{\"items\":[" + string.Join(',', Enumerable.Range(0, 200).Select(i => $"{{\"id\":{i},\"name\":\"item {i}\"}}")) + "]}";

    internal static string Filter(string name, string library, string libraryType, string config = "") =>
        $"- name: {name}\n  typed_config:\n    \"@type\": {CompressorType}\n" + Yaml.Indent(config, 4) +
        $"\n    compressor_library:\n      name: {library}\n      typed_config:\n        \"@type\": {libraryType}\n";

    private const string ResponseConfig = """
        response_direction_config:
          common_config:
            min_content_length: 100
            content_type: [application/json]
          disable_on_etag_header: false
        """;

    private static string Bootstrap(string backend, string filters, string routeExtra = "") => FilterYaml.Bootstrap(filters,
        $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/plain" }
            route: { cluster: backend }
        {{Yaml.Indent(routeExtra, 2)}}
          - match: { prefix: "/" }
            route: { cluster: backend }
        """,
        Yaml.Cluster("backend", backend), logPath: null);

    /// <summary>A backend answering with the body, content type and extra headers the request's path names.</summary>
    private static Task<TestBackend> BackendAsync() => TestBackend.StartAsync(async ctx =>
    {
        var q = ctx.Request.Query;
        var body = q.ContainsKey("small") ? "{\"a\":1}" : Json;
        ctx.Response.ContentType = q["type"].FirstOrDefault() ?? "application/json; charset=utf-8";
        if (q["etag"].FirstOrDefault() is { } etag) ctx.Response.Headers.ETag = etag;
        if (q.ContainsKey("notransform")) ctx.Response.Headers.CacheControl = "no-transform";
        if (q.ContainsKey("encoded")) ctx.Response.Headers.ContentEncoding = "identity";
        if (q["status"].FirstOrDefault() is { } status) ctx.Response.StatusCode = int.Parse(status);
        if (q.ContainsKey("vary")) ctx.Response.Headers.Vary = "Origin";
        if (q.ContainsKey("chunked"))
        {
            await ctx.Response.WriteAsync(body[..100]);
            await ctx.Response.WriteAsync(body[100..]);
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(body);
        ctx.Response.ContentLength = bytes.Length;
        await ctx.Response.Body.WriteAsync(bytes);
    });

    private sealed record Reply(HttpStatusCode Status, string? Encoding, long? Length, string? Vary, string? Etag, byte[] Raw)
    {
        public string Decoded => System.Text.Encoding.UTF8.GetString(Encoding switch
        {
            "gzip" => Decode(new GZipStream(new MemoryStream(Raw), CompressionMode.Decompress)),
            "br" => Decode(new BrotliStream(new MemoryStream(Raw), CompressionMode.Decompress)),
            "zstd" => Decode(new ZstdSharp.DecompressionStream(new MemoryStream(Raw))),
            _ => Raw,
        });

        private static byte[] Decode(Stream s)
        {
            using var output = new MemoryStream();
            s.CopyTo(output);
            return output.ToArray();
        }
    }

    private static async Task<Reply> GetAsync(HttpClient client, string path, string? acceptEncoding = "gzip", HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        if (acceptEncoding is not null) request.Headers.TryAddWithoutValidation("Accept-Encoding", acceptEncoding);
        using var r = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var length = r.Content.Headers.ContentLength; // before reading: a buffered body gets a computed one
        var raw = await r.Content.ReadAsByteArrayAsync();
        return new Reply(r.StatusCode, r.Content.Headers.ContentEncoding.FirstOrDefault(), length,
            r.Headers.Vary.Count == 0 ? null : string.Join(", ", r.Headers.Vary), r.Headers.ETag?.ToString(), raw);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AcceptedJson_IsGzipped_WithoutContentLength_AndCounted(bool http2)
    {
        await using var backend = await BackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter("envoy.filters.http.compressor", "text", Gzip, ResponseConfig)));
        using var client = proxy.Client("main", http2);

        var reply = await GetAsync(client, "/?etag=%22v1%22");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("gzip", reply.Encoding);
        Assert.Null(reply.Length);
        Assert.Equal("Accept-Encoding", reply.Vary);
        Assert.Null(reply.Etag); // a strong etag no longer describes the bytes
        Assert.Equal(Json, reply.Decoded);
        Assert.True(reply.Raw.Length < Json.Length / 2, $"compressed to {reply.Raw.Length} of {Json.Length} bytes");

        // A chunked response (no content-length) qualifies too; a weak etag stays.
        var chunked = await GetAsync(client, "/?chunked&etag=W/%22v1%22");
        Assert.Equal("gzip", chunked.Encoding);
        Assert.Equal("W/\"v1\"", chunked.Etag);
        Assert.Equal(Json, chunked.Decoded);

        const string p = "http.ingress_http.compressor.text.gzip.";
        Assert.Equal(2, await proxy.StatAsync(p + "response.compressed"));
        Assert.Equal(2, await proxy.StatAsync(p + "header_compressor_used"));
        Assert.Equal(2L * Encoding.UTF8.GetByteCount(Json), await proxy.StatAsync(p + "response.total_uncompressed_bytes"));
        Assert.Equal(reply.Raw.Length + chunked.Raw.Length, await proxy.StatAsync(p + "response.total_compressed_bytes"));
        Assert.Equal(0, await proxy.StatAsync(p + "response.not_compressed"));
        // Request compression is not configured: every request counts as not compressed, as in Envoy.
        Assert.Equal(2, await proxy.StatAsync(p + "request.not_compressed"));
    }

    [Fact]
    public async Task ResponsesThatDoNotQualify_PassThrough_WithTheReasonCounted()
    {
        await using var backend = await BackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter("envoy.filters.http.compressor", "text", Gzip, """
            response_direction_config:
              common_config:
                min_content_length: 100
                content_type: [application/json]
              disable_on_etag_header: true
              uncompressible_response_codes: [206]
            """)));
        using var client = proxy.Client("main");

        async Task AssertPlain(string path, string? accept, string? vary)
        {
            var r = await GetAsync(client, path, accept);
            Assert.Equal(path.Contains("encoded") ? "identity" : null, r.Encoding);
            Assert.Equal(vary, r.Vary);
            if (!path.Contains("small")) Assert.Equal(Json, r.Decoded);
        }

        const string p = "http.ingress_http.compressor.text.gzip.";
        await AssertPlain("/", accept: null, vary: "Accept-Encoding");
        Assert.Equal(1, await proxy.StatAsync(p + "no_accept_header"));
        await AssertPlain("/", accept: "identity", vary: "Accept-Encoding");
        Assert.Equal(1, await proxy.StatAsync(p + "header_identity"));
        await AssertPlain("/", accept: "gzip;q=0, *", vary: "Accept-Encoding");
        await AssertPlain("/", accept: "br", vary: "Accept-Encoding");
        Assert.Equal(2, await proxy.StatAsync(p + "header_not_valid"));
        await AssertPlain("/?small", accept: "gzip", vary: null);
        Assert.Equal(1, await proxy.StatAsync(p + "response.content_length_too_small"));
        await AssertPlain("/?type=text/csv", accept: "gzip", vary: null);
        await AssertPlain("/?notransform", accept: "gzip", vary: null);
        await AssertPlain("/?encoded", accept: "gzip", vary: null);
        await AssertPlain("/?status=206", accept: "gzip", vary: null);
        await AssertPlain("/?etag=W/%22v%22", accept: "gzip", vary: null);
        Assert.Equal(1, await proxy.StatAsync(p + "not_compressed_etag"));
        // HEAD: no body to compress, but the response would have been compressible.
        var head = await GetAsync(client, "/", "gzip", HttpMethod.Head);
        Assert.Null(head.Encoding);
        Assert.Equal("Accept-Encoding", head.Vary);

        Assert.Equal(11, await proxy.StatAsync(p + "response.not_compressed"));
        Assert.Equal(0, await proxy.StatAsync(p + "response.compressed"));

        // The wildcard accepts the filter's coding; an existing vary is kept.
        var wildcard = await GetAsync(client, "/?vary", "*");
        Assert.Equal("gzip", wildcard.Encoding);
        Assert.Equal("Origin, Accept-Encoding", wildcard.Vary);
        Assert.Equal(1, await proxy.StatAsync(p + "header_wildcard"));
    }

    [Fact]
    public async Task GzipAndBrotliFilters_NegotiateOneCoding_ByQValue_ThenChainOrder_OrChooseFirst()
    {
        await using var backend = await BackendAsync();
        var filters = Filter("gzip", "g", Gzip, ResponseConfig) + Filter("brotli", "b", Brotli, ResponseConfig + "\nchoose_first: true");
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, filters));
        using var client = proxy.Client("main");

        var byQ = await GetAsync(client, "/", "gzip;q=0.5, br;q=0.8");
        Assert.Equal("br", byQ.Encoding);
        Assert.Equal(Json, byQ.Decoded);
        // Equal q: brotli has choose_first.
        Assert.Equal("br", (await GetAsync(client, "/", "gzip, br")).Encoding);
        Assert.Equal("gzip", (await GetAsync(client, "/", "gzip, br;q=0.9")).Encoding);
        var gz = await GetAsync(client, "/", "GZIP, gzip;q=0.3");
        Assert.Equal("gzip", gz.Encoding);
        Assert.Equal(Json, gz.Decoded);

        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.compressor.b.brotli.header_compressor_used"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.compressor.b.brotli.header_compressor_overshadowed"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.compressor.g.gzip.header_compressor_used"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.compressor.g.gzip.response.compressed"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.compressor.b.brotli.response.compressed"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Zstd_WithLevelStrategyAndChecksum_IsNegotiatedAndDecodable(bool http2)
    {
        await using var backend = await BackendAsync();
        var filters = Filter("zstd", "z", Zstd, ResponseConfig).TrimEnd() + "\n        compression_level: 10\n        strategy: BTOPT\n        enable_checksum: true\n"
            + Filter("gzip", "g", Gzip, ResponseConfig);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, filters));
        using var client = proxy.Client("main", http2);

        var reply = await GetAsync(client, "/", "gzip;q=0.5, zstd");
        Assert.Equal("zstd", reply.Encoding);
        Assert.Equal(Json, reply.Decoded);
        // The checksum flag is in the frame header descriptor (bit 2).
        Assert.Equal(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }, reply.Raw[..4]);
        Assert.NotEqual(0, reply.Raw[4] & 0x04);
        Assert.Equal("gzip", (await GetAsync(client, "/", "gzip, zstd;q=0.1")).Encoding);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.compressor.z.zstd.response.compressed"));
    }

    [Fact]
    public async Task PerRoute_DisablesTheFilter_OrForcesItOn_AndRemovesAcceptEncoding()
    {
        string? seenAcceptEncoding = "unset";
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            seenAcceptEncoding = ctx.Request.Headers.AcceptEncoding.Count == 0 ? null : ctx.Request.Headers.AcceptEncoding.ToString();
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(Json);
        });
        var filter = Filter("envoy.filters.http.compressor", "text", Gzip, """
            response_direction_config:
              common_config:
                enabled: { default_value: false, runtime_key: compression_on }
            """);
        var routes = $$"""
              typed_per_filter_config:
                envoy.filters.http.compressor:
                  "@type": {{PerRouteType}}
                  disabled: true
            - match: { prefix: "/forced" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.compressor:
                  "@type": {{PerRouteType}}
                  overrides:
                    response_direction_config: { remove_accept_encoding_header: true }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, filter, routes));
        using var client = proxy.Client("main");

        // Off filter-wide, off on /plain, forced on /forced (where the upstream no longer sees accept-encoding).
        Assert.Null((await GetAsync(client, "/other")).Encoding);
        Assert.Equal("gzip", seenAcceptEncoding);
        Assert.Null((await GetAsync(client, "/plain")).Encoding);
        var forced = await GetAsync(client, "/forced");
        Assert.Equal("gzip", forced.Encoding);
        Assert.Equal(Json, forced.Decoded);
        Assert.Null(seenAcceptEncoding);
    }

    [Fact]
    public async Task RequestBodies_AreCompressed_WithRequestDirectionConfig()
    {
        string? seenEncoding = null;
        byte[] seenBody = [];
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            seenEncoding = ctx.Request.Headers.ContentEncoding.ToString();
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            seenBody = ms.ToArray();
            await ctx.Response.WriteAsync("ok");
        });
        var filter = Filter("envoy.filters.http.compressor", "up", Gzip, """
            request_direction_config:
              common_config:
                content_type: [application/json]
            """);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, filter));
        using var client = proxy.Client("main");

        using (var r = await client.PostAsync("/", new StringContent(Json, Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("gzip", seenEncoding);
        Assert.Equal(Json, new Reply(HttpStatusCode.OK, "gzip", null, null, null, seenBody).Decoded);
        var compressedLength = seenBody.Length;

        using (var r = await client.PostAsync("/", new StringContent(Json, Encoding.UTF8, "text/csv")))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("", seenEncoding);
        Assert.Equal(Json, Encoding.UTF8.GetString(seenBody));

        const string p = "http.ingress_http.compressor.up.gzip.request.";
        Assert.Equal(1, await proxy.StatAsync(p + "compressed"));
        Assert.Equal(1, await proxy.StatAsync(p + "not_compressed"));
        Assert.Equal(Encoding.UTF8.GetByteCount(Json), await proxy.StatAsync(p + "total_uncompressed_bytes"));
        Assert.Equal(compressedLength, await proxy.StatAsync(p + "total_compressed_bytes"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StreamedResponse_IsFlushedPerWrite_SoTheClientDecodesEachPieceAsItArrives(bool http2)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync("first piece of a long stream\n");
            await ctx.Response.Body.FlushAsync();
            await release.Task;
            await ctx.Response.WriteAsync("second piece, after the client saw the first\n");
        });
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter("envoy.filters.http.compressor", "text", Gzip)));
        using var client = proxy.Client("main", http2);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("gzip", response.Content.Headers.ContentEncoding.Single());
        using var reader = new StreamReader(new GZipStream(await response.Content.ReadAsStreamAsync(), CompressionMode.Decompress));
        Assert.Equal("first piece of a long stream", await reader.ReadLineAsync());
        release.SetResult();
        Assert.Equal("second piece, after the client saw the first", await reader.ReadLineAsync());
        Assert.Null(await reader.ReadLineAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UpstreamResetMidBody_ResetsTheClient_InsteadOfEndingTheCompressedBody(bool http2)
    {
        await using var upstream = Router.RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n" + Json[..2000]);
        });
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(upstream.Address, Filter("envoy.filters.http.compressor", "text", Gzip)));
        using var client = proxy.Client("main", http2);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("gzip", response.Content.Headers.ContentEncoding.Single());
        var stream = await response.Content.ReadAsStreamAsync();
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            await using var gz = new GZipStream(stream, CompressionMode.Decompress);
            await gz.CopyToAsync(Stream.Null);
        });
    }

    [Fact]
    public async Task HedgedRoute_HeadAndNoContent_AreLeftAsTheyAre_AndAnEmptyBodyIsAWholeGzipStream()
    {
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            ctx.Response.ContentType = "application/json";
            if (ctx.Request.Path == "/none") { ctx.Response.StatusCode = 204; return; }
            if (ctx.Request.Path == "/empty") { await ctx.Response.Body.FlushAsync(); return; }
            ctx.Response.ContentLength = Encoding.UTF8.GetByteCount(Json);
            if (!HttpMethods.IsHead(ctx.Request.Method)) await ctx.Response.WriteAsync(Json);
        });
        var routes = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: backend
                  timeout: 20s
                  hedge_policy: { hedge_on_per_try_timeout: true }
                  retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 5s }
            """;
        await using var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(Filter("envoy.filters.http.compressor", "text", Gzip, "response_direction_config: { common_config: { min_content_length: 0 } }"),
            routes, Yaml.Cluster("backend", backend.Address), logPath: null));
        using var client = proxy.Client("main");

        var head = await GetAsync(client, "/", "gzip", HttpMethod.Head);
        Assert.Null(head.Encoding);
        Assert.Equal(Encoding.UTF8.GetByteCount(Json), head.Length);
        Assert.Equal("Accept-Encoding", head.Vary);
        var none = await GetAsync(client, "/none", "gzip");
        Assert.Equal(HttpStatusCode.NoContent, none.Status);
        Assert.Null(none.Encoding);
        var get = await GetAsync(client, "/", "gzip");
        Assert.Equal("gzip", get.Encoding);
        Assert.Equal(Json, get.Decoded);
    }

    [Fact]
    public async Task LocalReplies_PassThroughTheCompressor()
    {
        await using var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(Filter("envoy.filters.http.compressor", "text", Gzip),
            $$"""
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: {{System.Text.Json.JsonSerializer.Serialize(Json[..3000])}} } }
                response_headers_to_add: [{ header: { key: content-type, value: application/json } }]
            """, Yaml.Cluster("unused", "127.0.0.1:1"), logPath: null));
        using var client = proxy.Client("main");
        var reply = await GetAsync(client, "/");
        Assert.Equal("gzip", reply.Encoding);
        Assert.Equal(Json[..3000], reply.Decoded);
    }

    [Theory]
    [InlineData("window_bits: 20", "compressor_library.typed_config.window_bits: 20 is out of range (9..15)")]
    [InlineData("memory_level: 0", "compressor_library.typed_config.memory_level: 0 is out of range (1..9)")]
    [InlineData("chunk_size: 100", "compressor_library.typed_config.chunk_size: 100 is out of range (4096..65536)")]
    public void BadGzipSettings_AreRefused_WithTheirPath(string setting, string error)
    {
        var filter = $"- name: c\n  typed_config:\n    \"@type\": {CompressorType}\n    compressor_library:\n      name: x\n      typed_config:\n        \"@type\": {Gzip}\n        {setting}\n";
        var errors = ProxyHarness.Validate(Bootstrap("127.0.0.1:1", filter)).Errors.Select(e => e.ToString()).ToArray();
        Assert.Contains(errors, e => e.EndsWith(error, StringComparison.Ordinal));
    }

    [Fact]
    public void UnknownLibrary_StatusHeader_AndAnEmptyPerRoute_AreRefused()
    {
        var filter = $"- name: c\n  typed_config:\n    \"@type\": {CompressorType}\n    response_direction_config: {{ status_header_enabled: true }}\n" +
            "    compressor_library:\n      name: z\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.compression.qatzip.compressor.v3alpha.Qatzip\n";
        var routes = $"  typed_per_filter_config:\n    c:\n      \"@type\": {PerRouteType}\n";
        var errors = ProxyHarness.Validate(Bootstrap("127.0.0.1:1", filter, routes)).Errors.Select(e => e.ToString()).ToArray();
        Assert.Contains(errors, e => e.Contains("compressor_library.typed_config: unsupported compressor library 'z' (type 'type.googleapis.com/envoy.extensions.compression.qatzip.compressor.v3alpha.Qatzip')"));
        Assert.Contains(errors, e => e.Contains("response_direction_config.status_header_enabled: field 'status_header_enabled'"));
        Assert.Contains(errors, e => e.Contains("typed_per_filter_config[\"c\"]: one of disabled or overrides is required"));
    }
}
