using System.Formats.Asn1;
using System.Net;
using System.Text;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.DataPlane.Http;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>
/// A format compiled once per config (text or JSON) into segments; formatting a line walks them and appends to a
/// StringBuilder, with no parsing and, for the usual operators, no allocation.
/// </summary>
internal sealed class AccessLogFormatter
{
    private readonly Segment[]? _text;
    private readonly JsonPart? _json;
    private readonly bool _omitEmpty;
    private readonly bool _typedJson;

    public AccessLogFormatter(AccessLogFormatModel model)
    {
        _omitEmpty = model.OmitEmptyValues;
        _typedJson = model.TypedJson;
        if (model.Text is { } text) _text = Compile(text);
        else _json = CompileJson(model.Json!);
    }

    public static readonly AccessLogFormatter Default = new(AccessLogFormatModel.Default);

    public static Segment[] Compile(IReadOnlyList<FormatToken> tokens)
    {
        var segments = new Segment[tokens.Count];
        for (var i = 0; i < tokens.Count; i++) segments[i] = new Segment(tokens[i]);
        return segments;
    }

    public void Format(StringBuilder sb, in AccessLogContext c)
    {
        if (_text is not null)
        {
            foreach (var s in _text)
                if (!s.AppendText(sb, c) && !_omitEmpty) sb.Append('-');
            return;
        }
        WriteJson(sb, _json!, c);
        sb.Append('\n');
    }

    // ----- JSON -----

    private abstract class JsonPart;
    private sealed class JsonObject(string[] keys, JsonPart[] values) : JsonPart
    {
        public readonly string[] Keys = keys; // already quoted, with the colon: "\"key\":"
        public readonly JsonPart[] Values = values;
    }
    private sealed class JsonList(JsonPart[] items) : JsonPart
    {
        public readonly JsonPart[] Items = items;
    }
    private sealed class JsonLiteral(string json) : JsonPart
    {
        public readonly string Json = json;
    }
    private sealed class JsonTemplate(Segment[] segments) : JsonPart
    {
        public readonly Segment[] Segments = segments;
    }

    private static JsonPart CompileJson(JsonFormatNode node) => node switch
    {
        JsonObjectNode o => new JsonObject(
            o.Fields.Select(f => JsonText.Quote(f.Key) + ":").ToArray(),
            o.Fields.Select(f => CompileJson(f.Value)).ToArray()),
        JsonListNode l => new JsonList(l.Items.Select(CompileJson).ToArray()),
        JsonLiteralNode lit => new JsonLiteral(lit.Json),
        JsonTemplateNode t => new JsonTemplate(Compile(t.Tokens)),
        _ => throw new ArgumentOutOfRangeException(nameof(node)),
    };

    private void WriteJson(StringBuilder sb, JsonPart part, in AccessLogContext c)
    {
        switch (part)
        {
            case JsonObject o:
                sb.Append('{');
                var first = true;
                for (var i = 0; i < o.Keys.Length; i++)
                {
                    var v = o.Values[i];
                    // omit_empty_values drops a pair whose value is a single operator with no value, or a null literal.
                    if (_omitEmpty && IsEmpty(v, c)) continue;
                    if (!first) sb.Append(',');
                    first = false;
                    sb.Append(o.Keys[i]);
                    WriteJson(sb, v, c);
                }
                sb.Append('}');
                break;
            case JsonList l:
                sb.Append('[');
                for (var i = 0; i < l.Items.Length; i++)
                {
                    if (i > 0) sb.Append(',');
                    WriteJson(sb, l.Items[i], c);
                }
                sb.Append(']');
                break;
            case JsonLiteral lit:
                sb.Append(lit.Json);
                break;
            case JsonTemplate t:
                WriteTemplate(sb, t.Segments, c);
                break;
        }
    }

    private bool IsEmpty(JsonPart part, in AccessLogContext c) => part switch
    {
        JsonLiteral lit => lit.Json == "null",
        JsonTemplate { Segments.Length: 1 } t => !t.Segments[0].HasValue(c),
        _ => false,
    };

    /// <summary>Envoy's JSON formatter: a lone operator keeps its type (numbers stay numbers, a missing value is null);
    /// several pieces make one string with "-" (or nothing, with omit_empty_values) for missing values.</summary>
    private void WriteTemplate(StringBuilder sb, Segment[] segments, in AccessLogContext c)
    {
        if (segments.Length == 1 && _typedJson)
        {
            var s = segments[0];
            if (s.IsNumeric)
            {
                if (s.TryGetNumber(c, out var n)) sb.Append(n);
                else sb.Append("null");
                return;
            }
            var mark = sb.Length;
            sb.Append('"');
            if (!AppendEscaped(sb, s, c))
            {
                sb.Length = mark;
                sb.Append("null");
                return;
            }
            sb.Append('"');
            return;
        }
        sb.Append('"');
        foreach (var s in segments)
            if (!AppendEscaped(sb, s, c) && !_omitEmpty) sb.Append('-');
        sb.Append('"');
    }

    [ThreadStatic] private static StringBuilder? t_scratch;

    private static bool AppendEscaped(StringBuilder sb, Segment s, in AccessLogContext c)
    {
        if (s.IsLiteral)
        {
            JsonText.AppendEscaped(sb, s.Literal);
            return true;
        }
        var scratch = t_scratch ??= new StringBuilder(256);
        scratch.Clear();
        if (!s.AppendText(scratch, c)) return false;
        foreach (var chunk in scratch.GetChunks()) JsonText.AppendEscaped(sb, chunk.Span);
        return true;
    }

    // ----- segments -----

    internal enum Op
    {
        Literal, StartTime, Req, Resp, Trailer, Constant, Protocol, ResponseCode, ResponseCodeDetails, LocalReplyBody, ResponseFlags,
        ResponseFlagsLong, BytesReceived, BytesSent, Duration, RequestDuration, ResponseDuration, UpstreamHost,
        UpstreamCluster, UpstreamLocalAddress, UpstreamTransportFailureReason, AttemptCount, DownstreamRemoteAddress,
        DownstreamRemoteAddressNoPort, DownstreamRemotePort, DownstreamDirectRemoteAddress, DownstreamDirectRemoteAddressNoPort,
        DownstreamLocalAddress, DownstreamLocalAddressNoPort, DownstreamLocalPort, DownstreamPeerUriSan, RequestedServerName,
        RouteName, ConnectionId, GrpcStatus, StreamId, UniqueId,
    }

    private enum GrpcFormat { Camel, Snake, Number }

    /// <summary>One literal or command operator.</summary>
    internal sealed class Segment
    {
        private static readonly string s_hostname = SafeHostname();

        private readonly Op _op;
        private readonly string _header = "";
        private readonly string _altHeader = "";
        private readonly int _maxLength = -1;
        private readonly TimeFormat? _time;
        private readonly bool _allowWhitespace;
        private readonly GrpcFormat _grpc;

        public Segment(FormatToken t)
        {
            if (t.IsLiteral)
            {
                _op = Op.Literal;
                Literal = t.Literal!;
                return;
            }
            _maxLength = t.MaxLength ?? -1;
            switch (t.Command)
            {
                case "START_TIME":
                    _op = Op.StartTime;
                    _time = t.Arg.Length == 0 ? TimeFormat.Default : new TimeFormat(t.Arg);
                    break;
                case "REQ" or "RESP" or "TRAILER":
                    _op = t.Command switch { "REQ" => Op.Req, "RESP" => Op.Resp, _ => Op.Trailer };
                    var q = t.Arg.IndexOf('?');
                    _header = (q < 0 ? t.Arg : t.Arg[..q]).ToLowerInvariant();
                    _altHeader = q < 0 ? "" : t.Arg[(q + 1)..].ToLowerInvariant();
                    break;
                case "ENVIRONMENT":
                    _op = Op.Constant;
                    var env = Environment.GetEnvironmentVariable(t.Arg) ?? "-";
                    Literal = _maxLength >= 0 && env.Length > _maxLength ? env[.._maxLength] : env;
                    break;
                case "HOSTNAME":
                    _op = Op.Constant;
                    Literal = s_hostname;
                    break;
                case "LOCAL_REPLY_BODY":
                    _op = Op.LocalReplyBody;
                    break;
                case "RESPONSE_CODE_DETAILS":
                    _op = Op.ResponseCodeDetails;
                    _allowWhitespace = t.Arg == "ALLOW_WHITESPACES";
                    break;
                case "GRPC_STATUS" or "GRPC_STATUS_NUMBER":
                    _op = Op.GrpcStatus;
                    _grpc = t.Command == "GRPC_STATUS_NUMBER" || t.Arg == "NUMBER" ? GrpcFormat.Number : t.Arg == "SNAKE_STRING" ? GrpcFormat.Snake : GrpcFormat.Camel;
                    break;
                default:
                    _op = t.Command switch
                    {
                        "PROTOCOL" => Op.Protocol,
                        "RESPONSE_CODE" => Op.ResponseCode,
                        "RESPONSE_FLAGS" => Op.ResponseFlags,
                        "RESPONSE_FLAGS_LONG" => Op.ResponseFlagsLong,
                        "BYTES_RECEIVED" => Op.BytesReceived,
                        "BYTES_SENT" => Op.BytesSent,
                        "DURATION" => Op.Duration,
                        "REQUEST_DURATION" => Op.RequestDuration,
                        "RESPONSE_DURATION" => Op.ResponseDuration,
                        "UPSTREAM_HOST" or "UPSTREAM_REMOTE_ADDRESS" => Op.UpstreamHost,
                        "UPSTREAM_CLUSTER" or "UPSTREAM_CLUSTER_RAW" => Op.UpstreamCluster,
                        "UPSTREAM_LOCAL_ADDRESS" => Op.UpstreamLocalAddress,
                        "UPSTREAM_TRANSPORT_FAILURE_REASON" => Op.UpstreamTransportFailureReason,
                        "UPSTREAM_REQUEST_ATTEMPT_COUNT" => Op.AttemptCount,
                        "DOWNSTREAM_REMOTE_ADDRESS" => Op.DownstreamRemoteAddress,
                        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => Op.DownstreamRemoteAddressNoPort,
                        "DOWNSTREAM_REMOTE_PORT" => Op.DownstreamRemotePort,
                        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => Op.DownstreamDirectRemoteAddress,
                        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => Op.DownstreamDirectRemoteAddressNoPort,
                        "DOWNSTREAM_LOCAL_ADDRESS" => Op.DownstreamLocalAddress,
                        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => Op.DownstreamLocalAddressNoPort,
                        "DOWNSTREAM_LOCAL_PORT" => Op.DownstreamLocalPort,
                        "DOWNSTREAM_PEER_URI_SAN" => Op.DownstreamPeerUriSan,
                        "REQUESTED_SERVER_NAME" => Op.RequestedServerName,
                        "ROUTE_NAME" => Op.RouteName,
                        "CONNECTION_ID" => Op.ConnectionId,
                        "STREAM_ID" => Op.StreamId,
                        "UNIQUE_ID" => Op.UniqueId,
                        _ => throw new ArgumentException($"unsupported command operator %{t.Command}%"),
                    };
                    break;
            }
        }

        public string Literal { get; } = "";
        public bool IsLiteral => _op is Op.Literal or Op.Constant;

        /// <summary>Operators Envoy types as numbers in JSON.</summary>
        public bool IsNumeric => _op is Op.ResponseCode or Op.BytesReceived or Op.BytesSent or Op.Duration or Op.RequestDuration
            or Op.ResponseDuration or Op.AttemptCount or Op.ConnectionId or Op.DownstreamRemotePort or Op.DownstreamLocalPort
            || (_op == Op.GrpcStatus && _grpc == GrpcFormat.Number);

        public bool HasValue(in AccessLogContext c)
        {
            if (IsLiteral) return true;
            if (IsNumeric) return TryGetNumber(c, out _);
            var scratch = new StringBuilder();
            return AppendText(scratch, c);
        }

        public bool TryGetNumber(in AccessLogContext c, out long n)
        {
            var info = c.Info;
            n = 0;
            switch (_op)
            {
                case Op.ResponseCode: n = c.ResponseCode; return true;
                case Op.BytesReceived: n = info.BytesReceived; return true;
                case Op.BytesSent: n = info.BytesSent; return true;
                case Op.Duration: n = c.MillisSinceStart(c.EndTimestamp); return true;
                case Op.RequestDuration:
                    if (info.RequestCompleteTimestamp == 0) return false;
                    n = c.MillisSinceStart(info.RequestCompleteTimestamp);
                    return true;
                case Op.ResponseDuration:
                    if (info.UpstreamFirstByteTimestamp == 0) return false;
                    n = c.MillisSinceStart(info.UpstreamFirstByteTimestamp);
                    return true;
                case Op.AttemptCount: n = info.AttemptCount; return true;
                case Op.ConnectionId: n = c.Http.Features.Get<DownstreamConnectionId>()?.Id ?? 0; return true;
                case Op.DownstreamRemotePort:
                    if (info.XffRemoteAddress is not null) return true; // an XFF address has no port: 0
                    n = c.Http.Connection.RemotePort;
                    return c.Http.Connection.RemoteIpAddress is not null;
                case Op.DownstreamLocalPort:
                    n = c.Http.Connection.LocalPort;
                    return c.Http.Connection.LocalIpAddress is not null;
                case Op.GrpcStatus:
                    var status = GrpcStatusOf(c);
                    n = status;
                    return status >= 0;
                default: return false;
            }
        }

        /// <summary>Appends the value; false when there is none (the caller writes "-").</summary>
        public bool AppendText(StringBuilder sb, in AccessLogContext c)
        {
            var info = c.Info;
            var http = c.Http;
            switch (_op)
            {
                case Op.Literal:
                case Op.Constant:
                    sb.Append(Literal);
                    return true;
                case Op.StartTime:
                    _time!.Append(sb, c.StartUtc);
                    return true;
                case Op.Req: return AppendTruncated(sb, RequestHeader(c, _header) ?? (_altHeader.Length > 0 ? RequestHeader(c, _altHeader) : null));
                case Op.Resp: return AppendTruncated(sb, ResponseHeader(http.Response.Headers, _header) ?? (_altHeader.Length > 0 ? ResponseHeader(http.Response.Headers, _altHeader) : null));
                case Op.Trailer:
                    var trailers = http.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
                    if (trailers is null) return false;
                    return AppendTruncated(sb, ResponseHeader(trailers, _header) ?? (_altHeader.Length > 0 ? ResponseHeader(trailers, _altHeader) : null));
                case Op.Protocol:
                    sb.Append(http.Request.Protocol);
                    return true;
                case Op.LocalReplyBody:
                    if (info.LocalReplyBody is not { Length: > 0 } localBody) return false;
                    sb.Append(localBody);
                    return true;
                case Op.ResponseCodeDetails:
                    if (info.ResponseCodeDetails is not { } details) return false;
                    if (_allowWhitespace) sb.Append(details);
                    else foreach (var ch in details) sb.Append(char.IsWhiteSpace(ch) ? '_' : ch);
                    return true;
                case Op.ResponseFlags:
                    StreamInfo.AppendResponseFlags(sb, info.Flags, longNames: false);
                    return true;
                case Op.ResponseFlagsLong:
                    StreamInfo.AppendResponseFlags(sb, info.Flags, longNames: true);
                    return true;
                case Op.UpstreamHost:
                    if (info.UpstreamHost is not { } host) return false;
                    sb.Append(host.Address.IsPipe ? host.Address.PipePath : host.Authority);
                    return true;
                case Op.UpstreamCluster: return AppendNonEmpty(sb, info.Cluster?.Name);
                case Op.UpstreamLocalAddress: return AppendNonEmpty(sb, info.UpstreamLocalAddress);
                case Op.UpstreamTransportFailureReason:
                    if (string.IsNullOrEmpty(info.UpstreamTransportFailureReason)) return false;
                    sb.Append(info.UpstreamTransportFailureReason.Replace(' ', '_'));
                    return true;
                case Op.DownstreamRemoteAddress:
                    if (info.XffRemoteAddress is { } xff) return AppendAddress(sb, xff, 0, withPort: true);
                    return AppendAddress(sb, http.Connection.RemoteIpAddress, http.Connection.RemotePort, withPort: true);
                case Op.DownstreamRemoteAddressNoPort:
                    return AppendAddress(sb, info.XffRemoteAddress ?? http.Connection.RemoteIpAddress, 0, withPort: false);
                case Op.DownstreamDirectRemoteAddress:
                    return AppendAddress(sb, http.Connection.RemoteIpAddress, http.Connection.RemotePort, withPort: true);
                case Op.DownstreamDirectRemoteAddressNoPort:
                    return AppendAddress(sb, http.Connection.RemoteIpAddress, 0, withPort: false);
                case Op.DownstreamLocalAddress:
                    return AppendAddress(sb, http.Connection.LocalIpAddress, http.Connection.LocalPort, withPort: true);
                case Op.DownstreamLocalAddressNoPort:
                    return AppendAddress(sb, http.Connection.LocalIpAddress, 0, withPort: false);
                case Op.DownstreamPeerUriSan:
                    return AppendNonEmpty(sb, UriSans(http.Connection.ClientCertificate));
                case Op.RequestedServerName:
                    return AppendNonEmpty(sb, http.Features.Get<ITlsHandshakeFeature>()?.HostName);
                case Op.RouteName: return AppendNonEmpty(sb, info.Route?.Name);
                case Op.StreamId: return AppendNonEmpty(sb, info.RequestId);
                case Op.UniqueId:
                    sb.Append(Uuid.NewV4());
                    return true;
                case Op.GrpcStatus when _grpc != GrpcFormat.Number:
                    var status = GrpcStatusOf(c);
                    if (status < 0) return false;
                    var name = _grpc == GrpcFormat.Camel ? CamelName(status) : SnakeName(status);
                    if (name is null) sb.Append(status);
                    else sb.Append(name);
                    return true;
                default:
                    if (!TryGetNumber(c, out var n)) return false;
                    sb.Append(n);
                    return true;
            }
        }

        private bool AppendTruncated(StringBuilder sb, string? value)
        {
            if (value is null) return false;
            sb.Append(_maxLength >= 0 && value.Length > _maxLength ? value.AsSpan(0, _maxLength) : value);
            return true;
        }

        private static bool AppendNonEmpty(StringBuilder sb, string? value)
        {
            if (string.IsNullOrEmpty(value)) return false;
            sb.Append(value);
            return true;
        }

        /// <summary>A request header as Envoy's access log sees it: after the connection manager's and the router's
        /// changes, so :path and :authority are the rewritten ones once the request was forwarded.</summary>
        private static string? RequestHeader(in AccessLogContext c, string name)
        {
            var request = c.Http.Request;
            if (name.Length > 0 && name[0] == ':')
            {
                var forwarded = c.Info.UpstreamAuthority.Length > 0;
                return name switch
                {
                    ":method" => request.Method,
                    ":path" => forwarded ? c.Info.UpstreamPathAndQuery : RawTarget(c.Http),
                    ":authority" => forwarded ? c.Info.UpstreamAuthority : request.Host.Value,
                    ":scheme" => request.Scheme,
                    _ => null,
                };
            }
            var v = request.Headers[name];
            return v.Count == 0 ? null : v[0];
        }

        private static string RawTarget(HttpContext http) =>
            http.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw ? raw : http.Request.Path.Value + http.Request.QueryString.Value;

        private static string? ResponseHeader(IHeaderDictionary headers, string name)
        {
            if (name == ":status") return null;
            var v = headers[name];
            return v.Count == 0 ? null : v[0];
        }

        private static bool AppendAddress(StringBuilder sb, IPAddress? ip, int port, bool withPort)
        {
            if (ip is null) return false;
            if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
            Span<char> buf = stackalloc char[64];
            if (!ip.TryFormat(buf, out var n)) return false;
            var v6 = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
            if (withPort && v6) sb.Append('[');
            sb.Append(buf[..n]);
            if (withPort)
            {
                if (v6) sb.Append(']');
                sb.Append(':').Append(port);
            }
            return true;
        }

        /// <summary>Envoy's <c>Grpc::Common::getGrpcStatus</c> for a gRPC request: grpc-status from the trailers, then
        /// the headers, else the HTTP status mapped to a gRPC code. -1 when there is none.</summary>
        private static int GrpcStatusOf(in AccessLogContext c)
        {
            var http = c.Http;
            if (!LocalReply.IsGrpc(http.Request)) return -1;
            var trailers = http.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
            if (trailers is not null && int.TryParse(trailers["grpc-status"].ToString(), out var t) && t >= 0) return t;
            if (int.TryParse(http.Response.Headers["grpc-status"].ToString(), out var h) && h >= 0) return h;
            return c.ResponseCode == 0 ? -1 : LocalReply.HttpToGrpcStatus(c.ResponseCode);
        }

        private static readonly string[] s_camel =
        [
            "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
            "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable",
            "DataLoss", "Unauthenticated",
        ];

        private static readonly string[] s_snake =
        [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
            "DATA_LOSS", "UNAUTHENTICATED",
        ];

        private static string? CamelName(int status) => status < s_camel.Length ? s_camel[status] : null;
        private static string? SnakeName(int status) => status < s_snake.Length ? s_snake[status] : null;

        /// <summary>The URI subject alternative names of the client certificate, comma separated.</summary>
        internal static string? UriSans(System.Security.Cryptography.X509Certificates.X509Certificate2? cert)
        {
            if (cert is null) return null;
            foreach (var ext in cert.Extensions)
            {
                if (ext.Oid?.Value != "2.5.29.17") continue;
                try
                {
                    var reader = new AsnReader(ext.RawData, AsnEncodingRules.DER).ReadSequence();
                    var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
                    var result = new StringBuilder();
                    while (reader.HasData)
                    {
                        var tag = reader.PeekTag();
                        if (tag.HasSameClassAndValue(uriTag))
                        {
                            if (result.Length > 0) result.Append(',');
                            result.Append(reader.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
                        }
                        else reader.ReadEncodedValue();
                    }
                    return result.ToString();
                }
                catch (AsnContentException)
                {
                    return null;
                }
            }
            return null;
        }

        private static string SafeHostname()
        {
            try
            {
                return Dns.GetHostName();
            }
            catch (System.Net.Sockets.SocketException)
            {
                return "-";
            }
        }
    }
}

/// <summary>Envoy's downstream connection id (%CONNECTION_ID%): a process-wide counter, set on each connection.</summary>
internal sealed class DownstreamConnectionId
{
    private static long s_next;

    public long Id { get; } = Interlocked.Increment(ref s_next);
}
