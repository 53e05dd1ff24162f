using System.IO.Pipelines;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Http.Filters.Compressor;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Http.Filters.Decompressor;

/// <summary>
/// Envoy's <c>envoy.filters.http.decompressor</c>. A request or response body whose first content-encoding is the
/// library's (case-insensitive) is decompressed: that coding leaves content-encoding, content-length goes. With
/// response decompression on and <c>advertise_accept_encoding</c> (the default), the request's accept-encoding gets
/// the library's coding. <c>cache-control: no-transform</c> keeps a body as it is unless
/// <c>ignore_no_transform_header</c>. As in Envoy, bad input does not fail the stream: what was decoded goes on, the
/// rest is dropped and the library's error counter counts it; so does output beyond the inflate ratio (a compression
/// bomb). Stats under <c>http.&lt;stat_prefix&gt;.decompressor.&lt;library name&gt;.&lt;gzip|brotli&gt;.</c>.
/// </summary>
internal sealed class DecompressorFilter : IHttpEncoderFilter
{
    private readonly DecompressorFilterModel _model;
    private readonly DirectionStats _request;
    private readonly DirectionStats _response;
    internal readonly Counter LibraryError;
    internal readonly Counter? OutputOverflow;

    public DecompressorFilter(DecompressorFilterModel model, StatsStore stats, string hcmPrefix)
    {
        _model = model;
        var prefix = hcmPrefix + "decompressor." + model.Library.Name + "." + model.Library.StatPrefix;
        _request = new DirectionStats(stats, prefix + "request.");
        _response = new DirectionStats(stats, prefix + "response.");
        if (model.Library.Coding == ContentCoding.Gzip) LibraryError = stats.Counter(prefix, "decompressor_library.zlib_data_error");
        else if (model.Library.Coding == ContentCoding.Zstd) LibraryError = stats.Counter(prefix, "decompressor_library.zstd_generic_error");
        else
        {
            LibraryError = stats.Counter(prefix, "decompressor_library.brotli_error");
            OutputOverflow = stats.Counter(prefix, "decompressor_library.brotli_output_overflow");
        }
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var request = context.Request;
        var headers = request.Headers;
        var library = _model.Library;
        if (_model.ResponseEnabled && _model.AdvertiseAcceptEncoding) Advertise(headers, library.Token);

        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        if (hasBody)
        {
            if (_model.RequestEnabled && Decodes(headers, library.Token, _model.RequestIgnoreNoTransform))
            {
                _request.Decompressed.Inc();
                StripCoding(headers);
                request.Body = new DecompressingRequestBody(request.Body, this, _request);
            }
            else _request.NotDecompressed.Inc();
        }
        _ = new DecompressorResponse(context, this, _response);
        return new ValueTask<bool>(true);
    }

    internal DecompressorFilterModel Model => _model;

    /// <summary>accept-encoding without the library's coding, then with it last (Envoy joins with a bare comma).</summary>
    private static void Advertise(IHeaderDictionary headers, string token)
    {
        var existing = headers.AcceptEncoding;
        if (existing.Count == 0)
        {
            headers.AcceptEncoding = token;
            return;
        }
        var parts = new List<string>();
        foreach (var line in existing)
        {
            if (line is null) continue;
            foreach (var range in line.AsSpan().Split(','))
            {
                var item = line.AsSpan()[range].Trim();
                if (item.IsEmpty) continue;
                var semicolon = item.IndexOf(';');
                if ((semicolon < 0 ? item : item[..semicolon]).Trim().SequenceEqual(token)) continue;
                parts.Add(item.ToString());
            }
        }
        parts.Add(token);
        headers.AcceptEncoding = string.Join(',', parts);
    }

    /// <summary>Whether the body is decoded: on, no no-transform (unless ignored), and the first content-encoding is the library's.</summary>
    internal static bool Decodes(IHeaderDictionary headers, string token, bool ignoreNoTransform)
    {
        if (!ignoreNoTransform && HeaderTokens.Contains(headers.CacheControl, "no-transform")) return false;
        var encoding = headers.ContentEncoding;
        if (encoding.Count == 0 || encoding[0] is not { } first) return false;
        var comma = first.IndexOf(',');
        return (comma < 0 ? first.AsSpan() : first.AsSpan(0, comma)).Trim().Equals(token, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Takes the decoded (first) coding out of content-encoding, and the content-length with it.</summary>
    internal static void StripCoding(IHeaderDictionary headers)
    {
        headers.ContentLength = null;
        var encoding = headers.ContentEncoding;
        var first = encoding[0]!;
        var comma = first.IndexOf(',');
        string? rest = comma < 0 ? null : first[(comma + 1)..].Trim();
        if (encoding.Count > 1)
        {
            var values = new List<string>();
            if (!string.IsNullOrEmpty(rest)) values.Add(rest);
            for (var i = 1; i < encoding.Count; i++) values.Add(encoding[i]!);
            headers.ContentEncoding = new StringValues(values.ToArray());
        }
        else if (string.IsNullOrEmpty(rest)) headers.Remove("content-encoding");
        else headers.ContentEncoding = rest;
    }

    internal sealed class DirectionStats(StatsStore stats, string prefix)
    {
        public readonly Counter Decompressed = stats.Counter(prefix, "decompressed");
        public readonly Counter NotDecompressed = stats.Counter(prefix, "not_decompressed");
        public readonly Counter TotalCompressedBytes = stats.Counter(prefix, "total_compressed_bytes");
        public readonly Counter TotalUncompressedBytes = stats.Counter(prefix, "total_uncompressed_bytes");
    }
}

/// <summary>A request body read decompressed. Corrupt input or output beyond the inflate ratio ends it where the good
/// output ends (Envoy passes on what it decoded), counted in the library's error stat.</summary>
internal sealed class DecompressingRequestBody : ReadOnlyBodyStream
{
    private readonly CountingInput _input;
    private readonly Stream _decompressor;
    private readonly DecompressorFilter _filter;
    private readonly DecompressorFilter.DirectionStats _stats;
    private long _output;
    private bool _failed;

    public DecompressingRequestBody(Stream inner, DecompressorFilter filter, DecompressorFilter.DirectionStats stats)
    {
        _input = new CountingInput(inner, stats);
        _filter = filter;
        _stats = stats;
        _decompressor = Codecs.Decompressor(filter.Model.Library, _input);
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
    {
        if (_failed) return 0;
        int n;
        try
        {
            n = await _decompressor.ReadAsync(destination, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (Codecs.IsBadInput(e))
        {
            Fail(overflow: false);
            return 0;
        }
        _output += n;
        if (_output > (long)_filter.Model.Library.MaxInflateRatio * Math.Max(1, _input.Count))
        {
            Fail(overflow: true);
            return 0;
        }
        _stats.TotalUncompressedBytes.Add(n);
        return n;
    }

    private void Fail(bool overflow)
    {
        _failed = true;
        _filter.LibraryError.Inc();
        if (overflow) _filter.OutputOverflow?.Inc();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _decompressor.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>The compressed bytes read, counted.</summary>
    private sealed class CountingInput(Stream inner, DecompressorFilter.DirectionStats stats) : ReadOnlyBodyStream
    {
        public long Count { get; private set; }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
        {
            var n = await inner.ReadAsync(destination, ct).ConfigureAwait(false);
            Count += n;
            stats.TotalCompressedBytes.Add(n);
            return n;
        }
    }
}

/// <summary>The response side of a decompressor filter for one request. The compressed bytes written are fed through
/// a pipe to a decoder that writes the output downstream as it comes.</summary>
internal sealed class DecompressorResponse(HttpContext context, DecompressorFilter filter, DecompressorFilter.DirectionStats stats) : ResponseBodyFilter(context)
{
    protected override Stream? OnResponseStart(Stream downstream)
    {
        var headers = Context.Response.Headers;
        var model = filter.Model;
        if (!model.ResponseEnabled || !DecompressorFilter.Decodes(headers, model.Library.Token, model.ResponseIgnoreNoTransform))
        {
            stats.NotDecompressed.Inc();
            return null;
        }
        stats.Decompressed.Inc();
        DecompressorFilter.StripCoding(headers);
        return new DecodingStream(downstream, filter, stats);
    }

    protected override void OnHeadersOnlyResponse() { }

    private sealed class DecodingStream : WriteOnlyBodyStream
    {
        private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 256 * 1024, resumeWriterThreshold: 128 * 1024, useSynchronizationContext: false));
        private readonly Task _pump;
        private readonly DecompressorFilter _filter;
        private readonly DecompressorFilter.DirectionStats _stats;
        private long _input;

        public DecodingStream(Stream downstream, DecompressorFilter filter, DecompressorFilter.DirectionStats stats)
        {
            _filter = filter;
            _stats = stats;
            _pump = PumpAsync(downstream);
        }

        private async Task PumpAsync(Stream downstream)
        {
            await Task.Yield();
            var reader = _pipe.Reader;
            var buffer = new byte[_filter.Model.Library.ChunkSize];
            long output = 0;
            Stream? decoder = null;
            try
            {
                decoder = Codecs.Decompressor(_filter.Model.Library, reader.AsStream(leaveOpen: true));
                while (true)
                {
                    var n = await decoder.ReadAsync(buffer).ConfigureAwait(false);
                    if (n == 0) break;
                    output += n;
                    if (output > (long)_filter.Model.Library.MaxInflateRatio * Math.Max(1, Volatile.Read(ref _input)))
                    {
                        _filter.LibraryError.Inc();
                        _filter.OutputOverflow?.Inc();
                        break;
                    }
                    _stats.TotalUncompressedBytes.Add(n);
                    await downstream.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                    await downstream.FlushAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (Codecs.IsBadInput(e))
            {
                _filter.LibraryError.Inc();
            }
            finally
            {
                // Whatever is left (after an error, or past the end of the compressed stream) is dropped; a writer
                // waiting on the pipe is released.
                await reader.CompleteAsync().ConfigureAwait(false);
                if (decoder is not null) await decoder.DisposeAsync().ConfigureAwait(false);
            }
        }

        public override void Write(byte[] buffer, int offset, int count) =>
            WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            Interlocked.Add(ref _input, buffer.Length);
            _stats.TotalCompressedBytes.Add(buffer.Length);
            // Once the decoder stopped (the reader completed), the rest is dropped.
            var result = await _pipe.Writer.WriteAsync(buffer, ct).ConfigureAwait(false);
            if (result.IsCompleted) return;
        }

        public override void Flush() { }

        public override Task FlushAsync(CancellationToken ct) => Task.CompletedTask;

        public override async ValueTask DisposeAsync()
        {
            await _pipe.Writer.CompleteAsync().ConfigureAwait(false);
            await _pump.ConfigureAwait(false);
            GC.SuppressFinalize(this);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) DisposeAsync().AsTask().GetAwaiter().GetResult();
            base.Dispose(disposing);
        }
    }
}
