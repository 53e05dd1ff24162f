using System.Text;
using System.Text.Unicode;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.Config.Translation;

/// <summary>
/// The EDS fast path: an <c>envoy.config.endpoint.v3.ClusterLoadAssignment</c> translated straight from its wire bytes
/// into endpoints, without the four protobuf messages per endpoint (<c>LbEndpoint</c>, <c>Endpoint</c>, <c>Address</c>,
/// <c>SocketAddress</c>) the generated parser builds. A 10,000-cluster push carries 100,000 endpoints that almost all
/// use the same few fields, so this takes the plain case only: <c>cluster_name</c>, <c>endpoints</c> with
/// <c>locality</c>, <c>priority</c>, <c>load_balancing_weight</c> and <c>lb_endpoints</c> of
/// <c>endpoint.address.socket_address</c> (TCP, IP address, <c>port_value</c>, <c>ipv4_compat</c>),
/// <c>endpoint.hostname</c>, <c>health_status</c> and <c>load_balancing_weight</c>, every value valid, and
/// <c>metadata</c> (which nothing reads yet: it is only checked to parse, as the full path would).
/// Anything else (another field, a field twice where the parser would merge, a value that is an error, bytes that do
/// not parse) returns null and the caller takes the full path (parse, support check,
/// <see cref="ClusterTranslator.TranslateLoadAssignment"/>), which accepts or reports it with its path. So the fast path
/// only ever produces what the full path would have produced.
/// </summary>
internal static class LoadAssignmentWireTranslator
{
    // Field numbers of the v3 messages read here (protos/envoy/config/endpoint/v3, core/v3).
    private const int ClaClusterName = 1, ClaEndpoints = 2;
    private const int LleLocality = 1, LleLbEndpoints = 2, LleWeight = 3, LlePriority = 5, LleMetadata = 9;
    private const int LocRegion = 1, LocZone = 2, LocSubZone = 3;
    private const int LbeEndpoint = 1, LbeHealthStatus = 2, LbeMetadata = 3, LbeWeight = 4;
    private const int EpAddress = 1, EpHostname = 3;
    private const int AddrSocketAddress = 1;
    private const int SaProtocol = 1, SaAddress = 2, SaPortValue = 3, SaIpv4Compat = 6;
    private const int WrapperValue = 1;

    private const int Varint = 0, Len = 2;
    private const uint MaxHealthStatus = (uint)EndpointHealthStatus.Degraded;

    /// <summary>The assignment's cluster name and endpoints, or null when the full path must look at it.</summary>
    public static LoadAssignmentModel? TryTranslate(ReadOnlySpan<byte> wire, out string clusterName)
    {
        clusterName = "";
        var endpoints = new LoadAssignmentModel();
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type)) return null;
            switch (field)
            {
                case ClaClusterName when type == Len:
                    if (!r.TryString(out clusterName)) return null;
                    break;
                case ClaEndpoints when type == Len:
                    if (!r.TryBytes(out var lle) || !TryLocalityLbEndpoints(lle, endpoints)) return null;
                    break;
                default:
                    return null;
            }
        }
        return clusterName.Length == 0 ? null : endpoints;
    }

    private static bool TryLocalityLbEndpoints(ReadOnlySpan<byte> wire, LoadAssignmentModel endpoints)
    {
        // Locality, priority and weight may follow the endpoints on the wire: read them first.
        var locality = LocalityModel.Empty;
        uint priority = 0;
        uint? localityWeight = null;
        bool seenLocality = false, seenWeight = false, seenMetadata = false;
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type)) return false;
            switch (field)
            {
                case LleLocality when type == Len && !seenLocality:
                    seenLocality = true;
                    if (!r.TryBytes(out var loc) || !TryLocality(loc, out locality)) return false;
                    break;
                case LleLbEndpoints when type == Len:
                    if (!r.TryBytes(out _)) return false;
                    break;
                case LleWeight when type == Len && !seenWeight:
                    seenWeight = true;
                    if (!r.TryBytes(out var w) || !TryUInt32Value(w, out var weight) || weight == 0) return false;
                    localityWeight = weight;
                    break;
                case LlePriority when type == Varint:
                    if (!r.TryUInt32(out priority)) return false;
                    break;
                case LleMetadata when type == Len && !seenMetadata:
                    seenMetadata = true;
                    if (!r.TryBytes(out var lleMetadata) || !IsMetadata(lleMetadata)) return false;
                    break;
                default:
                    return false;
            }
        }
        if (priority > ClusterTranslator.MaxPriority) return false;

        ulong weightSum = 0;
        r = new WireReader(wire);
        while (!r.AtEnd)
        {
            // The first pass checked every field: only varints and length-delimited ones are here.
            r.TryTag(out var field, out var type);
            if (type == Varint)
            {
                r.TryVarint(out _);
                continue;
            }
            r.TryBytes(out var bytes);
            if (field != LleLbEndpoints) continue;
            if (!TryLbEndpoint(bytes, locality, priority, localityWeight, out var endpoint)) return false;
            weightSum += endpoint.Weight;
            endpoints.Add(endpoint);
        }
        return weightSum <= uint.MaxValue;
    }

    private static bool TryLbEndpoint(ReadOnlySpan<byte> wire, LocalityModel locality, uint priority, uint? localityWeight,
        out EndpointModel endpoint)
    {
        endpoint = null!;
        SocketAddressModel? address = null;
        string? hostname = null;
        uint health = 0, weight = 1;
        bool seenWeight = false, seenMetadata = false;
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type)) return false;
            switch (field)
            {
                case LbeEndpoint when type == Len && address is null:
                    if (!r.TryBytes(out var ep) || !TryEndpoint(ep, out address, out hostname)) return false;
                    break;
                case LbeHealthStatus when type == Varint:
                    if (!r.TryUInt32(out health) || health > MaxHealthStatus) return false;
                    break;
                case LbeWeight when type == Len && !seenWeight:
                    seenWeight = true;
                    if (!r.TryBytes(out var w) || !TryUInt32Value(w, out weight) || weight == 0) return false;
                    break;
                case LbeMetadata when type == Len && !seenMetadata:
                    seenMetadata = true;
                    if (!r.TryBytes(out var metadata) || !IsMetadata(metadata)) return false;
                    break;
                default:
                    return false;
            }
        }
        if (address is null) return false;
        endpoint = new EndpointModel(address, hostname, locality, weight, (EndpointHealthStatus)health, DisableActiveHealthCheck: false,
            priority, localityWeight);
        return true;
    }

    private static bool TryEndpoint(ReadOnlySpan<byte> wire, out SocketAddressModel? address, out string? hostname)
    {
        address = null;
        hostname = null;
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type)) return false;
            switch (field)
            {
                case EpAddress when type == Len && address is null:
                    if (!r.TryBytes(out var a) || !TryAddress(a, out address)) return false;
                    break;
                case EpHostname when type == Len:
                    if (!r.TryString(out var h)) return false;
                    hostname = h.Length == 0 ? null : h;
                    break;
                default:
                    return false;
            }
        }
        return address is not null;
    }

    private static bool TryAddress(ReadOnlySpan<byte> wire, out SocketAddressModel? address)
    {
        address = null;
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type) || field != AddrSocketAddress || type != Len || address is not null) return false;
            if (!r.TryBytes(out var sa) || !TrySocketAddress(sa, out address)) return false;
        }
        return address is not null;
    }

    private static bool TrySocketAddress(ReadOnlySpan<byte> wire, out SocketAddressModel? address)
    {
        address = null;
        var host = "";
        uint port = 0, protocol = 0;
        var ipv4Compat = false;
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type)) return false;
            switch (field)
            {
                case SaProtocol when type == Varint:
                    if (!r.TryUInt32(out protocol)) return false;
                    break;
                case SaAddress when type == Len:
                    if (!r.TryString(out host)) return false;
                    break;
                case SaPortValue when type == Varint:
                    if (!r.TryUInt32(out port)) return false;
                    break;
                case SaIpv4Compat when type == Varint:
                    if (!r.TryVarint(out var b)) return false;
                    ipv4Compat = b != 0;
                    break;
                default:
                    return false;
            }
        }
        // TCP, a port in range, and an IP address (EDS endpoints are never resolved).
        if (protocol != 0 || port is 0 or > 65535 || host.Length == 0 || !System.Net.IPAddress.IsValid(host)) return false;
        address = new SocketAddressModel(host, (int)port, null, ipv4Compat);
        return true;
    }

    private static bool TryLocality(ReadOnlySpan<byte> wire, out LocalityModel locality)
    {
        locality = LocalityModel.Empty;
        string region = "", zone = "", subZone = "";
        var r = new WireReader(wire);
        while (!r.AtEnd)
        {
            if (!r.TryTag(out var field, out var type) || type != Len) return false;
            var ok = field switch
            {
                LocRegion => r.TryString(out region),
                LocZone => r.TryString(out zone),
                LocSubZone => r.TryString(out subZone),
                _ => false,
            };
            if (!ok) return false;
        }
        if (region.Length + zone.Length + subZone.Length > 0) locality = new LocalityModel(region, zone, subZone);
        return true;
    }

    /// <summary>Whether the bytes parse as a <c>core.v3.Metadata</c> (Istio tags every endpoint); the value is not kept.</summary>
    private static bool IsMetadata(ReadOnlySpan<byte> wire)
    {
        try
        {
            Envoy.Config.Core.V3.Metadata.Parser.ParseFrom(wire);
            return true;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return false;
        }
    }

    /// <summary>A <c>google.protobuf.UInt32Value</c> (absent value: 0).</summary>
    private static bool TryUInt32Value(ReadOnlySpan<byte> wire, out uint value)
    {
        value = 0;
        var r = new WireReader(wire);
        while (!r.AtEnd)
            if (!r.TryTag(out var field, out var type) || field != WrapperValue || type != Varint || !r.TryUInt32(out value))
                return false;
        return true;
    }

    /// <summary>Protobuf's wire format over a span: varints, tags and length-delimited fields, every read bounds-checked.</summary>
    private ref struct WireReader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _pos;

        public readonly bool AtEnd => _pos >= _bytes.Length;

        public bool TryVarint(out ulong value)
        {
            value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _bytes.Length) return false;
                var b = _bytes[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return true;
            }
            return false;
        }

        public bool TryUInt32(out uint value)
        {
            value = 0;
            if (!TryVarint(out var v) || v > uint.MaxValue) return false;
            value = (uint)v;
            return true;
        }

        public bool TryTag(out int field, out int wireType)
        {
            field = wireType = 0;
            if (!TryVarint(out var tag) || tag > int.MaxValue || tag >> 3 == 0) return false;
            field = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            return true;
        }

        public bool TryBytes(out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!TryVarint(out var length) || length > (ulong)(_bytes.Length - _pos)) return false;
            value = _bytes.Slice(_pos, (int)length);
            _pos += (int)length;
            return true;
        }

        public bool TryString(out string value)
        {
            value = "";
            if (!TryBytes(out var utf8) || !Utf8.IsValid(utf8)) return false;
            value = utf8.Length == 0 ? "" : Encoding.UTF8.GetString(utf8);
            return true;
        }
    }
}
