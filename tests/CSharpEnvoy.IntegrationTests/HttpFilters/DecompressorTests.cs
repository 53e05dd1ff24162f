using System.IO.Compression;
using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.decompressor</c>: request and response bodies decoded by their first
/// content-encoding, accept-encoding advertised, no-transform respected, corrupt input and compression bombs cut off
/// and counted, and Envoy's stats.</summary>
public sealed class DecompressorTests
{
    private const string DecompressorType = "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor";
    private const string GzipType = "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip";
    private const string BrotliType = "type.googleapis.com/envoy.extensions.compression.brotli.decompressor.v3.Brotli";
    private const string ZstdType = "type.googleapis.com/envoy.extensions.compression.zstd.decompressor.v3.Zstd";

    private static string Filter(string libraryType, string library = "", string config = "") =>
        $"- name: envoy.filters.http.decompressor\n  typed_config:\n    \"@type\": {DecompressorType}\n" + Yaml.Indent(config, 4) +
        $"\n    decompressor_library:\n      name: upload\n      typed_config:\n        \"@type\": {libraryType}\n" + Yaml.Indent(library, 8) + "\n";

    private static string Bootstrap(string backend, string filters) => FilterYaml.Bootstrap(filters,
        """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: backend }
        """,
        Yaml.Cluster("backend", backend), logPath: null);

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal)) gz.Write(data);
        return ms.ToArray();
    }

    private static byte[] Brotli(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var br = new BrotliStream(ms, CompressionLevel.Optimal)) br.Write(data);
        return ms.ToArray();
    }

    private sealed record Seen(string? ContentEncoding, string? ContentLength, string? AcceptEncoding, byte[] Body);

    /// <summary>A backend that records what it received and answers with the request's <c>x-reply</c> coding of the JSON.</summary>
    private static async Task<(TestBackend, Func<Seen?>)> BackendAsync()
    {
        Seen? seen = null;
        var backend = await TestBackend.StartAsync(async ctx =>
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            var h = ctx.Request.Headers;
            seen = new Seen(h.ContentEncoding.Count == 0 ? null : h.ContentEncoding.ToString(), h.ContentLength?.ToString(),
                h.AcceptEncoding.Count == 0 ? null : h.AcceptEncoding.ToString(), ms.ToArray());
            var json = Encoding.UTF8.GetBytes(CompressorTests.Json);
            var reply = h["x-reply"].ToString();
            byte[] body = reply switch
            {
                "gzip" => Gzip(json),
                "gzip-bomb" => Gzip(new byte[1 << 20]),
                "corrupt" => Gzip(json)[..40].Concat(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }).ToArray(),
                "br" => Brotli(json),
                "zstd" => new ZstdSharp.Compressor(5).Wrap(json).ToArray(),
                _ => json,
            };
            if (reply.Length > 0 && reply != "plain") ctx.Response.Headers.ContentEncoding = reply.StartsWith("gzip") || reply == "corrupt" ? "gzip" : reply;
            if (h.ContainsKey("x-no-transform")) ctx.Response.Headers.CacheControl = "no-transform";
            ctx.Response.ContentLength = body.Length;
            await ctx.Response.Body.WriteAsync(body);
        });
        return (backend, () => seen);
    }

    private static async Task<(HttpResponseMessage Response, byte[] Body)> SendAsync(HttpClient client, byte[]? body, string? encoding, string? reply = null, bool noTransform = false)
    {
        using var request = new HttpRequestMessage(body is null ? HttpMethod.Get : HttpMethod.Post, "/");
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (encoding is not null) request.Content.Headers.TryAddWithoutValidation("Content-Encoding", encoding);
        }
        if (reply is not null) request.Headers.Add("x-reply", reply);
        if (noTransform) request.Headers.Add("x-no-transform", "1");
        var r = await client.SendAsync(request);
        return (r, await r.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task GzippedRequestBody_ReachesTheUpstreamDecoded_AndAcceptEncodingIsAdvertised()
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(GzipType)));
        using var client = proxy.Client("main");
        var json = Encoding.UTF8.GetBytes(CompressorTests.Json);
        var gz = Gzip(json);

        var (response, _) = await SendAsync(client, gz, "GZIP, identity");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(json, seen()!.Body);
        Assert.Equal("identity", seen()!.ContentEncoding); // only the decoded coding is taken out
        Assert.Null(seen()!.ContentLength);
        Assert.Equal("gzip", seen()!.AcceptEncoding);

        // Not the first coding: left alone.
        await SendAsync(client, gz, "br, gzip");
        Assert.Equal(gz, seen()!.Body);
        Assert.Equal("br, gzip", seen()!.ContentEncoding);

        const string p = "http.ingress_http.decompressor.upload.gzip.request.";
        Assert.Equal(1, await proxy.StatAsync(p + "decompressed"));
        Assert.Equal(1, await proxy.StatAsync(p + "not_decompressed"));
        Assert.Equal(gz.Length, await proxy.StatAsync(p + "total_compressed_bytes"));
        Assert.Equal(json.Length, await proxy.StatAsync(p + "total_uncompressed_bytes"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EncodedResponses_AreDecoded_ForTheClient(bool http2)
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(GzipType)));
        using var client = proxy.Client("main", http2);
        var json = Encoding.UTF8.GetBytes(CompressorTests.Json);

        var (response, body) = await SendAsync(client, null, null, reply: "gzip");
        Assert.Equal(json, body);
        Assert.Empty(response.Content.Headers.ContentEncoding);
        Assert.Equal("gzip", seen()!.AcceptEncoding);

        // no-transform keeps the body as it is.
        var (kept, keptBody) = await SendAsync(client, null, null, reply: "gzip", noTransform: true);
        Assert.Equal("gzip", kept.Content.Headers.ContentEncoding.Single());
        Assert.Equal(json, new MemoryStream(keptBody).Let(s => new GZipStream(s, CompressionMode.Decompress)).ReadAllBytes());

        const string p = "http.ingress_http.decompressor.upload.gzip.response.";
        Assert.Equal(1, await proxy.StatAsync(p + "decompressed"));
        Assert.Equal(1, await proxy.StatAsync(p + "not_decompressed"));
        Assert.Equal(json.Length, await proxy.StatAsync(p + "total_uncompressed_bytes"));
    }

    [Fact]
    public async Task Brotli_DecodesBothDirections()
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(BrotliType)));
        using var client = proxy.Client("main");
        var json = Encoding.UTF8.GetBytes(CompressorTests.Json);

        var (_, body) = await SendAsync(client, Brotli(json), "br", reply: "br");
        Assert.Equal(json, seen()!.Body);
        Assert.Equal(json, body);
        Assert.Equal("br", seen()!.AcceptEncoding);
    }

    [Fact]
    public async Task Zstd_DecodesBothDirections_AndCountsCorruptInput()
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(ZstdType)));
        using var client = proxy.Client("main");
        var json = Encoding.UTF8.GetBytes(CompressorTests.Json);
        var zstd = new ZstdSharp.Compressor(5).Wrap(json).ToArray();

        var (_, body) = await SendAsync(client, zstd, "zstd", reply: "zstd");
        Assert.Equal(json, seen()!.Body);
        Assert.Equal(json, body);
        Assert.Equal("zstd", seen()!.AcceptEncoding);

        // Damage past the frame header: zstd reports corruption (a body merely cut short decodes what it has, as in Envoy).
        var corrupt = zstd.ToArray();
        for (var i = 12; i < corrupt.Length - 4; i++) corrupt[i] ^= 0x5A;
        await SendAsync(client, corrupt, "zstd");
        Assert.True(seen()!.Body.Length < json.Length);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.decompressor.upload.zstd.decompressor_library.zstd_generic_error"));
    }

    [Fact]
    public async Task CorruptInput_AndBombs_AreCutOff_AndCounted()
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(GzipType, "max_inflate_ratio: 10")));
        using var client = proxy.Client("main");
        var json = Encoding.UTF8.GetBytes(CompressorTests.Json);
        var gz = Gzip(json);

        // A corrupt request body: the upstream gets what decoded before the damage, never more than the original.
        var corrupt = gz[..40].Concat(Enumerable.Repeat((byte)0xFF, 64)).ToArray();
        var (r1, _) = await SendAsync(client, corrupt, "gzip");
        Assert.Equal(HttpStatusCode.OK, r1.StatusCode);
        Assert.True(seen()!.Body.Length < json.Length);
        Assert.Equal(json[..seen()!.Body.Length], seen()!.Body);

        // A 1 MiB body of zeros compresses about a thousandfold: past the ratio of 10, it is cut off.
        var (r2, bomb) = await SendAsync(client, null, null, reply: "gzip-bomb");
        Assert.Equal(HttpStatusCode.OK, r2.StatusCode);
        Assert.True(bomb.Length < 1 << 20, $"{bomb.Length} bytes got through");

        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.decompressor.upload.gzip.decompressor_library.zlib_data_error"));
    }

    [Fact]
    public async Task RequestDirectionOff_AndAdvertiseOff_LeaveTheRequestAlone()
    {
        var (backend, seen) = await BackendAsync();
        await using var _ = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Filter(GzipType, config: """
            request_direction_config:
              common_config: { enabled: { default_value: false } }
              advertise_accept_encoding: false
            """)));
        using var client = proxy.Client("main");
        var gz = Gzip(Encoding.UTF8.GetBytes(CompressorTests.Json));
        await SendAsync(client, gz, "gzip");
        Assert.Equal(gz, seen()!.Body);
        Assert.Equal("gzip", seen()!.ContentEncoding);
        Assert.Null(seen()!.AcceptEncoding);
    }

    [Fact]
    public void UnknownLibrary_AndBadRatio_AreRefused()
    {
        var lz4 = Filter("type.googleapis.com/envoy.extensions.compression.lz4.decompressor.v3.Lz4");
        var errors = ProxyHarness.Validate(Bootstrap("127.0.0.1:1", lz4)).Errors.Select(e => e.ToString()).ToArray();
        Assert.Contains(errors, e => e.Contains("decompressor_library.typed_config: unsupported decompressor library 'upload'"));
        errors = ProxyHarness.Validate(Bootstrap("127.0.0.1:1", Filter(GzipType, "max_inflate_ratio: 2000"))).Errors.Select(e => e.ToString()).ToArray();
        Assert.Contains(errors, e => e.EndsWith("decompressor_library.typed_config.max_inflate_ratio: 2000 is out of range (1..1032)", StringComparison.Ordinal));
    }
}

internal static class StreamTestExtensions
{
    public static TOut Let<TIn, TOut>(this TIn value, Func<TIn, TOut> f) => f(value);

    public static byte[] ReadAllBytes(this Stream s)
    {
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
