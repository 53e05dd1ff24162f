using System.Text;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Codec;

/// <summary>
/// The parsed head of the current request on an <see cref="Http1ServerConnection"/>, reused from one request to the
/// next. A keep-alive client sends much the same head every time, so the strings of the previous head (target,
/// header names and values, by position) are kept and reused when the bytes match: a repeated request allocates none.
/// </summary>
internal sealed class Http1ServerRequest
{
    private string[] _names = new string[16];
    private string[] _values = new string[16];
    /// <summary>Entries of <see cref="_names"/>/<see cref="_values"/> that hold the previous head's strings.</summary>
    private int _cached;
    private string _rawTarget = "/";

    public string Method { get; set; } = HttpMethods.Get;
    public string RawTarget => _rawTarget;
    public string Path { get; private set; } = "/";
    /// <summary>The query with its '?', or empty.</summary>
    public string QueryString { get; private set; } = "";
    public HeaderDictionary Headers { get; } = new(8);
    public int HeaderCount { get; set; }
    /// <summary>The Content-Length, or -1 when the request has none (and so no body).</summary>
    public long ContentLength { get; set; } = -1;
    /// <summary>False when the request said <c>Connection: close</c>.</summary>
    public bool KeepAlive { get; set; } = true;

    /// <summary>Readies the object for the next head: the header strings parsed so far become the cache.</summary>
    public void Reset()
    {
        _cached = HeaderCount;
        HeaderCount = 0;
        Headers.Clear();
    }

    public void SetTarget(ReadOnlySpan<byte> target, int query)
    {
        if (!Matches(target, _rawTarget))
        {
            _rawTarget = Encoding.ASCII.GetString(target);
            Path = query < 0 ? _rawTarget : _rawTarget[..query];
            QueryString = query < 0 ? "" : _rawTarget[query..];
        }
    }

    /// <summary>The string for the name of header line <paramref name="index"/>: the previous head's, Kestrel's
    /// spelling of a known header, or a new one.</summary>
    public string HeaderName(int index, ReadOnlySpan<byte> bytes)
    {
        if (index < _cached && Matches(bytes, _names[index])) return _names[index];
        var s = Http1RequestParser.KnownName(bytes) ?? Encoding.ASCII.GetString(bytes);
        Store(ref _names, index, s);
        return s;
    }

    public string HeaderValue(int index, ReadOnlySpan<byte> bytes)
    {
        if (index < _cached && Matches(bytes, _values[index])) return _values[index];
        var s = bytes.IsEmpty ? "" : Encoding.ASCII.GetString(bytes);
        Store(ref _values, index, s);
        return s;
    }

    private void Store(ref string[] array, int index, string s)
    {
        if (index >= array.Length) Array.Resize(ref array, array.Length * 2);
        array[index] = s;
    }

    /// <summary>Whether ASCII <paramref name="bytes"/> spell <paramref name="s"/> exactly. Case counts: an unknown name
    /// keeps the client's spelling, as in Kestrel, and a known one sent in another case is looked up again.</summary>
    private static bool Matches(ReadOnlySpan<byte> bytes, string? s)
    {
        if (s is null || s.Length != bytes.Length) return false;
        return Ascii.Equals(bytes, s);
    }
}
