using System.Collections;
using System.Collections.Concurrent;
using System.Text;
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
        // One path list per thread, reused: a 10,000-resource response is checked resource by resource (on all cores).
        var segments = t_segments ?? [];
        t_segments = null; // a nested check (none today) would take a list of its own
        try
        {
            new Walk(path, errors, registry ?? ProtoRegistry.Default, segments).Message(message, isExtensionPoint: false);
        }
        finally
        {
            segments.Clear();
            t_segments = segments;
        }
    }

    [ThreadStatic]
    private static List<(string? Name, int Index, object? Key)>? t_segments;

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

    /// <summary>One field a walk has to look at: one that is not supported (an error when set), accepted with a
    /// warning, or a message whose type has such fields below it (or an Any). Supported scalars and messages whose
    /// whole subtree is supported are left out of the plan: a control plane's 100,000 endpoints are checked by
    /// looking at a handful of fields each, without building a path string for every field.</summary>
    private readonly record struct FieldPlan(FieldDescriptor Field, FieldSupport? Support, bool Descend, bool ExtensionPoint);

    private static readonly ConcurrentDictionary<MessageDescriptor, FieldPlan[]> s_plans = new();

    private static FieldPlan[] PlanOf(MessageDescriptor d) =>
        s_plans.TryGetValue(d, out var plan) ? plan : BuildPlan(d, new HashSet<MessageDescriptor>());

    private static FieldPlan[] BuildPlan(MessageDescriptor d, HashSet<MessageDescriptor> building)
    {
        if (s_plans.TryGetValue(d, out var known)) return known;
        building.Add(d);
        var fields = new List<FieldPlan>();
        foreach (var field in d.Fields.InFieldNumberOrder())
        {
            var support = SupportedFields.Lookup(field.FullName);
            if (support is null || support.Warning is not null)
            {
                fields.Add(new FieldPlan(field, support, false, false));
                continue;
            }
            if (field.FieldType != FieldType.Message) continue;
            var type = field.IsMap ? field.MessageType.FindFieldByNumber(2) is { FieldType: FieldType.Message } v ? v.MessageType : null : field.MessageType;
            if (type is null || !NeedsWalk(type, building)) continue;
            fields.Add(new FieldPlan(field, support, true, s_extensionPoints.Contains(field.FullName)));
        }
        building.Remove(d);
        var plan = fields.ToArray();
        s_plans.TryAdd(d, plan);
        return plan;
    }

    /// <summary>Whether a value of this type can hold anything to report. A type still being planned (a recursive
    /// message) counts as needing a walk.</summary>
    private static bool NeedsWalk(MessageDescriptor type, HashSet<MessageDescriptor> building) =>
        type.File == AnyReflection.Descriptor ||
        (!IsOpaque(type) && (building.Contains(type) || BuildPlan(type, building).Length > 0));

    /// <summary>The path below the checked resource as segments, turned into text only when something is reported.</summary>
    private sealed class Walk(string root, ConfigErrors errors, ProtoRegistry registry, List<(string? Name, int Index, object? Key)> path)
    {
        private readonly List<(string? Name, int Index, object? Key)> _path = path;

        private string Path
        {
            get
            {
                var sb = new StringBuilder(root);
                foreach (var (name, index, key) in _path)
                {
                    if (name is not null)
                    {
                        if (sb.Length > 0) sb.Append('.');
                        sb.Append(name);
                    }
                    else if (key is not null) sb.Append("[\"").Append(key).Append("\"]");
                    else sb.Append('[').Append(index).Append(']');
                }
                return sb.ToString();
            }
        }

        public void Message(IMessage message, bool isExtensionPoint)
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
                    if (!isExtensionPoint) errors.Add(Path, $"unsupported type '{any.TypeUrl}'");
                    return;
                }
                var inner = registry.Unpack(any, out var error);
                if (inner is not null) Message(inner, isExtensionPoint: false);
                // At extension points the translator names the extension's role ("unsupported HTTP filter ..."); elsewhere say it here.
                else if (!isExtensionPoint) errors.Add(Path, error!);
                return;
            }
            if (IsOpaque(d)) return;

            foreach (var (field, support, descend, ext) in PlanOf(d))
            {
                if (!descend)
                {
                    if (!IsSet(message, field)) continue;
                    _path.Add((field.Name, 0, null));
                    // Not in the plan unless unsupported, or accepted as a whole with a warning (its content not acted on).
                    if (support is null) errors.Add(Path, $"field '{field.Name}' of {d.FullName} is not supported by csenvoy (see docs/compatibility.md)");
                    else errors.Warn(Path, support.Warning!);
                    _path.RemoveAt(_path.Count - 1);
                    continue;
                }
                var value = field.Accessor.GetValue(message);
                _path.Add((field.Name, 0, null));
                if (field.IsMap)
                {
                    foreach (DictionaryEntry e in (IDictionary)value)
                        if (e.Value is IMessage m)
                        {
                            _path.Add((null, 0, e.Key));
                            Message(m, ext);
                            _path.RemoveAt(_path.Count - 1);
                        }
                }
                else if (field.IsRepeated)
                {
                    var list = (IList)value;
                    for (var i = 0; i < list.Count; i++)
                        if (list[i] is IMessage m)
                        {
                            _path.Add((null, i, null));
                            Message(m, ext);
                            _path.RemoveAt(_path.Count - 1);
                        }
                }
                else if (value is IMessage single)
                {
                    // Wrapper fields surface as nullable primitives and have nothing inside to check.
                    Message(single, ext);
                }
                _path.RemoveAt(_path.Count - 1);
            }
        }
    }

    /// <summary>Well-known value types (durations, wrappers, structs) have no sub-fields to support, and
    /// <c>core.v3.Metadata</c> is data for whatever reads it (its typed entries may be of any type, known or not).</summary>
    private static bool IsOpaque(MessageDescriptor d) => IsWellKnownValue(d) || d.FullName == "envoy.config.core.v3.Metadata";

    /// <summary>Durations, wrappers, structs, timestamps and Empty: values with no config fields and no Any inside.</summary>
    internal static bool IsWellKnownValue(MessageDescriptor d) =>
        d.File == DurationReflection.Descriptor || d.File == WrappersReflection.Descriptor ||
        d.File == StructReflection.Descriptor || d.File == TimestampReflection.Descriptor ||
        d.File == EmptyReflection.Descriptor;

    public static bool IsSet(IMessage message, FieldDescriptor field)
    {
        // Presence first: it needs no value (a oneof member or optional scalar would be boxed to read it).
        if (field.HasPresence) return field.Accessor.HasValue(message);
        var value = field.Accessor.GetValue(message);
        if (field.IsMap) return ((IDictionary)value).Count > 0;
        if (field.IsRepeated) return ((IList)value).Count > 0;
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
