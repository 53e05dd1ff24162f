using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Http.Codec;

/// <summary>What <see cref="Http1RequestParser.Parse"/> made of the bytes at the front of the connection.</summary>
internal enum Http1HeadVerdict
{
    /// <summary>A whole request head of the common kind, parsed; its length is returned.</summary>
    Complete,
    /// <summary>Anything else: an unfinished head, or one the lean path leaves to Kestrel's HTTP/1.1 (HTTP/1.0,
    /// upgrades, CONNECT, <c>Expect</c>, chunked request bodies, percent-encoded or dot-segment paths, non-ASCII
    /// bytes, malformed input of any kind). Kestrel then serves the connection from this request on, with its own
    /// limits, timeouts and error replies.</summary>
    HandOff,
}

/// <summary>
/// Parses the request heads of <see cref="Http1ServerConnection"/>: <c>METHOD SP origin-form SP HTTP/1.1 CRLF</c>, then
/// header lines up to an empty line, from one contiguous span. It accepts only what it can prove well-formed and
/// leaves the rest (<see cref="Http1HeadVerdict.HandOff"/>) to Kestrel, so the lean path never answers bad input
/// differently from the full one.
/// </summary>
internal static class Http1RequestParser
{
    /// <summary>Kestrel's and Envoy's default request header count limit (<c>max_headers_count</c>): the most this parser
    /// takes; a connection manager with a higher limit hands longer heads to Kestrel, which applies it.</summary>
    internal const int MaxHeaderCount = 100;

    // RFC 9110 token characters (method and field names).
    private static readonly SearchValues<byte> s_token =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    // Host values Kestrel accepts without further checks: reg-name, IPv4, IP literal and port characters.
    private static readonly SearchValues<byte> s_host =
        SearchValues.Create("-._~!$&'()*+,;=:[]0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>Kestrel's names for the request headers it knows, so that both paths show the same spelling.</summary>
    private static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> s_knownNames = BuildKnownNames();

    private static Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> BuildKnownNames()
    {
        string[] names =
        [
            "Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Access-Control-Request-Headers",
            "Access-Control-Request-Method", "Allow", "Authorization", "Baggage", "Cache-Control", "Connection",
            "Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-MD5", "Content-Range",
            "Content-Type", "Cookie", "Correlation-Context", "Date", "Expect", "From", "Grpc-Accept-Encoding",
            "Grpc-Encoding", "Grpc-Timeout", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
            "If-Unmodified-Since", "Keep-Alive", "Max-Forwards", "Origin", "Pragma", "Proxy-Authorization", "Range",
            "Referer", "Request-Id", "TE", "Traceparent", "Tracestate", "Trailer", "Transfer-Encoding", "Translate",
            "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Via", "Warning",
        ];
        var d = new Dictionary<string, string>(names.Length, StringComparer.OrdinalIgnoreCase);
        foreach (var n in names) d[n] = n;
        return d.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Parses one request head from the front of <paramref name="data"/> into <paramref name="request"/>.</summary>
    /// <param name="headLength">The head's length in bytes, when <see cref="Http1HeadVerdict.Complete"/>.</param>
    public static Http1HeadVerdict Parse(ReadOnlySpan<byte> data, Http1ServerRequest request, out int headLength)
    {
        headLength = 0;
        // The request line.
        var eol = data.IndexOf((byte)'\n');
        if (eol < 2 || data[eol - 1] != (byte)'\r') return Http1HeadVerdict.HandOff;
        var line = data[..(eol - 1)];
        var sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0) return Http1HeadVerdict.HandOff;
        var method = line[..sp1];
        if (method.IndexOfAnyExcept(s_token) >= 0) return Http1HeadVerdict.HandOff;
        var rest = line[(sp1 + 1)..];
        var sp2 = rest.IndexOf((byte)' ');
        if (sp2 <= 0) return Http1HeadVerdict.HandOff;
        var target = rest[..sp2];
        if (!rest[(sp2 + 1)..].SequenceEqual("HTTP/1.1"u8)) return Http1HeadVerdict.HandOff;
        // origin-form only, visible ASCII, nothing Kestrel would decode or normalise into Request.Path.
        if (target[0] != (byte)'/' || target.IndexOfAnyExceptInRange((byte)'!', (byte)'~') >= 0) return Http1HeadVerdict.HandOff;
        if (target.IndexOfAny((byte)'%', (byte)'#') >= 0) return Http1HeadVerdict.HandOff;
        var query = target.IndexOf((byte)'?');
        var path = query < 0 ? target : target[..query];
        if (path.IndexOf("/."u8) >= 0) return Http1HeadVerdict.HandOff;
        var methodString = KnownMethod(method);
        if (methodString is null)
        {
            if (method.SequenceEqual("CONNECT"u8)) return Http1HeadVerdict.HandOff;
            methodString = Encoding.ASCII.GetString(method);
        }
        request.Method = methodString;
        request.SetTarget(target, query);

        // Header lines.
        var headers = request.Headers;
        var pos = eol + 1;
        var count = 0;
        var hosts = 0;
        long contentLength = -1;
        var keepAlive = true;
        while (true)
        {
            var remaining = data[pos..];
            eol = remaining.IndexOf((byte)'\n');
            if (eol < 0) return Http1HeadVerdict.HandOff; // unfinished: Kestrel waits for the rest under its timeouts
            if (eol == 0 || remaining[eol - 1] != (byte)'\r') return Http1HeadVerdict.HandOff;
            line = remaining[..(eol - 1)];
            pos += eol + 1;
            if (line.IsEmpty) break;
            if (++count > MaxHeaderCount) return Http1HeadVerdict.HandOff;
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) return Http1HeadVerdict.HandOff;
            var name = line[..colon];
            if (name.IndexOfAnyExcept(s_token) >= 0) return Http1HeadVerdict.HandOff;
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (value.IndexOfAnyExceptInRange((byte)' ', (byte)'~') is var bad and >= 0 && !OnlyTabs(value[bad..])) return Http1HeadVerdict.HandOff;

            var nameString = request.HeaderName(count - 1, name);
            switch (nameString.Length)
            {
                case 4 when ReferenceEquals(nameString, "Host"):
                    if (++hosts > 1 || value.IsEmpty || value.IndexOfAnyExcept(s_host) >= 0) return Http1HeadVerdict.HandOff;
                    break;
                case 6 when ReferenceEquals(nameString, "Expect"):
                case 7 when ReferenceEquals(nameString, "Upgrade"):
                case 17 when ReferenceEquals(nameString, "Transfer-Encoding"):
                    return Http1HeadVerdict.HandOff;
                case 10 when ReferenceEquals(nameString, "Connection"):
                    if (HasToken(value, "upgrade"u8)) return Http1HeadVerdict.HandOff;
                    if (HasToken(value, "close"u8)) keepAlive = false;
                    break;
                case 14 when ReferenceEquals(nameString, "Content-Length"):
                    if (contentLength >= 0 || !TryParseLength(value, out contentLength)) return Http1HeadVerdict.HandOff;
                    break;
            }
            var valueString = request.HeaderValue(count - 1, value);
            headers[nameString] = headers.TryGetValue(nameString, out var existing) ? StringValues.Concat(existing, valueString) : new StringValues(valueString);
        }
        if (hosts != 1) return Http1HeadVerdict.HandOff;
        request.HeaderCount = count;
        request.ContentLength = contentLength;
        request.KeepAlive = keepAlive;
        headLength = pos;
        return Http1HeadVerdict.Complete;
    }

    private static bool OnlyTabs(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
            if (b is not ((>= (byte)' ' and <= (byte)'~') or (byte)'\t')) return false;
        return true;
    }

    private static string? KnownMethod(ReadOnlySpan<byte> m) => m.Length switch
    {
        3 when m.SequenceEqual("GET"u8) => HttpMethods.Get,
        3 when m.SequenceEqual("PUT"u8) => HttpMethods.Put,
        4 when m.SequenceEqual("POST"u8) => HttpMethods.Post,
        4 when m.SequenceEqual("HEAD"u8) => HttpMethods.Head,
        5 when m.SequenceEqual("PATCH"u8) => HttpMethods.Patch,
        5 when m.SequenceEqual("TRACE"u8) => HttpMethods.Trace,
        6 when m.SequenceEqual("DELETE"u8) => HttpMethods.Delete,
        7 when m.SequenceEqual("OPTIONS"u8) => HttpMethods.Options,
        _ => null,
    };

    /// <summary>Whether a comma-separated header value holds <paramref name="token"/> (ASCII case-insensitive).</summary>
    private static bool HasToken(ReadOnlySpan<byte> value, ReadOnlySpan<byte> token)
    {
        while (!value.IsEmpty)
        {
            var comma = value.IndexOf((byte)',');
            var item = (comma < 0 ? value : value[..comma]).Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(item, token)) return true;
            if (comma < 0) break;
            value = value[(comma + 1)..];
        }
        return false;
    }

    /// <summary>Digits only, no sign, at most 18 of them (Kestrel's rule: anything else is a bad request).</summary>
    private static bool TryParseLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty || value.Length > 18) return false;
        foreach (var b in value)
        {
            if ((uint)(b - '0') > 9) return false;
            length = length * 10 + (b - '0');
        }
        return true;
    }

    /// <summary>Kestrel's spelling of a known header name, or null.</summary>
    internal static string? KnownName(ReadOnlySpan<byte> name)
    {
        if (name.Length > 32) return null;
        Span<char> chars = stackalloc char[name.Length];
        for (var i = 0; i < name.Length; i++) chars[i] = (char)name[i];
        return s_knownNames.TryGetValue(chars, out _, out var known) ? known : null;
    }
}
