using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>What the first bytes of a connection told the inspector.</summary>
internal sealed class ClientHelloInfo
{
    public static readonly ClientHelloInfo RawBuffer = new() { TransportProtocol = "raw_buffer" };

    /// <summary>"tls" or "raw_buffer" (Envoy's names for <c>filter_chain_match.transport_protocol</c>).</summary>
    public string TransportProtocol { get; init; } = "raw_buffer";
    /// <summary>The SNI, lower case; empty when the client sent none.</summary>
    public string ServerName { get; init; } = "";
    /// <summary>The client's ALPN list in its order.</summary>
    public IReadOnlyList<string> ApplicationProtocols { get; init; } = [];
}

/// <summary>
/// <c>envoy.filters.listener.tls_inspector</c>: peeks at a new connection's first bytes, without consuming them, to
/// tell a TLS ClientHello from cleartext and read its SNI and ALPN. Stats are Envoy's, rooted at <c>tls_inspector.</c>.
/// </summary>
internal sealed class TlsInspector
{
    private const int RecordHeader = 5;
    private readonly int _maxClientHello;

    public TlsInspector(StatsStore stats, int maxClientHelloSize)
    {
        _maxClientHello = maxClientHelloSize;
        TlsFound = stats.Counter("tls_inspector.tls_found");
        TlsNotFound = stats.Counter("tls_inspector.tls_not_found");
        SniFound = stats.Counter("tls_inspector.sni_found");
        SniNotFound = stats.Counter("tls_inspector.sni_not_found");
        AlpnFound = stats.Counter("tls_inspector.alpn_found");
        AlpnNotFound = stats.Counter("tls_inspector.alpn_not_found");
        ClientHelloTooLarge = stats.Counter("tls_inspector.client_hello_too_large");
    }

    public Counter TlsFound { get; }
    public Counter TlsNotFound { get; }
    public Counter SniFound { get; }
    public Counter SniNotFound { get; }
    public Counter AlpnFound { get; }
    public Counter AlpnNotFound { get; }
    public Counter ClientHelloTooLarge { get; }

    /// <summary>Reads until the ClientHello is complete or ruled out. Null means close the connection (the hello is
    /// too large, or the peer went away first); cancellation (the listener filter timeout) propagates.</summary>
    public async ValueTask<ClientHelloInfo?> InspectAsync(PipeReader input, CancellationToken ct)
    {
        while (true)
        {
            var result = await input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = Parse(buffer, _maxClientHello, out var info);
            if (status != ParseStatus.NeedMore || result.IsCompleted || result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                switch (status)
                {
                    case ParseStatus.Tls:
                        TlsFound.Inc();
                        (info!.ServerName.Length > 0 ? SniFound : SniNotFound).Inc();
                        (info.ApplicationProtocols.Count > 0 ? AlpnFound : AlpnNotFound).Inc();
                        return info;
                    case ParseStatus.TooLarge:
                        ClientHelloTooLarge.Inc();
                        return null;
                    case ParseStatus.NeedMore:
                        // The peer closed before a full hello: nothing to serve.
                        return buffer.IsEmpty ? null : ClientHelloInfo.RawBuffer;
                    default:
                        TlsNotFound.Inc();
                        return ClientHelloInfo.RawBuffer;
                }
            }
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    internal enum ParseStatus { NeedMore, Tls, NotTls, TooLarge }

    /// <summary>Parses the TLS records at the start of <paramref name="buffer"/> far enough to read the ClientHello.</summary>
    internal static ParseStatus Parse(ReadOnlySequence<byte> buffer, int maxClientHello, out ClientHelloInfo? info)
    {
        info = null;
        Span<byte> header = stackalloc byte[RecordHeader];
        // A handshake record (22) with a TLS major version 3 and a 1.0-1.3 minor version.
        if (buffer.Length >= 1 && buffer.FirstSpan[0] != 22) return ParseStatus.NotTls;
        if (buffer.Length < 3) return ParseStatus.NeedMore;
        buffer.Slice(0, 3).CopyTo(header);
        if (header[1] != 3 || header[2] > 4) return ParseStatus.NotTls;

        // Gather the handshake bytes from as many records as the ClientHello spans.
        var handshake = new ArrayBufferWriter<byte>(512);
        long offset = 0;
        int? helloLength = null;
        while (true)
        {
            if (buffer.Length < offset + RecordHeader) return ParseStatus.NeedMore;
            buffer.Slice(offset, RecordHeader).CopyTo(header);
            if (header[0] != 22 || header[1] != 3) return ParseStatus.NotTls;
            int recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[3..]);
            if (recordLength == 0 || recordLength > 16384 + 2048) return ParseStatus.NotTls;
            if (buffer.Length < offset + RecordHeader + recordLength) return handshake.WrittenCount + (buffer.Length - offset) > maxClientHello + 4 ? ParseStatus.TooLarge : ParseStatus.NeedMore;
            var fragment = buffer.Slice(offset + RecordHeader, recordLength);
            foreach (var seg in fragment) handshake.Write(seg.Span);
            offset += RecordHeader + recordLength;
            var hs = handshake.WrittenSpan;
            if (helloLength is null && hs.Length >= 4)
            {
                if (hs[0] != 1) return ParseStatus.NotTls; // not a ClientHello
                helloLength = (hs[1] << 16) | (hs[2] << 8) | hs[3];
                if (helloLength > maxClientHello) return ParseStatus.TooLarge;
            }
            if (helloLength is int n && hs.Length >= 4 + n)
            {
                info = ReadClientHello(hs.Slice(4, n));
                return info is null ? ParseStatus.NotTls : ParseStatus.Tls;
            }
            if (handshake.WrittenCount > maxClientHello + 4) return ParseStatus.TooLarge;
        }
    }

    /// <summary>The SNI (extension 0) and ALPN (extension 16) of a ClientHello body; null when it is malformed.</summary>
    private static ClientHelloInfo? ReadClientHello(ReadOnlySpan<byte> h)
    {
        var p = 2 + 32; // legacy_version, random
        if (h.Length < p + 1) return null;
        p += 1 + h[p]; // session id
        if (h.Length < p + 2) return null;
        p += 2 + BinaryPrimitives.ReadUInt16BigEndian(h[p..]); // cipher suites
        if (h.Length < p + 1) return null;
        p += 1 + h[p]; // compression methods
        var sni = "";
        var alpn = new List<string>();
        if (h.Length < p + 2) return h.Length == p ? new ClientHelloInfo { TransportProtocol = "tls" } : null; // no extensions
        var end = p + 2 + BinaryPrimitives.ReadUInt16BigEndian(h[p..]);
        if (end > h.Length) return null;
        p += 2;
        while (p + 4 <= end)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(h[p..]);
            var len = BinaryPrimitives.ReadUInt16BigEndian(h[(p + 2)..]);
            p += 4;
            if (p + len > end) return null;
            var ext = h.Slice(p, len);
            p += len;
            if (type == 0 && ext.Length >= 2)
            {
                // server_name_list: entries of name_type(1) length(2) name; host_name is type 0.
                var q = 2;
                while (q + 3 <= ext.Length)
                {
                    var nameLen = BinaryPrimitives.ReadUInt16BigEndian(ext[(q + 1)..]);
                    if (q + 3 + nameLen > ext.Length) return null;
                    if (ext[q] == 0 && sni.Length == 0) sni = Encoding.ASCII.GetString(ext.Slice(q + 3, nameLen)).ToLowerInvariant();
                    q += 3 + nameLen;
                }
            }
            else if (type == 16 && ext.Length >= 2)
            {
                var q = 2;
                while (q + 1 <= ext.Length)
                {
                    var l = ext[q];
                    if (q + 1 + l > ext.Length) return null;
                    alpn.Add(Encoding.ASCII.GetString(ext.Slice(q + 1, l)));
                    q += 1 + l;
                }
            }
        }
        return new ClientHelloInfo { TransportProtocol = "tls", ServerName = sni, ApplicationProtocols = alpn };
    }
}
