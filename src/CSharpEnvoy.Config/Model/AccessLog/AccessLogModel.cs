using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.AccessLog;

internal enum AccessLogSink { File, Stdout, Stderr }

/// <summary>One validated <c>envoy.config.accesslog.v3.AccessLog</c> of a connection manager.</summary>
/// <param name="ConfigPath">Where the logger is in the bootstrap, for errors raised when its file is opened.</param>
internal sealed record AccessLogModel(string Name, AccessLogSink Sink, string? Path, AccessLogFormatModel Format, AccessLogFilterModel? Filter, string ConfigPath);

/// <summary>A parsed <c>SubstitutionFormatString</c>: a text template or a JSON template (exactly one is set).</summary>
/// <param name="TypedJson">False only for the legacy <c>FileAccessLog.json_format</c>, whose values are all strings.</param>
internal sealed record AccessLogFormatModel(IReadOnlyList<FormatToken>? Text, JsonFormatNode? Json, bool OmitEmptyValues, bool TypedJson = true)
{
    /// <summary>Envoy's default access log format (docs: "Default format string").</summary>
    public const string DefaultFormat =
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% " +
        "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" " +
        "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

    public static readonly AccessLogFormatModel Default = new(FormatParser.Parse(DefaultFormat, out _)!, null, false);

    /// <summary>Whether the format uses the command operator <paramref name="command"/> anywhere.</summary>
    public bool Uses(string command) => Text is not null ? Uses(Text, command) : Uses(Json!, command);

    private static bool Uses(IReadOnlyList<FormatToken> tokens, string command)
    {
        foreach (var t in tokens)
            if (t.Command == command) return true;
        return false;
    }

    private static bool Uses(JsonFormatNode node, string command) => node switch
    {
        JsonTemplateNode t => Uses(t.Tokens, command),
        JsonObjectNode o => o.Fields.Any(f => Uses(f.Value, command)),
        JsonListNode l => l.Items.Any(i => Uses(i, command)),
        _ => false,
    };
}

/// <summary>A piece of a format string: a literal, or a command operator <c>%COMMAND(Arg):MaxLength%</c>.</summary>
internal sealed record FormatToken(string? Literal, string Command = "", string Arg = "", int? MaxLength = null)
{
    public bool IsLiteral => Literal is not null;
}

/// <summary>A <c>json_format</c> template. Object keys are sorted, as Envoy writes them.</summary>
internal abstract record JsonFormatNode;
internal sealed record JsonObjectNode(IReadOnlyList<KeyValuePair<string, JsonFormatNode>> Fields) : JsonFormatNode;
internal sealed record JsonListNode(IReadOnlyList<JsonFormatNode> Items) : JsonFormatNode;
/// <summary>A constant already serialized as JSON (number, bool, null, or a string without operators).</summary>
internal sealed record JsonLiteralNode(string Json) : JsonFormatNode;
internal sealed record JsonTemplateNode(IReadOnlyList<FormatToken> Tokens) : JsonFormatNode;

internal enum ComparisonOp { Eq = 0, Ge = 1, Le = 2, Ne = 3 }

/// <summary>An <c>AccessLogFilter</c>.</summary>
internal abstract record AccessLogFilterModel;
internal sealed record StatusCodeFilterModel(ComparisonOp Op, uint Value) : AccessLogFilterModel;
internal sealed record DurationFilterModel(ComparisonOp Op, uint Value) : AccessLogFilterModel;
internal sealed record NotHealthCheckFilterModel : AccessLogFilterModel;
/// <summary>Envoy short flag names; empty means "any flag".</summary>
internal sealed record ResponseFlagFilterModel(IReadOnlyList<string> Flags) : AccessLogFilterModel;
internal sealed record HeaderFilterModel(HeaderMatcherModel Header) : AccessLogFilterModel;
internal sealed record RuntimeFilterModel(uint Numerator, uint Denominator, bool UseIndependentRandomness) : AccessLogFilterModel;
internal sealed record AndFilterModel(IReadOnlyList<AccessLogFilterModel> Filters) : AccessLogFilterModel;
internal sealed record OrFilterModel(IReadOnlyList<AccessLogFilterModel> Filters) : AccessLogFilterModel;
