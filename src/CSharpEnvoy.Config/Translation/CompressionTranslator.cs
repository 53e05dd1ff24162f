using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.HttpFilters;
using Envoy.Extensions.Filters.Http.Compressor.V3;
using Envoy.Extensions.Filters.Http.Decompressor.V3;
using CoreTypedExtensionConfig = Envoy.Config.Core.V3.TypedExtensionConfig;
using GzipCompressor = Envoy.Extensions.Compression.Gzip.Compressor.V3.Gzip;
using BrotliCompressor = Envoy.Extensions.Compression.Brotli.Compressor.V3.Brotli;
using GzipDecompressor = Envoy.Extensions.Compression.Gzip.Decompressor.V3.Gzip;
using BrotliDecompressor = Envoy.Extensions.Compression.Brotli.Decompressor.V3.Brotli;
using ZstdCompressor = Envoy.Extensions.Compression.Zstd.Compressor.V3.Zstd;
using ZstdDecompressor = Envoy.Extensions.Compression.Zstd.Decompressor.V3.Zstd;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates <c>envoy.filters.http.compressor</c> and <c>envoy.filters.http.decompressor</c> and their
/// libraries, with the ranges Envoy's validation rules give.</summary>
internal static class CompressionTranslator
{
    public const string GzipCompressorType = "envoy.extensions.compression.gzip.compressor.v3.Gzip";
    public const string BrotliCompressorType = "envoy.extensions.compression.brotli.compressor.v3.Brotli";
    public const string GzipDecompressorType = "envoy.extensions.compression.gzip.decompressor.v3.Gzip";
    public const string BrotliDecompressorType = "envoy.extensions.compression.brotli.decompressor.v3.Brotli";
    public const string ZstdCompressorType = "envoy.extensions.compression.zstd.compressor.v3.Zstd";
    public const string ZstdDecompressorType = "envoy.extensions.compression.zstd.decompressor.v3.Zstd";

    public static CompressorFilterModel? Compressor(Compressor c, string path, ConfigErrors errors)
    {
        var library = CompressorLibrary(c.CompressorLibrary, path + ".compressor_library", errors);
        CompressorDirectionModel? request = null;
        if (c.RequestDirectionConfig is { } rq)
            request = Direction(rq.CommonConfig, path + ".request_direction_config.common_config", errors);
        CompressorDirectionModel response;
        bool disableOnEtag, removeAcceptEncoding;
        int[] uncompressible = [];
        if (c.ResponseDirectionConfig is { } rs)
        {
            // The deprecated top-level fields are ignored by Envoy once response_direction_config is set: say so.
            if (c.ContentLength is not null || c.ContentType.Count > 0 || c.DisableOnEtagHeader || c.RemoveAcceptEncodingHeader || c.RuntimeEnabled is not null)
                errors.Warn(path, "the deprecated content_length, content_type, disable_on_etag_header, remove_accept_encoding_header and runtime_enabled are ignored when response_direction_config is set");
            response = Direction(rs.CommonConfig, path + ".response_direction_config.common_config", errors);
            disableOnEtag = rs.DisableOnEtagHeader;
            removeAcceptEncoding = rs.RemoveAcceptEncodingHeader;
            var codes = new List<int>();
            for (var i = 0; i < rs.UncompressibleResponseCodes.Count; i++)
            {
                var code = rs.UncompressibleResponseCodes[i];
                if (code is < 200 or >= 600)
                    errors.Add($"{path}.response_direction_config.uncompressible_response_codes[{i}]", $"{code} is not a response code (200..599)");
                else if (codes.Contains((int)code))
                    errors.Add($"{path}.response_direction_config.uncompressible_response_codes[{i}]", $"{code} is listed twice");
                else codes.Add((int)code);
            }
            uncompressible = codes.ToArray();
        }
        else
        {
            response = new CompressorDirectionModel(Enabled(c.RuntimeEnabled), MinLength(c.ContentLength), ContentTypes(c.ContentType));
            disableOnEtag = c.DisableOnEtagHeader;
            removeAcceptEncoding = c.RemoveAcceptEncodingHeader;
        }
        if (library is null) return null;
        return new CompressorFilterModel(library, request, response, disableOnEtag, removeAcceptEncoding, uncompressible, c.ChooseFirst,
            ResponseStatsScoped: c.ResponseDirectionConfig is not null);
    }

    /// <summary><c>CompressorPerRoute</c>: exactly one of <c>disabled: true</c> or <c>overrides</c>.</summary>
    public static CompressorPerRouteModel? PerRoute(CompressorPerRoute p, string path, ConfigErrors errors)
    {
        switch (p.OverrideCase)
        {
            case CompressorPerRoute.OverrideOneofCase.Disabled:
                if (!p.Disabled) { errors.Add(path + ".disabled", "disabled must be true when set"); return null; }
                return new CompressorPerRouteModel(true, false, null, null);
            case CompressorPerRoute.OverrideOneofCase.Overrides:
                var o = p.Overrides;
                var library = o.CompressorLibrary is null ? null : CompressorLibrary(o.CompressorLibrary, path + ".overrides.compressor_library", errors);
                return new CompressorPerRouteModel(false, o.ResponseDirectionConfig is not null, o.ResponseDirectionConfig?.RemoveAcceptEncodingHeader, library);
            default:
                errors.Add(path, "one of disabled or overrides is required");
                return null;
        }
    }

    public static DecompressorFilterModel? Decompressor(Decompressor d, string path, ConfigErrors errors)
    {
        var library = DecompressorLibrary(d.DecompressorLibrary, path + ".decompressor_library", errors);
        if (library is null) return null;
        var rq = d.RequestDirectionConfig;
        var rs = d.ResponseDirectionConfig;
        return new DecompressorFilterModel(library,
            Enabled(rq?.CommonConfig?.Enabled), rq?.CommonConfig?.IgnoreNoTransformHeader ?? false, rq?.AdvertiseAcceptEncoding ?? true,
            Enabled(rs?.CommonConfig?.Enabled), rs?.CommonConfig?.IgnoreNoTransformHeader ?? false);
    }

    private static CompressorLibraryModel? CompressorLibrary(CoreTypedExtensionConfig? library, string path, ConfigErrors errors)
    {
        if (library is null) { errors.Add(path, "compressor_library is required"); return null; }
        if (library.Name.Length == 0) errors.Add(path + ".name", "name is required");
        var type = TypeName(library.TypedConfig?.TypeUrl);
        var at = path + ".typed_config";
        switch (type)
        {
            case GzipCompressorType:
            {
                var g = library.TypedConfig!.Unpack<GzipCompressor>();
                Range(g.MemoryLevel, 1, 9, at + ".memory_level", errors);
                Range(g.WindowBits, 9, 15, at + ".window_bits", errors);
                var chunk = ChunkSize(g.ChunkSize, at + ".chunk_size", errors);
                var level = g.CompressionLevel switch
                {
                    GzipCompressor.Types.CompressionLevel.DefaultCompression => -1,
                    var l when (int)l is >= 1 and <= 9 => (int)l,
                    var l => Invalid(at + ".compression_level", $"unknown compression level {(int)l}", errors),
                };
                var strategy = (int)g.CompressionStrategy;
                if (strategy is < 0 or > 4) Invalid(at + ".compression_strategy", $"unknown compression strategy {strategy}", errors);
                return new CompressorLibraryModel(library.Name, ContentCoding.Gzip, level, strategy, 0, chunk);
            }
            case BrotliCompressorType:
            {
                var b = library.TypedConfig!.Unpack<BrotliCompressor>();
                Range(b.Quality, 0, 11, at + ".quality", errors);
                Range(b.WindowBits, 10, 24, at + ".window_bits", errors);
                Range(b.InputBlockBits, 16, 24, at + ".input_block_bits", errors);
                if ((int)b.EncoderMode is < 0 or > 3) Invalid(at + ".encoder_mode", $"unknown encoder mode {(int)b.EncoderMode}", errors);
                var chunk = ChunkSize(b.ChunkSize, at + ".chunk_size", errors);
                return new CompressorLibraryModel(library.Name, ContentCoding.Brotli, (int)(b.Quality ?? 3), 0, (int)(b.WindowBits ?? 18), chunk);
            }
            case ZstdCompressorType:
            {
                var z = library.TypedConfig!.Unpack<ZstdCompressor>();
                var strategy = (int)z.Strategy;
                if (strategy is < 0 or > 9) Invalid(at + ".strategy", $"unknown strategy {strategy}", errors);
                var chunk = ChunkSize(z.ChunkSize, at + ".chunk_size", errors);
                var dictionary = z.Dictionary is null ? null : RouteTranslator.DataSourceBytes(z.Dictionary, at + ".dictionary", errors);
                // zstd clamps levels above its maximum (22); 0 is its default (3).
                var level = z.CompressionLevel is null or 0 ? 3 : (int)Math.Min(z.CompressionLevel.Value, 22);
                return new CompressorLibraryModel(library.Name, ContentCoding.Zstd, level, strategy, 0, chunk, z.EnableChecksum, dictionary);
            }
            default:
                errors.Add(at, type is null
                    ? "a compressor library needs a typed_config"
                    : $"unsupported compressor library '{library.Name}' (type 'type.googleapis.com/{type}'); csenvoy has gzip, brotli and zstd");
                return null;
        }
    }

    private static DecompressorLibraryModel? DecompressorLibrary(CoreTypedExtensionConfig? library, string path, ConfigErrors errors)
    {
        if (library is null) { errors.Add(path, "decompressor_library is required"); return null; }
        if (library.Name.Length == 0) errors.Add(path + ".name", "name is required");
        var type = TypeName(library.TypedConfig?.TypeUrl);
        var at = path + ".typed_config";
        switch (type)
        {
            case GzipDecompressorType:
            {
                var g = library.TypedConfig!.Unpack<GzipDecompressor>();
                Range(g.WindowBits, 9, 15, at + ".window_bits", errors);
                Range(g.MaxInflateRatio, 1, 1032, at + ".max_inflate_ratio", errors);
                var chunk = ChunkSize(g.ChunkSize, at + ".chunk_size", errors);
                return new DecompressorLibraryModel(library.Name, ContentCoding.Gzip, chunk, g.MaxInflateRatio ?? 100);
            }
            case BrotliDecompressorType:
            {
                var b = library.TypedConfig!.Unpack<BrotliDecompressor>();
                var chunk = ChunkSize(b.ChunkSize, at + ".chunk_size", errors);
                return new DecompressorLibraryModel(library.Name, ContentCoding.Brotli, chunk, 100);
            }
            case ZstdDecompressorType:
            {
                var z = library.TypedConfig!.Unpack<ZstdDecompressor>();
                var chunk = ChunkSize(z.ChunkSize, at + ".chunk_size", errors);
                if (z.Dictionaries.Count > 1)
                    errors.Add(at + ".dictionaries", "only one dictionary is supported by csenvoy (see docs/compatibility.md)");
                var dictionary = z.Dictionaries.Count == 0 ? null : RouteTranslator.DataSourceBytes(z.Dictionaries[0], at + ".dictionaries[0]", errors);
                return new DecompressorLibraryModel(library.Name, ContentCoding.Zstd, chunk, 100, dictionary);
            }
            default:
                errors.Add(at, type is null
                    ? "a decompressor library needs a typed_config"
                    : $"unsupported decompressor library '{library.Name}' (type 'type.googleapis.com/{type}'); csenvoy has gzip, brotli and zstd");
                return null;
        }
    }

    private static CompressorDirectionModel Direction(Compressor.Types.CommonDirectionConfig? common, string path, ConfigErrors errors) =>
        new(Enabled(common?.Enabled), MinLength(common?.MinContentLength), ContentTypes(common?.ContentType));

    /// <summary>A <c>RuntimeFeatureFlag</c>'s default (on when unset; its runtime key is warned about elsewhere).</summary>
    private static bool Enabled(Envoy.Config.Core.V3.RuntimeFeatureFlag? flag) => flag?.DefaultValue ?? true;

    /// <summary>Envoy reads 0 as unset: the default of 30 bytes.</summary>
    private static uint MinLength(uint? value) => value is null or 0 ? 30 : value.Value;

    private static HashSet<string> ContentTypes(IEnumerable<string>? types)
    {
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (types is not null) foreach (var t in types) set.Add(t.Trim());
        if (set.Count == 0) foreach (var t in CompressorDirectionModel.DefaultContentTypes) set.Add(t);
        return set;
    }

    private static int ChunkSize(uint? value, string path, ConfigErrors errors)
    {
        Range(value, 4096, 65536, path, errors);
        return (int)(value ?? 4096);
    }

    private static void Range(uint? value, uint min, uint max, string path, ConfigErrors errors)
    {
        if (value is { } v && (v < min || v > max)) errors.Add(path, $"{v} is out of range ({min}..{max})");
    }

    private static int Invalid(string path, string message, ConfigErrors errors)
    {
        errors.Add(path, message);
        return 0;
    }

    private static string? TypeName(string? typeUrl)
    {
        if (string.IsNullOrEmpty(typeUrl)) return null;
        var slash = typeUrl.LastIndexOf('/');
        return slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
    }
}
