using System.Collections;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Validation;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// Makes a message printable as JSON when it holds <c>Any</c> values of types csenvoy does not know: the typed
/// entries of <c>metadata.typed_filter_metadata</c> are data for whatever reads them and may be of any type, and the
/// JSON formatter refuses a type it cannot resolve. Each such value is shown as a <c>google.protobuf.Struct</c> with
/// <c>unknown_type</c> (its type URL) and <c>value</c> (its bytes, base64). Known <c>Any</c> values (every resource in
/// a config dump is one) are opened and rewritten inside. Admin requests only; the original is never modified.
/// </summary>
internal static class UnknownAnyRewriter
{
    public static IMessage ForJson(IMessage message, ProtoRegistry registry)
    {
        var copy = message.Descriptor.Parser.ParseFrom(message.ToByteString());
        Rewrite(copy, registry);
        return copy;
    }

    /// <summary>Rewrites <paramref name="message"/> in place; true when anything below it changed.</summary>
    private static bool Rewrite(IMessage message, ProtoRegistry registry)
    {
        var changed = false;
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            if (field.FieldType != FieldType.Message || IsOpaque(field.MessageType, field)) continue;
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                var map = (IDictionary)value;
                foreach (var key in new ArrayList(map.Keys))
                    if (map[key] is IMessage v && Fix(v, registry, ref changed) is var replacement && !ReferenceEquals(replacement, v))
                        map[key] = replacement;
            }
            else if (field.IsRepeated)
            {
                var list = (IList)value;
                for (var i = 0; i < list.Count; i++)
                    if (list[i] is IMessage v && Fix(v, registry, ref changed) is var replacement && !ReferenceEquals(replacement, v))
                        list[i] = replacement;
            }
            else if (value is IMessage v && Fix(v, registry, ref changed) is var replacement && !ReferenceEquals(replacement, v))
            {
                field.Accessor.SetValue(message, replacement);
            }
        }
        return changed;
    }

    /// <summary>A message value rewritten: a replacement for an Any whose content changes (or whose type is unknown),
    /// else the same object, rewritten in place. Sets <paramref name="changed"/> when anything changed.</summary>
    private static IMessage Fix(IMessage v, ProtoRegistry registry, ref bool changed)
    {
        if (v is not Any any)
        {
            changed |= Rewrite(v, registry);
            return v;
        }
        if (any.TypeUrl.Length == 0) return v;
        var d = registry.Find(any.TypeUrl);
        if (d is null)
        {
            changed = true;
            return Any.Pack(new Struct
            {
                Fields =
                {
                    ["unknown_type"] = Value.ForString(any.TypeUrl),
                    ["value"] = Value.ForString(any.Value.ToBase64()),
                },
            });
        }
        IMessage inner;
        try
        {
            inner = d.Parser.ParseFrom(any.Value);
        }
        catch (InvalidProtocolBufferException)
        {
            return v; // the formatter reports bytes that are not their type
        }
        if (!Rewrite(inner, registry)) return v;
        changed = true;
        return new Any { TypeUrl = any.TypeUrl, Value = inner.ToByteString() };
    }

    /// <summary>Well-known value types hold no Any (and wrappers surface as plain values), nor do maps of scalars.</summary>
    private static bool IsOpaque(MessageDescriptor type, FieldDescriptor field) =>
        SupportChecker.IsWellKnownValue(type) || (field.IsMap && field.MessageType.FindFieldByNumber(2) is { FieldType: not FieldType.Message });
}
