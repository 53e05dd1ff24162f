using System.Globalization;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Http.Filters.Compressor;

/// <summary>
/// Envoy's <c>envoy.filters.http.compressor</c>. Responses are compressed with the library's coding when the request
/// accepts it (several compressor filters agree on one coding per request: the highest q-value among theirs, ties to
/// the first unless <c>choose_first</c>), the response is enabled, at least <c>min_content_length</c> long (or has no
/// content-length), of an allowed content type, without <c>cache-control: no-transform</c>, without a
/// content-encoding, without an etag when <c>disable_on_etag_header</c>, and not of an uncompressible status. A
/// compressed response loses its content-length and strong etag and gets <c>content-encoding</c>; every compressible
/// response gets <c>vary: Accept-Encoding</c>. With <c>request_direction_config</c>, request bodies are compressed
/// by the same rules (no accept-encoding). Stats as Envoy's, under
/// <c>http.&lt;stat_prefix&gt;.compressor.&lt;library name&gt;.&lt;gzip|brotli&gt;.</c>.
/// </summary>
internal sealed class CompressorFilter : IHttpEncoderFilter
{
    private readonly CompressorFilterModel _model;
    private readonly HttpFilterNames _names;
    internal readonly DirectionStats RequestStats;
    internal readonly DirectionStats ResponseStats;
    internal readonly Counter NoAcceptHeader, HeaderIdentity, HeaderCompressorUsed, HeaderCompressorOvershadowed, HeaderWildcard, HeaderNotValid, NotCompressedEtag;

    public CompressorFilter(CompressorFilterModel model, HttpFilterNames names, StatsStore stats, string hcmPrefix)
    {
        _model = model;
        _names = names;
        var prefix = hcmPrefix + "compressor." + model.Library.Name + "." + model.Library.StatPrefix;
        RequestStats = new DirectionStats(stats, prefix + "request.");
        ResponseStats = new DirectionStats(stats, model.ResponseStatsScoped ? prefix + "response." : prefix);
        NoAcceptHeader = stats.Counter(prefix, "no_accept_header");
        HeaderIdentity = stats.Counter(prefix, "header_identity");
        HeaderCompressorUsed = stats.Counter(prefix, "header_compressor_used");
        HeaderCompressorOvershadowed = stats.Counter(prefix, "header_compressor_overshadowed");
        HeaderWildcard = stats.Counter(prefix, "header_wildcard");
        HeaderNotValid = stats.Counter(prefix, "header_not_valid");
        NotCompressedEtag = stats.Counter(prefix, "not_compressed_etag");
    }

    internal CompressorFilterModel Model => _model;

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var request = context.Request;
        var headers = request.Headers;
        var perRoute = _names.MostSpecific<CompressorPerRouteModel>(info);
        var library = perRoute?.Library ?? _model.Library;
        var responseEnabled = perRoute switch
        {
            { Disabled: true } => false,
            { ForceResponse: true } => true,
            _ => _model.Response.Enabled,
        };
        var accept = headers.AcceptEncoding;
        string? acceptEncoding = accept.Count == 0 ? null : accept.ToString();
        if (responseEnabled && (perRoute?.RemoveAcceptEncodingHeader ?? _model.RemoveAcceptEncodingHeader)) headers.Remove("accept-encoding");

        var upgrade = IsUpgrade(headers) || HttpMethods.IsConnect(request.Method);
        CompressRequest(context, library, upgrade);
        // An upgraded stream's bytes are not a body to compress.
        if (!upgrade) _ = new CompressorResponse(context, this, library, acceptEncoding, responseEnabled);
        return new ValueTask<bool>(true);
    }

    /// <summary>Request bodies, with <c>request_direction_config</c>: compressed when long enough, of an allowed type and
    /// not already encoded.</summary>
    private void CompressRequest(HttpContext context, CompressorLibraryModel library, bool upgrade)
    {
        var stats = RequestStats;
        var direction = _model.Request;
        var headers = context.Request.Headers;
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        var compress = hasBody && direction is { Enabled: true } && !upgrade;
        if (compress && !MinLengthMet(headers.ContentLength, headers.ContentLength is null && headers.ContainsKey("content-length"), direction!.MinContentLength))
        {
            stats.ContentLengthTooSmall.Inc();
            compress = false;
        }
        compress = compress && ContentTypeAllowed(headers.ContentType, direction!.ContentTypes) && headers.ContentEncoding.Count == 0
            && TransferEncodingAllowed(headers.TransferEncoding, library.Token);
        if (!compress)
        {
            stats.NotCompressed.Inc();
            return;
        }
        headers.ContentLength = null;
        headers.ContentEncoding = library.Token;
        stats.Compressed.Inc();
        context.Request.Body = new CompressingRequestBody(context.Request.Body, library, stats);
    }

    // ----- the rules both directions share -----

    /// <summary>A body without a content-length qualifies; an unreadable one does not.</summary>
    internal static bool MinLengthMet(long? contentLength, bool unreadable, uint min) =>
        !unreadable && (contentLength is not { } length || length >= min);

    /// <summary>No content-type is allowed; otherwise its media type (parameters aside) must be listed.</summary>
    internal static bool ContentTypeAllowed(StringValues contentType, HashSet<string> allowed)
    {
        if (contentType.Count == 0) return true;
        var value = contentType[0].AsSpan();
        var semicolon = value.IndexOf(';');
        if (semicolon >= 0) value = value[..semicolon];
        return allowed.GetAlternateLookup<ReadOnlySpan<char>>().Contains(value.Trim());
    }

    /// <summary>A transfer-encoding that already compresses (or uses this coding) rules compression out.</summary>
    internal static bool TransferEncodingAllowed(StringValues transferEncoding, string token)
    {
        foreach (var line in transferEncoding)
        {
            foreach (var range in line.AsSpan().Split(','))
            {
                var t = line.AsSpan()[range].Trim();
                if (t.Equals("gzip", StringComparison.OrdinalIgnoreCase) || t.Equals("br", StringComparison.OrdinalIgnoreCase) ||
                    t.Equals("deflate", StringComparison.OrdinalIgnoreCase) || t.Equals("compress", StringComparison.OrdinalIgnoreCase) ||
                    t.Equals("zstd", StringComparison.OrdinalIgnoreCase) || t.Equals(token, StringComparison.OrdinalIgnoreCase))
                    return false;
            }
        }
        return true;
    }

    internal static bool IsUpgrade(IHeaderDictionary headers) => headers.Upgrade.Count > 0 && HeaderTokens.Contains(headers.Connection, "upgrade");

    /// <summary>One direction's counters.</summary>
    internal sealed class DirectionStats(StatsStore stats, string prefix)
    {
        public readonly Counter Compressed = stats.Counter(prefix, "compressed");
        public readonly Counter NotCompressed = stats.Counter(prefix, "not_compressed");
        public readonly Counter TotalUncompressedBytes = stats.Counter(prefix, "total_uncompressed_bytes");
        public readonly Counter TotalCompressedBytes = stats.Counter(prefix, "total_compressed_bytes");
        public readonly Counter ContentLengthTooSmall = stats.Counter(prefix, "content_length_too_small");
    }
}

/// <summary>The outcome of accept-encoding negotiation for one request, shared by its compressor filters.</summary>
internal enum EncodingChoice { NotValid, Identity, Wildcard, Coding }

/// <summary>The response side of one compressor filter for one request.</summary>
internal sealed class CompressorResponse : ResponseBodyFilter
{
    private readonly CompressorFilter _filter;
    private readonly CompressorLibraryModel _library;
    private readonly string? _acceptEncoding;
    private readonly bool _enabled;
    private Group? _group;
    private CompressingStream? _compressing;

    public CompressorResponse(HttpContext context, CompressorFilter filter, CompressorLibraryModel library, string? acceptEncoding, bool enabled)
        : base(context)
    {
        _filter = filter;
        _library = library;
        _acceptEncoding = acceptEncoding;
        _enabled = enabled;
        // Another compressor filter of this request (an earlier one in the chain): negotiate together.
        for (var inner = Inner; inner is ResponseBodyFilter f; inner = f.Inner)
        {
            if (f is not CompressorResponse other) continue;
            _group = other._group ??= new Group(other);
            _group.Members.Add(this);
            break;
        }
    }

    protected override Stream? OnResponseStart(Stream downstream)
    {
        if (!Decide(hasBody: true)) return null;
        var headers = Context.Response.Headers;
        // Envoy drops a strong etag from a compressed response (the bytes differ); a weak one stays.
        if (headers.ETag is { Count: > 0 } etag && etag[0] is { Length: > 2 } e && !e.StartsWith("W/", StringComparison.Ordinal) && !e.StartsWith("w/", StringComparison.Ordinal))
            headers.Remove("etag");
        headers.ContentLength = null;
        headers.ContentEncoding = _library.Token;
        _filter.ResponseStats.Compressed.Inc();
        return _compressing = new CompressingStream(Codecs.Compressor(_library, downstream), this, _filter.ResponseStats, _library, downstream);
    }

    protected override void OnHeadersOnlyResponse() => Decide(hasBody: false);

    protected override void OnTransformFinished() => _compressing?.CountOutput();

    /// <summary>Envoy's <c>encodeHeaders</c>: whether to compress, with its stats and the vary header.</summary>
    private bool Decide(bool hasBody)
    {
        var response = Context.Response;
        var headers = response.Headers;
        var model = _filter.Model;
        var enabled = _enabled;
        if (enabled && !CompressorFilter.MinLengthMet(headers.ContentLength, headers.ContentLength is null && headers.ContainsKey("content-length"), model.Response.MinContentLength))
        {
            _filter.ResponseStats.ContentLengthTooSmall.Inc();
            enabled = false;
        }
        var compressible = enabled && CompressorFilter.ContentTypeAllowed(headers.ContentType, model.Response.ContentTypes)
            && !HeaderTokens.Contains(headers.CacheControl, "no-transform") && EtagAllowed(headers, model)
            && headers.ContentEncoding.Count == 0 && Array.IndexOf(model.UncompressibleResponseCodes, response.StatusCode) < 0;
        var compress = hasBody && enabled && AcceptEncodingAllowed() && compressible
            && CompressorFilter.TransferEncodingAllowed(headers.TransferEncoding, _library.Token);
        if (compressible) AddVary(headers);
        if (!compress) _filter.ResponseStats.NotCompressed.Inc();
        return compress;
    }

    private bool EtagAllowed(IHeaderDictionary headers, CompressorFilterModel model)
    {
        if (!model.DisableOnEtagHeader || headers.ETag.Count == 0) return true;
        _filter.NotCompressedEtag.Inc();
        return false;
    }

    private static void AddVary(IHeaderDictionary headers)
    {
        var vary = headers.Vary;
        if (vary.Count == 0)
        {
            headers.Vary = "Accept-Encoding";
            return;
        }
        foreach (var line in vary)
        {
            if (line is null) continue;
            foreach (var range in line.AsSpan().Split(','))
                if (line.AsSpan()[range].Trim().SequenceEqual("Accept-Encoding")) return;
        }
        headers.Vary = vary.ToString() + ", Accept-Encoding";
    }

    /// <summary>Whether the request accepts this filter's coding, by the request's one negotiation; counts the outcome.</summary>
    private bool AcceptEncodingAllowed()
    {
        if (_acceptEncoding is null)
        {
            _filter.NoAcceptHeader.Inc();
            return false;
        }
        var (choice, chosen) = _group is { } g ? g.Decision ??= Negotiate(g.Members) : Negotiate([this]);
        switch (choice)
        {
            case EncodingChoice.NotValid:
                _filter.HeaderNotValid.Inc();
                return false;
            case EncodingChoice.Identity:
                _filter.HeaderIdentity.Inc();
                return false;
        }
        if (chosen != this)
        {
            _filter.HeaderCompressorOvershadowed.Inc();
            return false;
        }
        (choice == EncodingChoice.Wildcard ? _filter.HeaderWildcard : _filter.HeaderCompressorUsed).Inc();
        return true;
    }

    /// <summary>Envoy's <c>chooseEncoding</c> over the request's compressor filters (chain order) that would compress the
    /// response's content type: the accepted coding with the highest q-value.</summary>
    private (EncodingChoice, CompressorResponse?) Negotiate(List<CompressorResponse> members)
    {
        var contentType = Context.Response.Headers.ContentType;
        var candidates = new List<CompressorResponse>(members.Count);
        foreach (var m in members)
        {
            if (contentType.Count > 0 && !CompressorFilter.ContentTypeAllowed(contentType, m._filter.Model.Response.ContentTypes)) continue;
            var duplicate = false;
            foreach (var c in candidates) duplicate |= c._library.Token == m._library.Token;
            if (!duplicate) candidates.Add(m);
        }
        var tokens = new List<(string Coding, float Q)>();
        foreach (var range in _acceptEncoding.AsSpan().Split(','))
        {
            var item = _acceptEncoding.AsSpan()[range].Trim();
            if (item.IsEmpty) continue;
            var q = 1f;
            var semicolon = item.IndexOf(';');
            var coding = (semicolon < 0 ? item : item[..semicolon]).Trim();
            if (semicolon >= 0)
            {
                var param = item[(semicolon + 1)..];
                var eq = param.IndexOf('=');
                if (eq >= 0 && param[..eq].Trim().Equals("q", StringComparison.OrdinalIgnoreCase))
                {
                    if (!float.TryParse(param[(eq + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out q)) continue;
                }
            }
            tokens.Add((coding.ToString(), q));
        }
        // q=0 rules a coding out.
        foreach (var (coding, q) in tokens)
            if (q == 0) candidates.RemoveAll(c => c._library.Token == coding);
        if (tokens.Count == 0 || candidates.Count == 0) return (EncodingChoice.NotValid, null);

        string best = "identity";
        var bestQ = 0f;
        foreach (var (coding, q) in tokens)
        {
            var candidate = candidates.Find(c => c._library.Token == coding);
            if (candidate is null && coding != "identity" && coding != "*") continue;
            if (q > bestQ || (q == bestQ && candidate is { _filter.Model.ChooseFirst: true }))
            {
                best = coding;
                bestQ = q;
            }
        }
        if (bestQ == 0) return (EncodingChoice.NotValid, null);
        if (best == "identity") return (EncodingChoice.Identity, null);
        if (best == "*") return (EncodingChoice.Wildcard, candidates[0]);
        return (EncodingChoice.Coding, candidates.Find(c => c._library.Token == best));
    }

    /// <summary>The compressor filters of one request, in chain order, and their negotiated coding.</summary>
    private sealed class Group(CompressorResponse first)
    {
        public readonly List<CompressorResponse> Members = [first];
        public (EncodingChoice, CompressorResponse?)? Decision;
    }

    /// <summary>The compressor with the bytes through it counted (as Envoy counts them per data frame).</summary>
    private sealed class CompressingStream(Stream compressor, CompressorResponse owner, CompressorFilter.DirectionStats stats, CompressorLibraryModel library, Stream output)
        : WriteOnlyBodyStream
    {
        private long _counted;
        private bool _any;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.IsEmpty) return;
            _any = true;
            stats.TotalUncompressedBytes.Add(buffer.Length);
            compressor.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            // zlib would start a stream on an empty write and then never end it (no input, no trailer).
            if (buffer.IsEmpty) return ValueTask.CompletedTask;
            _any = true;
            stats.TotalUncompressedBytes.Add(buffer.Length);
            return compressor.WriteAsync(buffer, ct);
        }

        public override void Flush()
        {
            if (!_any) { output.Flush(); return; }
            compressor.Flush();
            CountOutput();
        }

        public override async Task FlushAsync(CancellationToken ct)
        {
            if (!_any)
            {
                await output.FlushAsync(ct).ConfigureAwait(false);
                return;
            }
            await compressor.FlushAsync(ct).ConfigureAwait(false);
            CountOutput();
        }

        public void CountOutput()
        {
            var written = owner.BytesWrittenDownstream;
            stats.TotalCompressedBytes.Add(written - _counted);
            _counted = written;
        }

        public override async ValueTask DisposeAsync()
        {
            await compressor.DisposeAsync().ConfigureAwait(false);
            // An empty body is still a whole compressed stream (zlib writes nothing for no input).
            if (!_any && library.Coding == ContentCoding.Gzip) await output.WriteAsync(Codecs.EmptyGzip).ConfigureAwait(false);
            GC.SuppressFinalize(this);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) compressor.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>A request body read compressed: each read of the body underneath is compressed and flushed, as Envoy
/// compresses each data frame.</summary>
internal sealed class CompressingRequestBody : ReadOnlyBodyStream
{
    private readonly Stream _inner;
    private readonly ByteQueue _queue = new();
    private readonly Stream _compressor;
    private readonly CompressorFilter.DirectionStats _stats;
    private readonly byte[] _buffer;
    private readonly CompressorLibraryModel _library;
    private bool _done;
    private bool _any;

    public CompressingRequestBody(Stream inner, CompressorLibraryModel library, CompressorFilter.DirectionStats stats)
    {
        _inner = inner;
        _library = library;
        _stats = stats;
        _compressor = Codecs.Compressor(library, _queue);
        _buffer = new byte[library.ChunkSize];
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
    {
        while (_queue.Available == 0 && !_done)
        {
            var n = await _inner.ReadAsync(_buffer, ct).ConfigureAwait(false);
            if (n == 0)
            {
                _compressor.Dispose(); // writes the end of the compressed body
                if (!_any && _library.Coding == ContentCoding.Gzip) _queue.Write(Codecs.EmptyGzip.Span);
                _done = true;
                break;
            }
            _any = true;
            _stats.TotalUncompressedBytes.Add(n);
            _compressor.Write(_buffer, 0, n);
            _compressor.Flush();
        }
        var taken = _queue.Take(destination.Span);
        _stats.TotalCompressedBytes.Add(taken);
        return taken;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_done)
        {
            _done = true;
            _compressor.Dispose();
        }
        base.Dispose(disposing);
    }
}
