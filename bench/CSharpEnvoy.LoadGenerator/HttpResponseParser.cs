using System.Text;

namespace CSharpEnvoy.LoadGenerator;

internal enum ParseStatus
{
    NeedMore,
    Complete,
    Error,
}

/// <summary>
/// Minimal incremental HTTP/1.1 response parser for one response at a time on a keep-alive connection (RFC 9112):
/// the status line and headers must be whole in the buffer; bodies (Content-Length, chunked, or until close) are
/// counted, not kept. Informational (1xx) responses are skipped; 204 and 304 have no body.
/// </summary>
internal sealed class HttpResponseParser
{
    private enum State
    {
        Head,
        Body,
        ChunkSize,
        ChunkData,
        ChunkDataEnd,
        Trailers,
        UntilClose,
    }

    private State _state;
    private long _remaining;

    public int StatusCode { get; private set; }

    /// <summary>The server asked to close the connection after this response (or spoke HTTP/1.0).</summary>
    public bool ConnectionClose { get; private set; }

    public void Reset()
    {
        _state = State.Head;
        _remaining = 0;
        StatusCode = 0;
        ConnectionClose = false;
    }

    /// <summary>
    /// Parses what <paramref name="data"/> holds. <paramref name="consumed"/> is how many bytes were used: on
    /// <see cref="ParseStatus.Complete"/> the end of the response, on <see cref="ParseStatus.NeedMore"/> the bytes
    /// before an incomplete line, which the caller keeps and extends.
    /// </summary>
    public ParseStatus Parse(ReadOnlySpan<byte> data, out int consumed)
    {
        var pos = 0;
        while (true)
        {
            var rest = data[pos..];
            switch (_state)
            {
                case State.Head:
                {
                    var end = rest.IndexOf("\r\n\r\n"u8);
                    if (end < 0)
                    {
                        consumed = pos;
                        return ParseStatus.NeedMore;
                    }
                    if (!ParseHead(rest[..(end + 2)]))
                    {
                        consumed = pos;
                        return ParseStatus.Error;
                    }
                    pos += end + 4;
                    if (StatusCode < 200)
                    {
                        StatusCode = 0; // 1xx: the final response follows
                        ConnectionClose = false;
                        _state = State.Head;
                    }
                    else if (_state == State.Body && _remaining == 0)
                    {
                        consumed = pos;
                        return ParseStatus.Complete;
                    }
                    break;
                }
                case State.Body:
                case State.ChunkData:
                {
                    var take = (int)Math.Min(_remaining, rest.Length);
                    pos += take;
                    _remaining -= take;
                    if (_remaining > 0)
                    {
                        consumed = pos;
                        return ParseStatus.NeedMore;
                    }
                    if (_state == State.Body)
                    {
                        consumed = pos;
                        return ParseStatus.Complete;
                    }
                    _state = State.ChunkDataEnd;
                    break;
                }
                case State.ChunkDataEnd:
                    if (rest.Length < 2)
                    {
                        consumed = pos;
                        return ParseStatus.NeedMore;
                    }
                    if (rest[0] != '\r' || rest[1] != '\n')
                    {
                        consumed = pos;
                        return ParseStatus.Error;
                    }
                    pos += 2;
                    _state = State.ChunkSize;
                    break;
                case State.ChunkSize:
                case State.Trailers:
                {
                    var eol = rest.IndexOf("\r\n"u8);
                    if (eol < 0)
                    {
                        consumed = pos;
                        return rest.Length > 4096 ? ParseStatus.Error : ParseStatus.NeedMore;
                    }
                    var line = rest[..eol];
                    pos += eol + 2;
                    if (_state == State.Trailers)
                    {
                        if (line.IsEmpty)
                        {
                            consumed = pos;
                            return ParseStatus.Complete;
                        }
                        break;
                    }
                    if (!TryParseChunkSize(line, out _remaining))
                    {
                        consumed = pos;
                        return ParseStatus.Error;
                    }
                    _state = _remaining == 0 ? State.Trailers : State.ChunkData;
                    break;
                }
                default: // UntilClose: everything up to the end of the stream is body
                    consumed = data.Length;
                    return ParseStatus.NeedMore;
            }
        }
    }

    /// <summary>The peer closed the connection: completes a body delimited by the close, anything else is cut short.</summary>
    public ParseStatus OnEndOfStream() => _state == State.UntilClose ? ParseStatus.Complete : ParseStatus.Error;

    // head: status line and header lines, each ending in CRLF (the empty line excluded).
    private bool ParseHead(ReadOnlySpan<byte> head)
    {
        var eol = head.IndexOf("\r\n"u8);
        var statusLine = head[..eol];
        // "HTTP/1.1 200 OK": the version, a space, three digits, then a space or the end of the line.
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1."u8) || statusLine[8] != ' '
            || (statusLine.Length > 12 && statusLine[12] != ' '))
        {
            return false;
        }
        var code = 0;
        for (var i = 9; i < 12; i++)
        {
            var d = statusLine[i] - '0';
            if ((uint)d > 9)
            {
                return false;
            }
            code = code * 10 + d;
        }
        StatusCode = code;
        ConnectionClose = statusLine[7] == '0';
        long contentLength = -1;
        var chunked = false;
        var rest = head[(eol + 2)..];
        while (!rest.IsEmpty)
        {
            eol = rest.IndexOf("\r\n"u8);
            var line = rest[..eol];
            rest = rest[(eol + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                return false;
            }
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "content-length"u8))
            {
                if (!TryParseDecimal(value, out var length) || (contentLength >= 0 && contentLength != length))
                {
                    return false;
                }
                contentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8))
            {
                // chunked must be the last coding (RFC 9112 §6.1); anything else has no length we can use.
                chunked = EndsWithIgnoreCaseAscii(value, "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "connection"u8))
            {
                if (ContainsIgnoreCaseAscii(value, "close"u8))
                {
                    ConnectionClose = true;
                }
                else if (ContainsIgnoreCaseAscii(value, "keep-alive"u8))
                {
                    ConnectionClose = false;
                }
            }
        }
        if (code < 200 || code == 204 || code == 304)
        {
            _state = State.Body;
            _remaining = 0;
        }
        else if (chunked)
        {
            _state = State.ChunkSize;
        }
        else if (contentLength >= 0)
        {
            _state = State.Body;
            _remaining = contentLength;
        }
        else
        {
            _state = State.UntilClose;
            ConnectionClose = true;
        }
        return true;
    }

    private static bool TryParseDecimal(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.IsEmpty || s.Length > 18)
        {
            return false;
        }
        foreach (var b in s)
        {
            var d = b - '0';
            if ((uint)d > 9)
            {
                return false;
            }
            value = value * 10 + d;
        }
        return true;
    }

    // "1a3;ext=1" -> 0x1a3; the size ends at an extension or whitespace.
    private static bool TryParseChunkSize(ReadOnlySpan<byte> line, out long size)
    {
        size = 0;
        var digits = 0;
        foreach (var b in line)
        {
            int d;
            if (b is >= (byte)'0' and <= (byte)'9')
            {
                d = b - '0';
            }
            else if ((b | 0x20) is >= (byte)'a' and <= (byte)'f')
            {
                d = (b | 0x20) - 'a' + 10;
            }
            else if (b is (byte)';' or (byte)' ' or (byte)'\t')
            {
                break;
            }
            else
            {
                return false;
            }
            if (++digits > 15)
            {
                return false;
            }
            size = size * 16 + d;
        }
        return digits > 0;
    }

    private static bool EndsWithIgnoreCaseAscii(ReadOnlySpan<byte> value, ReadOnlySpan<byte> suffix) =>
        value.Length >= suffix.Length && Ascii.EqualsIgnoreCase(value[^suffix.Length..], suffix);

    private static bool ContainsIgnoreCaseAscii(ReadOnlySpan<byte> value, ReadOnlySpan<byte> word)
    {
        for (var i = 0; i + word.Length <= value.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(value.Slice(i, word.Length), word))
            {
                return true;
            }
        }
        return false;
    }
}
