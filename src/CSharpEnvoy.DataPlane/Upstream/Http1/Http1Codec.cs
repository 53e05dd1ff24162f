using System.Buffers;
using System.Buffers.Text;
using System.Collections.Frozen;
using System.Text;

namespace CSharpEnvoy.DataPlane.Upstream.Http1;

/// <summary>A malformed upstream response (Envoy's codec protocol error: 502, UPE). Derives from
/// <see cref="HttpRequestException"/> with <see cref="HttpRequestError.InvalidResponse"/>, as SocketsHttpHandler reports
/// the same fault, so the router treats both paths alike.</summary>
internal sealed class Http1ProtocolException(string message) : HttpRequestException(HttpRequestError.InvalidResponse, message);

/// <summary>How the response body is framed (RFC 9112 section 6.3).</summary>
internal enum BodyFraming { None, ContentLength, Chunked, UntilClose }

/// <summary>A parsed response head; its header lines are in the connection's <see cref="Http1ResponseHead.Names"/>.</summary>
internal sealed class Http1ResponseHead : Router.IResponseHeaderLookup
{
    public int Status;
    public bool KeepAlive;
    public BodyFraming Framing;
    public long ContentLength;
    public int Count;
    public string[] Names = new string[24];
    public string[] Values = new string[24];

    public void Add(string name, string value)
    {
        if (Count == Names.Length)
        {
            Array.Resize(ref Names, Count * 2);
            Array.Resize(ref Values, Count * 2);
        }
        Names[Count] = name;
        Values[Count] = value;
        Count++;
    }

    /// <summary>A header's value (case-insensitive name), several joined with commas; null when absent.</summary>
    public string? Get(string name)
    {
        string? found = null;
        for (var i = 0; i < Count; i++)
        {
            if (!string.Equals(Names[i], name, StringComparison.OrdinalIgnoreCase)) continue;
            found = found is null ? Values[i] : found + "," + Values[i];
        }
        return found;
    }
}

/// <summary>
/// Header names and the last value of each, per connection: an upstream sends the same names and mostly the same
/// values (content-type, server, a date that changes once a second) on every response, so after the first few
/// responses parsing a head allocates nothing.
/// </summary>
internal sealed class HeaderStringCache
{
    private const int Size = 32;
    private readonly string[] _names = new string[Size];
    private readonly string?[] _values = new string?[Size];
    private int _count;
    private int _next;

    public int Name(ReadOnlySpan<byte> bytes, out string name)
    {
        for (var i = 0; i < _count; i++)
        {
            var n = _names[i];
            if (n.Length == bytes.Length && Ascii.Equals(bytes, n))
            {
                name = n;
                return i;
            }
        }
        name = Http1Codec.KnownName(bytes) ?? Encoding.Latin1.GetString(bytes);
        var slot = _count < Size ? _count++ : (_next++ & (Size - 1));
        _names[slot] = name;
        _values[slot] = null;
        return slot;
    }

    public string Value(int slot, ReadOnlySpan<byte> bytes)
    {
        var v = _values[slot];
        if (v is not null && v.Length == bytes.Length && Ascii.Equals(bytes, v)) return v;
        v = bytes.Length == 0 ? "" : Encoding.Latin1.GetString(bytes);
        _values[slot] = v;
        return v;
    }
}

/// <summary>HTTP/1.1 wire helpers for the upstream codec: header filtering, response head and chunk parsing.</summary>
internal static class Http1Codec
{
    /// <summary>Hop-by-hop and proxy-control headers that never cross the proxy (the set YARP also drops).</summary>
    public static readonly FrozenSet<string> HopByHop = new[]
    {
        "Connection", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Proxy-Connection", "Proxy-Authenticate",
        "Proxy-Authentication-Info", "Proxy-Authorization", "Proxy-Features", "Proxy-Instruction", "Security-Scheme",
        "ALPN", "Close", "HTTP2-Settings", "Upgrade-Insecure-Requests", "TE", "Alt-Svc",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] s_known =
    [
        "content-length", "Content-Length", "content-type", "Content-Type", "date", "Date", "server", "Server",
        "connection", "Connection", "transfer-encoding", "Transfer-Encoding", "cache-control", "Cache-Control",
        "set-cookie", "Set-Cookie", "location", "Location", "etag", "ETag", "last-modified", "Last-Modified",
        "content-encoding", "Content-Encoding", "vary", "Vary", "keep-alive", "Keep-Alive",
    ];

    /// <summary>A constant string for common header names in their usual spellings, so the first response on a
    /// connection does not allocate them either.</summary>
    public static string? KnownName(ReadOnlySpan<byte> bytes)
    {
        foreach (var k in s_known)
            if (k.Length == bytes.Length && Ascii.Equals(bytes, k)) return k;
        return null;
    }

    // RFC 9110 token characters.
    private static readonly SearchValues<byte> s_token =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>
    /// Parses a response head from <paramref name="data"/>. Returns the bytes it took, or 0 when the head is not complete
    /// yet; throws <see cref="Http1ProtocolException"/> for anything malformed. Interim (1xx) responses other than 101 are
    /// consumed and reported with <see cref="Http1ResponseHead.Status"/> below 200, so the caller parses again.
    /// </summary>
    public static int TryParseHead(ReadOnlySpan<byte> data, bool headRequest, Http1ResponseHead head, HeaderStringCache strings)
    {
        var end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0)
        {
            // Bare LF line ends are tolerated (RFC 9112 section 2.2) only in full: "\n\n" ends the head.
            end = data.IndexOf("\n\n"u8);
            if (end < 0) return 0;
            end += 2;
        }
        else end += 4;

        head.Count = 0;
        head.ContentLength = -1;
        var section = data[..end];
        var nl = section.IndexOf((byte)'\n');
        var statusLine = TrimCr(section[..nl]);
        // HTTP/1.x SP 3DIGIT [SP reason]
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1."u8) || statusLine[8] != (byte)' '
            || (statusLine[7] != (byte)'1' && statusLine[7] != (byte)'0') || (statusLine.Length > 12 && statusLine[12] != (byte)' '))
            throw new Http1ProtocolException("malformed status line");
        var minor = statusLine[7] - '0';
        var d0 = statusLine[9] - '0';
        var d1 = statusLine[10] - '0';
        var d2 = statusLine[11] - '0';
        if ((uint)d0 > 9 || (uint)d1 > 9 || (uint)d2 > 9 || d0 == 0) throw new Http1ProtocolException("malformed status code");
        head.Status = d0 * 100 + d1 * 10 + d2;

        var keepAlive = minor == 1;
        var chunked = false;
        var otherCoding = false;
        var rest = section[(nl + 1)..];
        while (true)
        {
            nl = rest.IndexOf((byte)'\n');
            var line = TrimCr(rest[..nl]);
            rest = rest[(nl + 1)..];
            if (line.IsEmpty) break;
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) throw new Http1ProtocolException("malformed header line");
            var nameBytes = line[..colon];
            if (nameBytes.ContainsAnyExcept(s_token)) throw new Http1ProtocolException("invalid header name");
            var valueBytes = line[(colon + 1)..].Trim(" \t"u8);
            foreach (var b in valueBytes)
                if ((b < 0x20 && b != (byte)'\t') || b == 0x7F) throw new Http1ProtocolException("invalid header value");
            var slot = strings.Name(nameBytes, out var name);
            var value = strings.Value(slot, valueBytes);
            head.Add(name, value);
            switch (name.Length)
            {
                case 10 when name.Equals("connection", StringComparison.OrdinalIgnoreCase):
                    if (Http.HeaderTokens.Contains(value, "close")) keepAlive = false;
                    else if (Http.HeaderTokens.Contains(value, "keep-alive")) keepAlive = true;
                    break;
                case 14 when name.Equals("content-length", StringComparison.OrdinalIgnoreCase):
                    if (!Utf8Parser.TryParse(valueBytes, out long cl, out var used) || used != valueBytes.Length || cl < 0
                        || (head.ContentLength >= 0 && head.ContentLength != cl))
                        throw new Http1ProtocolException("invalid content-length");
                    head.ContentLength = cl;
                    break;
                case 17 when name.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase):
                    // Only the last coding frames the body.
                    var last = value.AsSpan();
                    var comma = last.LastIndexOf(',');
                    if (comma >= 0) last = last[(comma + 1)..];
                    chunked = last.Trim(" \t").Equals("chunked", StringComparison.OrdinalIgnoreCase);
                    otherCoding = !chunked;
                    break;
            }
        }

        if (head.Status == 101) throw new Http1ProtocolException("unexpected 101 response");
        if (head.Status < 200 || headRequest || head.Status is 204 or 304)
        {
            head.Framing = BodyFraming.None;
        }
        else if (chunked || otherCoding)
        {
            // Transfer-Encoding overrides Content-Length; such a message may not be followed by another on the connection.
            if (head.ContentLength >= 0) keepAlive = false;
            head.ContentLength = -1;
            head.Framing = chunked ? BodyFraming.Chunked : BodyFraming.UntilClose;
            if (otherCoding) keepAlive = false;
        }
        else if (head.ContentLength >= 0) head.Framing = head.ContentLength == 0 ? BodyFraming.None : BodyFraming.ContentLength;
        else
        {
            head.Framing = BodyFraming.UntilClose;
            keepAlive = false;
        }
        head.KeepAlive = keepAlive;
        return end;
    }

    private static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) => line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    /// <summary>
    /// Parses a chunk-size line ("1a;ext=v\r\n"). Returns the bytes it took, or 0 when the line is incomplete; throws for
    /// a malformed one.
    /// </summary>
    public static int TryParseChunkSize(ReadOnlySpan<byte> data, out long size)
    {
        size = 0;
        var nl = data.IndexOf((byte)'\n');
        if (nl < 0)
        {
            if (data.Length > 1024) throw new Http1ProtocolException("chunk size line too long");
            return 0;
        }
        var line = TrimCr(data[..nl]);
        var semi = line.IndexOf((byte)';');
        if (semi >= 0) line = line[..semi];
        line = line.TrimEnd(" \t"u8);
        if (line.IsEmpty || line.Length > 15) throw new Http1ProtocolException("invalid chunk size");
        foreach (var b in line)
        {
            var v = HexValue(b);
            if (v < 0) throw new Http1ProtocolException("invalid chunk size");
            size = size * 16 + v;
        }
        return nl + 1;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
