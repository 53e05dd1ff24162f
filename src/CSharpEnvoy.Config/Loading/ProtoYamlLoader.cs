using System.Collections;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CSharpEnvoy.Config.Loading;

/// <summary>
/// Turns YAML or JSON (JSON is YAML) into Envoy v3 proto messages by walking the message descriptors, following
/// proto3-JSON rules (durations as "0.25s", wrappers as plain scalars, enums by name, <c>Any</c> by <c>@type</c>)
/// with the leniency Envoy's own loader has and real configs rely on: snake_case and camelCase names,
/// case-insensitive enum names, a single object where a list is expected. Every problem is recorded with the path
/// of the offending field; loading never stops at the first error.
/// </summary>
internal sealed class ProtoYamlLoader
{
    private readonly ProtoRegistry _registry;

    public ProtoYamlLoader(ProtoRegistry? registry = null) => _registry = registry ?? ProtoRegistry.Default;

    /// <summary>Parses YAML text; returns null (with errors) only when the text is not YAML at all.</summary>
    public static YamlNode? ParseYaml(string text, ConfigErrors errors, string what = "config")
    {
        try
        {
            var stream = new YamlStream();
            // Merge keys expand aliases, so the parser bounds its events; a bootstrap of 10,000 clusters needs far more
            // than the library's default of 100,000, and no file can need more than a few per character.
            stream.Load(new MergingParser(new Parser(new StringReader(text)), Math.Max(100_000, text.Length * 2)));
            if (stream.Documents.Count == 0) return new YamlMappingNode();
            if (stream.Documents.Count > 1)
            {
                errors.Add("", $"{what} holds {stream.Documents.Count} YAML documents; exactly one is expected");
                return null;
            }
            return stream.Documents[0].RootNode;
        }
        catch (YamlException ex)
        {
            var msg = ex.InnerException?.Message ?? ex.Message;
            errors.Add("", $"malformed YAML in {what} at line {ex.Start.Line}, column {ex.Start.Column}: {msg}");
            return null;
        }
    }

    public T? Load<T>(string text, ConfigErrors errors, string what = "config") where T : class, IMessage<T>, new()
    {
        var node = ParseYaml(text, errors, what);
        if (node is null) return null;
        var msg = new T();
        ReadMessage(node, msg, "", errors);
        return msg;
    }

    public IMessage? Load(string text, MessageDescriptor descriptor, ConfigErrors errors, string what = "config")
    {
        var node = ParseYaml(text, errors, what);
        if (node is null) return null;
        var msg = NewMessage(descriptor);
        ReadMessage(node, msg, "", errors);
        return msg;
    }

    public void ReadMessage(YamlNode node, IMessage message, string path, ConfigErrors errors)
    {
        var d = message.Descriptor;
        if (IsNull(node)) return;
        if (TryReadWellKnown(node, message, path, errors)) return;
        if (node is not YamlMappingNode map)
        {
            errors.Add(path, $"expected an object for {d.FullName}, found {Describe(node)}");
            return;
        }
        if (ProtoRegistry.IsPlaceholder(d))
        {
            errors.Add(path, $"{d.FullName} is not supported");
            return;
        }

        Dictionary<OneofDescriptor, string>? oneofs = null;
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            var field = FindField(d, key);
            if (field is null)
            {
                if (key == "@type")
                {
                    errors.Add(path, $"'@type' is only valid inside a google.protobuf.Any (here: {d.FullName})");
                    continue;
                }
                errors.Add(ConfigErrors.Join(path, key), $"unknown field '{key}' in {d.FullName}");
                continue;
            }
            var fieldPath = ConfigErrors.Join(path, field.Name);
            if (IsNull(valueNode)) continue; // proto3 JSON: null means "not set"
            var oneof = field.RealContainingOneof;
            if (oneof is not null)
            {
                oneofs ??= new();
                if (oneofs.TryGetValue(oneof, out var other))
                {
                    errors.Add(fieldPath, $"'{field.Name}' and '{other}' are both set, but they belong to the same oneof '{oneof.Name}'");
                    continue;
                }
                oneofs[oneof] = field.Name;
            }
            ReadField(valueNode, message, field, fieldPath, errors);
        }
    }

    private static FieldDescriptor? FindField(MessageDescriptor d, string key)
    {
        var f = d.FindFieldByName(key);
        if (f is not null) return f;
        // proto3 JSON also names every field in lowerCamelCase ("connectTimeout").
        foreach (var field in d.Fields.InDeclarationOrder())
            if (field.JsonName == key) return field;
        return null;
    }

    private void ReadField(YamlNode node, IMessage message, FieldDescriptor field, string path, ConfigErrors errors)
    {
        if (field.IsMap)
        {
            if (node is not YamlMappingNode mapNode)
            {
                errors.Add(path, $"expected a map for '{field.Name}', found {Describe(node)}");
                return;
            }
            var dict = (IDictionary)field.Accessor.GetValue(message);
            var keyField = field.MessageType.FindFieldByNumber(1);
            var valueField = field.MessageType.FindFieldByNumber(2);
            foreach (var (k, v) in mapNode.Children)
            {
                var keyText = (k as YamlScalarNode)?.Value ?? "";
                var entryPath = $"{path}[\"{keyText}\"]";
                var key = ConvertScalar(k, keyField, entryPath, errors);
                var value = ConvertValue(v, valueField, entryPath, errors);
                if (key is not null && value is not null) dict[key] = value;
            }
            return;
        }
        if (field.IsRepeated)
        {
            var list = (IList)field.Accessor.GetValue(message);
            if (node is YamlSequenceNode seq)
            {
                var i = 0;
                foreach (var item in seq.Children)
                {
                    var itemPath = $"{path}[{i++}]";
                    if (IsNull(item))
                    {
                        errors.Add(itemPath, "null is not allowed in a list");
                        continue;
                    }
                    var value = ConvertValue(item, field, itemPath, errors);
                    if (value is not null) list.Add(value);
                }
            }
            else
            {
                // Envoy's loader accepts a single element where a list is expected.
                var value = ConvertValue(node, field, path, errors);
                if (value is not null) list.Add(value);
            }
            return;
        }
        var single = ConvertValue(node, field, path, errors);
        if (single is not null) field.Accessor.SetValue(message, single);
    }

    private object? ConvertValue(YamlNode node, FieldDescriptor field, string path, ConfigErrors errors)
    {
        if (field.FieldType is FieldType.Message or FieldType.Group)
        {
            var msg = NewMessage(field.MessageType);
            ReadMessage(node, msg, path, errors);
            // Generated C# exposes wrapper fields (UInt32Value, BoolValue ...) as nullable primitives.
            return IsWrapper(field.MessageType) ? msg.Descriptor.FindFieldByNumber(1).Accessor.GetValue(msg) : msg;
        }
        return ConvertScalar(node, field, path, errors);
    }

    private static object? ConvertScalar(YamlNode node, FieldDescriptor field, string path, ConfigErrors errors)
    {
        if (node is not YamlScalarNode scalar)
        {
            errors.Add(path, $"expected {ScalarKind(field)} for '{field.Name}', found {Describe(node)}");
            return null;
        }
        var text = scalar.Value ?? "";
        object? result = field.FieldType switch
        {
            FieldType.String => text,
            FieldType.Bool => ParseBool(text),
            FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => ParseInteger(text, out var v) && v >= int.MinValue && v <= int.MaxValue ? (int)v : null,
            FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => ParseInteger(text, out var v) && v >= long.MinValue && v <= long.MaxValue ? (long)v : null,
            FieldType.UInt32 or FieldType.Fixed32 => ParseInteger(text, out var v) && v >= 0 && v <= uint.MaxValue ? (uint)v : null,
            FieldType.UInt64 or FieldType.Fixed64 => ParseInteger(text, out var v) && v >= 0 && v <= ulong.MaxValue ? (ulong)v : null,
            FieldType.Double => ParseDouble(text),
            FieldType.Float => ParseDouble(text) is double dv ? (float)dv : null,
            FieldType.Bytes => ParseBytes(text),
            FieldType.Enum => ParseEnum(field.EnumType, text),
            _ => null,
        };
        if (result is null)
        {
            if (field.FieldType == FieldType.Enum)
                errors.Add(path, $"invalid value '{text}' for enum {field.EnumType.FullName}; expected one of {EnumNames(field.EnumType)}");
            else
                errors.Add(path, $"invalid value '{text}' for '{field.Name}': expected {ScalarKind(field)}");
        }
        return result;
    }

    private static string EnumNames(EnumDescriptor e)
    {
        var sb = new StringBuilder();
        foreach (var v in e.Values)
        {
            if (sb.Length > 0) sb.Append(", ");
            sb.Append(v.Name);
        }
        return sb.ToString();
    }

    private static object? ParseEnum(EnumDescriptor e, string text)
    {
        foreach (var v in e.Values)
            if (string.Equals(v.Name, text, StringComparison.OrdinalIgnoreCase)) return v.Number;
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            foreach (var v in e.Values)
                if (v.Number == n) return n;
        return null;
    }

    private static bool? ParseBool(string text) => text.ToLowerInvariant() switch
    {
        "true" or "yes" or "on" => true,
        "false" or "no" or "off" => false,
        _ => null,
    };

    private static bool ParseInteger(string text, out Int128 value)
    {
        if (Int128.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value)) return true;
        // proto3 JSON allows integral values written as floats ("1e3", "10.0").
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && Math.Floor(d) == d && !double.IsInfinity(d))
        {
            value = (Int128)d;
            return true;
        }
        return false;
    }

    private static double? ParseDouble(string text) => text switch
    {
        "Infinity" or ".inf" or ".Inf" => double.PositiveInfinity,
        "-Infinity" or "-.inf" or "-.Inf" => double.NegativeInfinity,
        "NaN" or ".nan" or ".NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
    };

    private static ByteString? ParseBytes(string text)
    {
        try
        {
            var s = text.Replace('-', '+').Replace('_', '/');
            s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
            return ByteString.CopyFrom(Convert.FromBase64String(s));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static string ScalarKind(FieldDescriptor f) => f.FieldType switch
    {
        FieldType.String => "a string",
        FieldType.Bool => "true or false",
        FieldType.Double or FieldType.Float => "a number",
        FieldType.Bytes => "base64 bytes",
        FieldType.Enum => "an enum name",
        FieldType.UInt32 or FieldType.UInt64 or FieldType.Fixed32 or FieldType.Fixed64 => "a non-negative integer",
        FieldType.Message => "an object",
        _ => "an integer",
    };

    private static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "an object",
        _ => node.NodeType.ToString(),
    };

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private static IMessage NewMessage(MessageDescriptor d) => (IMessage)Activator.CreateInstance(d.ClrType)!;

    // ----- well-known types -----

    private bool TryReadWellKnown(YamlNode node, IMessage message, string path, ConfigErrors errors)
    {
        switch (message)
        {
            case Duration duration when node is YamlScalarNode s:
                if (TryParseDuration(s.Value ?? "", out var dur)) { duration.Seconds = dur.Seconds; duration.Nanos = dur.Nanos; }
                else errors.Add(path, $"invalid duration '{s.Value}': expected seconds with an 's' suffix, e.g. '0.25s' or '15s'");
                return true;
            case Timestamp ts when node is YamlScalarNode s:
                if (DateTimeOffset.TryParse(s.Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var dto))
                {
                    var t = Timestamp.FromDateTimeOffset(dto);
                    ts.Seconds = t.Seconds; ts.Nanos = t.Nanos;
                }
                else errors.Add(path, $"invalid timestamp '{s.Value}': expected RFC 3339");
                return true;
            case FieldMask mask when node is YamlScalarNode s:
                foreach (var p in (s.Value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    mask.Paths.Add(p);
                return true;
            case Struct st:
                if (node is YamlMappingNode m) FillStruct(st, m, path, errors);
                else errors.Add(path, $"expected an object for google.protobuf.Struct, found {Describe(node)}");
                return true;
            case Value v:
                var val = ToValue(node, path, errors);
                v.MergeFrom(val);
                return true;
            case ListValue lv:
                if (node is YamlSequenceNode seq) foreach (var item in seq.Children) lv.Values.Add(ToValue(item, path, errors));
                else errors.Add(path, $"expected a list for google.protobuf.ListValue, found {Describe(node)}");
                return true;
            case Any any:
                ReadAny(node, any, path, errors);
                return true;
        }
        // Wrapper types (UInt32Value, BoolValue, ...) take a plain scalar.
        if (node is YamlScalarNode && IsWrapper(message.Descriptor))
        {
            var valueField = message.Descriptor.FindFieldByNumber(1);
            var v = ConvertScalar(node, valueField, path, errors);
            if (v is not null) valueField.Accessor.SetValue(message, v);
            return true;
        }
        return false;
    }

    private static bool IsWrapper(MessageDescriptor d) =>
        d.File == WrappersReflection.Descriptor;

    private void ReadAny(YamlNode node, Any any, string path, ConfigErrors errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(path, $"expected an object with '@type', found {Describe(node)}");
            return;
        }
        string? typeUrl = null;
        var rest = new YamlMappingNode();
        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode { Value: "@type" } && v is YamlScalarNode tv) typeUrl = tv.Value;
            else rest.Add(k, v);
        }
        if (string.IsNullOrEmpty(typeUrl))
        {
            errors.Add(path, "missing '@type' in typed config");
            return;
        }
        var d = _registry.Find(typeUrl);
        if (d is null)
        {
            // Keep the type URL and let the owner of this extension point report it in its own words
            // ("unsupported HTTP filter ..."); SupportChecker reports it everywhere else.
            any.TypeUrl = typeUrl.Contains('/') ? typeUrl : "type.googleapis.com/" + typeUrl;
            return;
        }
        if (ProtoRegistry.IsPlaceholder(d) || !Validation.ExtensionRegistry.IsSupportedType(d.FullName))
        {
            // A known type csenvoy does not implement: its content is not read (it may use placeholder types), and
            // the extension is reported once, by whoever resolves it ("unsupported HTTP filter ...").
            any.TypeUrl = "type.googleapis.com/" + d.FullName;
            return;
        }
        var inner = NewMessage(d);
        // Well-known types inside Any carry their JSON form under "value".
        if (d.File == DurationReflection.Descriptor || IsWrapper(d) || d.FullName is "google.protobuf.Struct" or "google.protobuf.Value")
        {
            var valueNode = GetChild(rest, "value");
            if (valueNode is not null) ReadMessage(valueNode, inner, path + ".value", errors);
        }
        else
        {
            ReadMessage(rest, inner, path, errors);
        }
        any.TypeUrl = "type.googleapis.com/" + d.FullName;
        any.Value = inner.ToByteString();
    }

    private static YamlNode? GetChild(YamlMappingNode map, string key)
    {
        foreach (var (k, v) in map.Children)
            if (k is YamlScalarNode s && s.Value == key) return v;
        return null;
    }

    private static void FillStruct(Struct st, YamlMappingNode m, string path, ConfigErrors errors)
    {
        foreach (var (k, v) in m.Children)
            st.Fields[(k as YamlScalarNode)?.Value ?? ""] = ToValue(v, path, errors);
    }

    private static Value ToValue(YamlNode node, string path, ConfigErrors errors)
    {
        switch (node)
        {
            case YamlMappingNode m:
                var st = new Struct();
                FillStruct(st, m, path, errors);
                return Value.ForStruct(st);
            case YamlSequenceNode seq:
                var list = new List<Value>();
                foreach (var item in seq.Children) list.Add(ToValue(item, path, errors));
                return Value.ForList(list.ToArray());
            case YamlScalarNode s:
                if (IsNull(s)) return Value.ForNull();
                if (s.Style is ScalarStyle.Plain)
                {
                    if (ParseBool(s.Value!) is bool b && s.Value is "true" or "false") return Value.ForBool(b);
                    if (double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return Value.ForNumber(d);
                }
                return Value.ForString(s.Value ?? "");
        }
        return Value.ForNull();
    }

    /// <summary>proto3-JSON duration: optional sign, seconds with up to 9 fractional digits, then 's'.</summary>
    public static bool TryParseDuration(string text, out Duration duration)
    {
        duration = new Duration();
        text = text.Trim();
        if (text.Length < 2 || text[^1] != 's') return false;
        var body = text.AsSpan(0, text.Length - 1);
        var negative = false;
        if (body.Length > 0 && body[0] == '-') { negative = true; body = body[1..]; }
        var dot = body.IndexOf('.');
        var secPart = dot < 0 ? body : body[..dot];
        var fracPart = dot < 0 ? ReadOnlySpan<char>.Empty : body[(dot + 1)..];
        if (secPart.Length == 0 && fracPart.Length == 0) return false;
        if (fracPart.Length > 9) return false;
        long seconds = 0;
        if (secPart.Length > 0 && !long.TryParse(secPart, NumberStyles.None, CultureInfo.InvariantCulture, out seconds)) return false;
        var nanos = 0;
        if (fracPart.Length > 0)
        {
            if (!int.TryParse(fracPart, NumberStyles.None, CultureInfo.InvariantCulture, out var frac)) return false;
            for (var i = fracPart.Length; i < 9; i++) frac *= 10;
            nanos = frac;
        }
        if (seconds > 315_576_000_000L) return false;
        duration.Seconds = negative ? -seconds : seconds;
        duration.Nanos = negative ? -nanos : nanos;
        return true;
    }
}
