using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Admin.V3;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using ProtoCla = Envoy.Config.Endpoint.V3.ClusterLoadAssignment;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// Envoy's /config_dump query parameters over the dump's top-level messages: <c>?resource=</c> (the elements of one
/// repeated field, each its own config), <c>?mask=</c> (a FieldMask: on each top-level message, or on each resource
/// with <c>?resource=</c>, where a path may reach into the resource's one <c>Any</c>), and <c>?include_eds</c>.
/// Errors are Envoy's texts and status codes.
/// </summary>
internal static class ConfigDumpQuery
{
    /// <summary>Builds the dump from <paramref name="sections"/> (in order); returns null and the error otherwise.</summary>
    public static (ConfigDump? Dump, int Status, string? Error) Build(IReadOnlyList<IMessage> sections, string? resource, string? mask)
    {
        var dump = new ConfigDump();
        var fieldMask = mask is null ? null : FieldMask.FromString(mask);
        if (resource is not null)
        {
            foreach (var section in sections)
            {
                var field = section.Descriptor.FindFieldByName(resource);
                if (field is null) continue;
                if (!field.IsRepeated)
                    return (null, 400, $"{field.Name} is not a repeated field. Use ?mask={field.Name} to get only this field");
                foreach (IMessage item in (System.Collections.IList)field.Accessor.GetValue(section))
                {
                    var element = item;
                    if (fieldMask is not null)
                    {
                        element = TrimResource(fieldMask, item)!;
                        if (element is null) return (null, 400, $"FieldMask {fieldMask} could not be successfully used.");
                    }
                    dump.Configs.Add(Any.Pack(element));
                }
                return (dump, 200, null);
            }
            return (null, 404, $"{resource} not found in config dump");
        }
        foreach (var section in sections)
        {
            var message = section;
            if (fieldMask is not null)
            {
                // Each section has its own valid paths: a mask that does not fit one skips it.
                if (Trim(fieldMask, message) is not { } trimmed) continue;
                message = trimmed;
            }
            dump.Configs.Add(Any.Pack(message));
        }
        if (dump.Configs.Count == 0 && mask is not null)
            return (null, 400, $"FieldMask {mask} could not be successfully applied to any configs.");
        return (dump, 200, null);
    }

    /// <summary>A copy of <paramref name="message"/> with only the masked fields; null when a path is not a field path.</summary>
    private static IMessage? Trim(FieldMask mask, IMessage message)
    {
        foreach (var path in mask.Paths)
            if (!IsValidPath(message.Descriptor, path)) return null;
        var copy = message.Descriptor.Parser.ParseFrom(ByteString.Empty);
        mask.Merge(message, copy);
        return copy;
    }

    private static bool IsValidPath(MessageDescriptor descriptor, string path)
    {
        var d = descriptor;
        var parts = path.Split('.');
        for (var i = 0; i < parts.Length; i++)
        {
            var f = d?.FindFieldByName(parts[i]);
            if (f is null) return false;
            if (i < parts.Length - 1)
            {
                if (f.IsRepeated || f.FieldType != FieldType.Message) return false;
                d = f.MessageType;
            }
        }
        return true;
    }

    /// <summary>Envoy's resource trim: paths starting with the resource's (single, non-repeated) <c>Any</c> field apply to
    /// the message inside it ("cluster.name" on a StaticCluster keeps the cluster's name).</summary>
    private static IMessage? TrimResource(FieldMask mask, IMessage message)
    {
        var outer = new FieldMask();
        var inner = new FieldMask();
        FieldDescriptor? anyField = null;
        foreach (var path in mask.Paths)
        {
            var dot = path.IndexOf('.');
            var head = dot < 0 ? path : path[..dot];
            var f = message.Descriptor.FindFieldByName(head);
            if (f is { IsRepeated: false, FieldType: FieldType.Message } && f.MessageType.FullName == Any.Descriptor.FullName)
            {
                if (anyField is not null && anyField != f) return null;
                anyField = f;
                if (!outer.Paths.Contains(head)) outer.Paths.Add(head);
                if (dot >= 0) inner.Paths.Add(path[(dot + 1)..]);
            }
            else outer.Paths.Add(path);
        }
        var result = Trim(outer, message);
        if (result is null || anyField is null || inner.Paths.Count == 0) return result;
        if (anyField.Accessor.GetValue(result) is not Any any) return result;
        var descriptor = ProtoRegistry.Default.Find(any.TypeUrl);
        if (descriptor is null) return null;
        var innerTrimmed = Trim(inner, descriptor.Parser.ParseFrom(any.Value));
        if (innerTrimmed is null) return null;
        anyField.Accessor.SetValue(result, Any.Pack(innerTrimmed));
        return result;
    }

    /// <summary>Envoy's <c>?include_eds</c> section: each active cluster's hosts as a ClusterLoadAssignment (named by
    /// its EDS service name, else the cluster name); dynamic for clusters from CDS, static otherwise.</summary>
    public static EndpointsConfigDump Endpoints(ClusterManager clusters, Func<string, bool> addedViaApi)
    {
        var dump = new EndpointsConfigDump();
        foreach (var c in clusters.Clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            var cla = new ProtoCla { ClusterName = c.Model.EdsServiceName ?? c.Name };
            foreach (var h in c.PrioritySet.Hosts)
            {
                var lle = new Envoy.Config.Endpoint.V3.LocalityLbEndpoints
                {
                    Locality = new Envoy.Config.Core.V3.Locality { Region = h.Locality.Region, Zone = h.Locality.Zone, SubZone = h.Locality.SubZone },
                    Priority = h.Priority,
                };
                if (h.LocalityWeight != 0) lle.LoadBalancingWeight = h.LocalityWeight;
                var address = h.Address.IsPipe
                    ? new Envoy.Config.Core.V3.Address { Pipe = new Envoy.Config.Core.V3.Pipe { Path = h.Address.PipePath } }
                    : new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = h.Address.Address, PortValue = (uint)h.Address.Port } };
                lle.LbEndpoints.Add(new Envoy.Config.Endpoint.V3.LbEndpoint
                {
                    Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = address, Hostname = h.Hostname ?? "" },
                    LoadBalancingWeight = h.Weight,
                });
                cla.Endpoints.Add(lle);
            }
            var packed = Any.Pack(cla);
            if (addedViaApi(c.Name)) dump.DynamicEndpointConfigs.Add(new EndpointsConfigDump.Types.DynamicEndpointConfig { EndpointConfig = packed });
            else dump.StaticEndpointConfigs.Add(new EndpointsConfigDump.Types.StaticEndpointConfig { EndpointConfig = packed });
        }
        return dump;
    }
}
