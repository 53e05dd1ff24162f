using System.Globalization;
using System.Text;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.AccessLoggers.Stream.V3;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates access loggers (file, stdout, stderr), their formats and filters.</summary>
internal static class AccessLogTranslator
{
    /// <summary>Envoy's response flag short names (<c>ResponseFlagUtils</c>), the values response_flag_filter accepts.</summary>
    internal static readonly string[] ResponseFlagNames =
    [
        "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH",
        "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO",
    ];

    public static IReadOnlyList<AccessLogModel> Translate(IList<AccessLog> logs, string path, ConfigErrors errors)
    {
        var result = new List<AccessLogModel>(logs.Count);
        for (var i = 0; i < logs.Count; i++)
        {
            var model = TranslateOne(logs[i], $"{path}[{i}]", errors);
            if (model is not null) result.Add(model);
        }
        return result;
    }

    private static AccessLogModel? TranslateOne(AccessLog log, string path, ConfigErrors errors)
    {
        var ext = ListenerTranslator.ResolveExtension(ExtensionCategory.AccessLogger, log.Name, log.TypedConfig, path, "access logger", errors);
        var filter = log.Filter is null ? null : Filter(log.Filter, path + ".filter", errors);
        if (ext is null) return null;
        var cfgPath = path + ".typed_config";
        var hasConfig = log.TypedConfig is { TypeUrl.Length: > 0 };
        switch (ext.Name)
        {
            case ExtensionRegistry.FileAccessLogger:
            {
                var c = hasConfig ? log.TypedConfig!.Unpack<FileAccessLog>() : new FileAccessLog();
                if (string.IsNullOrEmpty(c.Path))
                {
                    errors.Add(cfgPath + ".path", "path is required");
                    return null;
                }
                CheckFilePath(c.Path, cfgPath + ".path", errors);
                var format = c.AccessLogFormatCase switch
                {
                    FileAccessLog.AccessLogFormatOneofCase.Format => c.Format.Length == 0 ? AccessLogFormatModel.Default : Text(c.Format, cfgPath + ".format", false, errors),
                    FileAccessLog.AccessLogFormatOneofCase.JsonFormat => Json(c.JsonFormat, cfgPath + ".json_format", false, typed: false, errors),
                    FileAccessLog.AccessLogFormatOneofCase.TypedJsonFormat => Json(c.TypedJsonFormat, cfgPath + ".typed_json_format", false, typed: true, errors),
                    FileAccessLog.AccessLogFormatOneofCase.LogFormat => Format(c.LogFormat, cfgPath + ".log_format", errors),
                    _ => AccessLogFormatModel.Default,
                };
                return format is null ? null : new AccessLogModel(ext.Name, AccessLogSink.File, c.Path, format, filter, path);
            }
            case ExtensionRegistry.StdoutAccessLogger:
            case ExtensionRegistry.StderrAccessLogger:
            {
                var stdout = ext.Name == ExtensionRegistry.StdoutAccessLogger;
                var logFormat = !hasConfig ? null : stdout ? log.TypedConfig!.Unpack<StdoutAccessLog>().LogFormat : log.TypedConfig!.Unpack<StderrAccessLog>().LogFormat;
                var format = logFormat is null ? AccessLogFormatModel.Default : Format(logFormat, cfgPath + ".log_format", errors);
                return format is null ? null : new AccessLogModel(ext.Name, stdout ? AccessLogSink.Stdout : AccessLogSink.Stderr, null, format, filter, path);
            }
            default:
                return null;
        }
    }

    /// <summary>Envoy opens the file when the config loads and fails the load when it cannot; a missing directory is
    /// the common case and is reported here, so <c>--mode validate</c> catches it too.</summary>
    private static void CheckFilePath(string file, string path, ConfigErrors errors)
    {
        if (file.StartsWith("/dev/", StringComparison.Ordinal)) return;
        string? dir;
        try
        {
            dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file));
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            errors.Add(path, $"unable to open file '{file}': {ex.Message}");
            return;
        }
        if (dir is not null && !Directory.Exists(dir))
            errors.Add(path, $"unable to open file '{file}': directory '{dir}' does not exist");
    }

    /// <summary>A <c>SubstitutionFormatString</c>.</summary>
    internal static AccessLogFormatModel? Format(SubstitutionFormatString f, string path, ConfigErrors errors)
    {
        if (f.Formatters.Count > 0) errors.Add(path + ".formatters", "formatter extensions are not supported");
        switch (f.FormatCase)
        {
            case SubstitutionFormatString.FormatOneofCase.TextFormat:
                return Text(f.TextFormat, path + ".text_format", f.OmitEmptyValues, errors);
            case SubstitutionFormatString.FormatOneofCase.TextFormatSource:
                var bytes = RouteTranslator.DataSourceBytes(f.TextFormatSource, path + ".text_format_source", errors);
                return bytes is null ? null : Text(Encoding.UTF8.GetString(bytes), path + ".text_format_source", f.OmitEmptyValues, errors);
            case SubstitutionFormatString.FormatOneofCase.JsonFormat:
                return Json(f.JsonFormat, path + ".json_format", f.OmitEmptyValues, typed: true, errors);
            default:
                errors.Add(path, "one of text_format, text_format_source or json_format is required");
                return null;
        }
    }

    private static AccessLogFormatModel? Text(string format, string path, bool omitEmpty, ConfigErrors errors)
    {
        var tokens = FormatParser.Parse(format, out var error);
        if (tokens is null)
        {
            errors.Add(path, error!);
            return null;
        }
        return new AccessLogFormatModel(tokens, null, omitEmpty);
    }

    private static AccessLogFormatModel? Json(Struct s, string path, bool omitEmpty, bool typed, ConfigErrors errors)
    {
        var before = errors.Errors.Count;
        var node = JsonNode(s, path, errors);
        return errors.Errors.Count > before ? null : new AccessLogFormatModel(null, node, omitEmpty, typed);
    }

    private static JsonObjectNode JsonNode(Struct s, string path, ConfigErrors errors)
    {
        var fields = new List<KeyValuePair<string, JsonFormatNode>>(s.Fields.Count);
        foreach (var key in s.Fields.Keys.Order(StringComparer.Ordinal))
            fields.Add(new(key, JsonNode(s.Fields[key], ConfigErrors.Join(path, key), errors)));
        return new JsonObjectNode(fields);
    }

    private static JsonFormatNode JsonNode(Value v, string path, ConfigErrors errors)
    {
        switch (v.KindCase)
        {
            case Value.KindOneofCase.StructValue:
                return JsonNode(v.StructValue, path, errors);
            case Value.KindOneofCase.ListValue:
                var items = new List<JsonFormatNode>(v.ListValue.Values.Count);
                for (var i = 0; i < v.ListValue.Values.Count; i++) items.Add(JsonNode(v.ListValue.Values[i], $"{path}[{i}]", errors));
                return new JsonListNode(items);
            case Value.KindOneofCase.NumberValue:
                var d = v.NumberValue;
                return new JsonLiteralNode(double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : "null");
            case Value.KindOneofCase.BoolValue:
                return new JsonLiteralNode(v.BoolValue ? "true" : "false");
            case Value.KindOneofCase.StringValue:
                var str = v.StringValue;
                if (!str.Contains('%')) return new JsonLiteralNode(JsonText.Quote(str));
                var tokens = FormatParser.Parse(str, out var error);
                if (tokens is null)
                {
                    errors.Add(path, error!);
                    return new JsonLiteralNode("null");
                }
                return new JsonTemplateNode(tokens);
            default:
                return new JsonLiteralNode("null");
        }
    }

    internal static AccessLogFilterModel? Filter(AccessLogFilter f, string path, ConfigErrors errors)
    {
        switch (f.FilterSpecifierCase)
        {
            case AccessLogFilter.FilterSpecifierOneofCase.StatusCodeFilter:
                return Comparison(f.StatusCodeFilter.Comparison, path + ".status_code_filter.comparison", errors, (op, v) => new StatusCodeFilterModel(op, v));
            case AccessLogFilter.FilterSpecifierOneofCase.DurationFilter:
                return Comparison(f.DurationFilter.Comparison, path + ".duration_filter.comparison", errors, (op, v) => new DurationFilterModel(op, v));
            case AccessLogFilter.FilterSpecifierOneofCase.NotHealthCheckFilter:
                return new NotHealthCheckFilterModel();
            case AccessLogFilter.FilterSpecifierOneofCase.ResponseFlagFilter:
            {
                var flags = f.ResponseFlagFilter.Flags;
                for (var i = 0; i < flags.Count; i++)
                {
                    if (Array.IndexOf(ResponseFlagNames, flags[i]) < 0)
                        errors.Add($"{path}.response_flag_filter.flags[{i}]", $"unknown response flag '{flags[i]}'; valid flags: {string.Join(", ", ResponseFlagNames)}");
                }
                return new ResponseFlagFilterModel(flags.ToArray());
            }
            case AccessLogFilter.FilterSpecifierOneofCase.HeaderFilter:
            {
                var hPath = path + ".header_filter.header";
                if (f.HeaderFilter.Header is null)
                {
                    errors.Add(hPath, "header is required");
                    return null;
                }
                var m = RouteTranslator.HeaderMatcher(f.HeaderFilter.Header, hPath, errors);
                return m is null ? null : new HeaderFilterModel(m);
            }
            case AccessLogFilter.FilterSpecifierOneofCase.RuntimeFilter:
            {
                var r = f.RuntimeFilter;
                if (string.IsNullOrEmpty(r.RuntimeKey)) errors.Add(path + ".runtime_filter.runtime_key", "runtime_key is required");
                // Envoy samples with percent_sampled when the runtime has no value for the key (csenvoy's never does).
                var pct = r.PercentSampled;
                var denominator = (pct?.Denominator ?? Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred) switch
                {
                    Envoy.Type.V3.FractionalPercent.Types.DenominatorType.TenThousand => 10_000u,
                    Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million => 1_000_000u,
                    _ => 100u,
                };
                return new RuntimeFilterModel(pct?.Numerator ?? 0, denominator, r.UseIndependentRandomness);
            }
            case AccessLogFilter.FilterSpecifierOneofCase.AndFilter:
                return Combine(f.AndFilter.Filters, path + ".and_filter.filters", errors, l => new AndFilterModel(l));
            case AccessLogFilter.FilterSpecifierOneofCase.OrFilter:
                return Combine(f.OrFilter.Filters, path + ".or_filter.filters", errors, l => new OrFilterModel(l));
            case AccessLogFilter.FilterSpecifierOneofCase.None:
                errors.Add(path, "an access log filter needs one filter specifier");
                return null;
            default:
                // traceable, grpc_status, metadata, extension and log_type filters are refused by the support checker.
                return null;
        }
    }

    private static AccessLogFilterModel? Comparison(ComparisonFilter? c, string path, ConfigErrors errors, Func<ComparisonOp, uint, AccessLogFilterModel> make)
    {
        if (c is null)
        {
            errors.Add(path, "comparison is required");
            return null;
        }
        if (c.Value is { } v && string.IsNullOrEmpty(v.RuntimeKey)) errors.Add(path + ".value.runtime_key", "runtime_key is required");
        return make((ComparisonOp)(int)c.Op, c.Value?.DefaultValue ?? 0);
    }

    private static AccessLogFilterModel? Combine(IList<AccessLogFilter> filters, string path, ConfigErrors errors, Func<IReadOnlyList<AccessLogFilterModel>, AccessLogFilterModel> make)
    {
        if (filters.Count < 2) errors.Add(path, "at least 2 filters are required");
        var list = new List<AccessLogFilterModel>(filters.Count);
        for (var i = 0; i < filters.Count; i++)
        {
            var m = Filter(filters[i], $"{path}[{i}]", errors);
            if (m is not null) list.Add(m);
        }
        return make(list);
    }
}
