using System.Net;
using System.Net.Http.Headers;
using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Envoy's gRPC health checker: <c>grpc.health.v1.Health/Check</c> over h2c with <c>service_name</c>;
/// SERVING passes, any other status, grpc-status or HTTP status fails the host.</summary>
internal sealed class GrpcHealthCheck : IHealthCheck
{
    private readonly HealthCheckModel _model;
    private readonly string _authority;
    private readonly HttpMessageInvoker _invoker;
    private readonly byte[] _body;

    public GrpcHealthCheck(HealthCheckModel model, Cluster cluster)
    {
        _model = model;
        _authority = model.Authority ?? cluster.Name;
        _invoker = new HttpMessageInvoker(HealthCheckConnector.CreateHandler(), disposeHandler: true);
        // HealthCheckRequest { string service = 1; } in a gRPC length-prefixed frame.
        var service = System.Text.Encoding.UTF8.GetBytes(model.ServiceName);
        var message = new List<byte>();
        if (service.Length > 0)
        {
            message.Add(0x0A);
            for (var v = (uint)service.Length; ; v >>= 7)
            {
                if (v < 0x80) { message.Add((byte)v); break; }
                message.Add((byte)(v | 0x80));
            }
            message.AddRange(service);
        }
        _body = new byte[5 + message.Count];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(_body.AsSpan(1), (uint)message.Count);
        message.CopyTo(_body, 5);
    }

    public async Task<HealthCheckResult> CheckAsync(Host host, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("http://" + host.Authority + "/grpc.health.v1.Health/Check"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(_body),
        };
        HealthCheckConnector.SetHost(request, host);
        request.Headers.Host = host.HealthCheckHostname ?? _authority;
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        request.Headers.TryAddWithoutValidation("user-agent", "Envoy/HC");
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        foreach (var (k, v) in _model.InitialMetadata) request.Headers.TryAddWithoutValidation(k, v);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return HealthCheckResult.NetworkFailure;
        }
        using (response)
        {
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK) return HealthCheckResult.ActiveFailure;
            var grpcStatus = Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status");
            if (grpcStatus != "0") return HealthCheckResult.ActiveFailure;
            return ServingStatus(body) == 1 ? HealthCheckResult.Success : HealthCheckResult.ActiveFailure;
        }
    }

    private static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;

    /// <summary>HealthCheckResponse.status (field 1, varint) of the single framed message; -1 when malformed.</summary>
    private static long ServingStatus(byte[] body)
    {
        if (body.Length < 5 || body[0] != 0) return -1;
        var len = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1));
        if (body.Length < 5 + len) return -1;
        var m = body.AsSpan(5, len);
        var i = 0;
        long status = 0; // proto3 default: UNKNOWN
        while (i < m.Length)
        {
            var tag = ReadVarint(m, ref i);
            if (tag < 0) return -1;
            var wire = tag & 7;
            if (tag >> 3 == 1 && wire == 0) status = ReadVarint(m, ref i);
            else if (wire == 0) ReadVarint(m, ref i);
            else if (wire == 2) i += (int)ReadVarint(m, ref i);
            else if (wire == 1) i += 8;
            else if (wire == 5) i += 4;
            else return -1;
        }
        return status;
    }

    private static long ReadVarint(ReadOnlySpan<byte> s, ref int i)
    {
        long v = 0;
        for (var shift = 0; i < s.Length && shift < 64; shift += 7)
        {
            var b = s[i++];
            v |= (long)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
        return -1;
    }

    public void Dispose() => _invoker.Dispose();
}
