using System.Collections;
using CSharpEnvoy.Config.Loading;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.Config.Validation;

/// <summary>
/// Walks a parsed config and reports every field that is set but that csenvoy does not implement, with its path.
/// This is what keeps the rule "never ignore a field silently": a field is either in <see cref="SupportedFields"/>
/// (implemented, or accepted with a logged warning that says what it does not do), or it is an error.
/// </summary>
internal static class SupportChecker
{
    public static void Check(IMessage message, string path, ConfigErrors errors, ProtoRegistry? registry = null)
    {
        registry ??= ProtoRegistry.Default;
        Walk(message, path, errors, registry, isExtensionPoint: false);
    }

    /// <summary>Any-typed fields whose type the translator resolves as an extension and reports itself.</summary>
    private static readonly HashSet<string> s_extensionPoints = new(StringComparer.Ordinal)
    {
        "envoy.config.listener.v3.Filter.typed_config",
        "envoy.config.listener.v3.ListenerFilter.typed_config",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter.typed_config",
        "envoy.config.cluster.v3.Cluster.typed_extension_protocol_options",
        "envoy.config.metrics.v3.StatsSink.typed_config",
        "envoy.config.accesslog.v3.AccessLog.typed_config",
        // Load balancing policies: a list of alternatives, so an unknown one is not an error by itself (LoadBalancingTranslator).
        "envoy.config.core.v3.TypedExtensionConfig.typed_config",
        "envoy.config.core.v3.TransportSocket.typed_config",
        // Retry host predicates: RouterPolicyTranslator accepts previous_hosts and names any other.
        "envoy.config.route.v3.RetryPolicy.RetryHostPredicate.typed_config",
        // typed_per_filter_config: PerFilterConfigTranslator resolves each entry by its per-route type.
        "envoy.config.route.v3.Route.typed_per_filter_config",
        "envoy.config.route.v3.VirtualHost.typed_per_filter_config",
        "envoy.config.route.v3.RouteConfiguration.typed_per_filter_config",
        "envoy.config.route.v3.FilterConfig.config",
        // Tracers: TracingTranslator names an unsupported provider.
        "envoy.config.trace.v3.Tracing.Http.typed_config",
    };

    private static void Walk(IMessage message, string path, ConfigErrors errors, ProtoRegistry registry, bool isExtensionPoint)
    {
        var d = message.Descriptor;
        if (d.File == AnyReflection.Descriptor)
        {
            var any = (Any)message;
            if (any.TypeUrl.Length == 0) return;
            // An extension type csenvoy does not implement is reported once: by the translator at extension points,
            // here anywhere else.
            if (!ExtensionRegistry.IsSupportedType(any.TypeUrl))
            {
                if (!isExtensionPoint) errors.Add(path, $"unsupported type '{any.TypeUrl}'");
                return;
            }
            var inner = registry.Unpack(any, out var error);
            if (inner is not null) Walk(inner, path, errors, registry, isExtensionPoint: false);
            // At extension points the translator names the extension's role ("unsupported HTTP filter ..."); elsewhere say it here.
            else if (!isExtensionPoint) errors.Add(path, error!);
            return;
        }
        if (IsOpaque(d)) return;

        foreach (var field in d.Fields.InFieldNumberOrder())
        {
            if (!IsSet(message, field)) continue;
            var fieldPath = ConfigErrors.Join(path, field.Name);
            var support = SupportedFields.Lookup(field.FullName);
            if (support is null)
            {
                errors.Add(fieldPath, $"field '{field.Name}' of {d.FullName} is not supported by csenvoy (see docs/compatibility.md)");
                continue;
            }
            if (support.Warning is not null)
            {
                errors.Warn(fieldPath, support.Warning);
                continue; // accepted as a whole; its content is not acted on
            }
            if (field.FieldType != FieldType.Message) continue;
            var ext = s_extensionPoints.Contains(field.FullName);
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                foreach (DictionaryEntry e in (IDictionary)value)
                    if (e.Value is IMessage m) Walk(m, $"{fieldPath}[\"{e.Key}\"]", errors, registry, ext);
            }
            else if (field.IsRepeated)
            {
                var i = 0;
                foreach (var item in (IList)value)
                {
                    if (item is IMessage m) Walk(m, $"{fieldPath}[{i}]", errors, registry, ext);
                    i++;
                }
            }
            else if (value is IMessage single)
            {
                // Wrapper fields surface as nullable primitives and have nothing inside to check.
                Walk(single, fieldPath, errors, registry, ext);
            }
        }
    }

    /// <summary>Well-known value types (durations, wrappers, structs) have no sub-fields to support.</summary>
    private static bool IsOpaque(MessageDescriptor d) =>
        d.File == DurationReflection.Descriptor || d.File == WrappersReflection.Descriptor ||
        d.File == StructReflection.Descriptor || d.File == TimestampReflection.Descriptor ||
        d.File == EmptyReflection.Descriptor;

    public static bool IsSet(IMessage message, FieldDescriptor field)
    {
        var value = field.Accessor.GetValue(message);
        if (field.IsMap) return ((IDictionary)value).Count > 0;
        if (field.IsRepeated) return ((IList)value).Count > 0;
        if (field.HasPresence) return field.Accessor.HasValue(message);
        return value switch
        {
            null => false,
            string s => s.Length > 0,
            bool b => b,
            int i => i != 0,
            long l => l != 0,
            uint u => u != 0,
            ulong ul => ul != 0,
            double dbl => dbl != 0,
            float f => f != 0,
            ByteString bs => bs.Length > 0,
            System.Enum en => Convert.ToInt32(en) != 0,
            _ => true,
        };
    }
}
