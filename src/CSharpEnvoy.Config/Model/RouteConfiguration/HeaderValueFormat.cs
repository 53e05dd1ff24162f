using System.Text;

namespace CSharpEnvoy.Config.Model.RouteConfiguration;

/// <summary>Command operators usable in header values (Envoy's "custom request/response headers").</summary>
internal enum HeaderValueOperator
{
    Literal,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    DownstreamLocalAddressWithoutPort,
    Protocol,
    Hostname,
    /// <summary><c>%REQ(name)%</c>: a request header value (the argument is the lower-case name).</summary>
    RequestHeader,
}

internal readonly record struct HeaderValueSegment(HeaderValueOperator Operator, string Text);

/// <summary>
/// A header value parsed once at config time: either a plain literal (the common case, no per-request work) or a
/// list of literal and operator segments. <c>%%</c> is a literal percent sign, as in Envoy.
/// </summary>
internal sealed class HeaderValueFormat
{
    private HeaderValueFormat(string? literal, HeaderValueSegment[] segments)
    {
        Literal = literal;
        Segments = segments;
    }

    /// <summary>Non-null when the value has no operators.</summary>
    public string? Literal { get; }
    public HeaderValueSegment[] Segments { get; }

    public static HeaderValueFormat FromLiteral(string value) => new(value, Array.Empty<HeaderValueSegment>());

    public static HeaderValueFormat? Parse(string value, out string? error)
    {
        error = null;
        if (value.IndexOf('%') < 0) return FromLiteral(value);
        var segments = new List<HeaderValueSegment>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < value.Length)
        {
            var c = value[i];
            if (c != '%')
            {
                literal.Append(c);
                i++;
                continue;
            }
            if (i + 1 < value.Length && value[i + 1] == '%')
            {
                literal.Append('%');
                i += 2;
                continue;
            }
            var end = value.IndexOf('%', i + 1);
            if (end < 0)
            {
                error = $"invalid header value format '{value}': unterminated '%' operator (write '%%' for a literal percent sign)";
                return null;
            }
            var token = value.Substring(i + 1, end - i - 1);
            var seg = ParseOperator(token);
            if (seg is null)
            {
                error = $"unsupported header value operator '%{token}%' in '{value}'";
                return null;
            }
            if (literal.Length > 0)
            {
                segments.Add(new HeaderValueSegment(HeaderValueOperator.Literal, literal.ToString()));
                literal.Clear();
            }
            segments.Add(seg.Value);
            i = end + 1;
        }
        if (literal.Length > 0) segments.Add(new HeaderValueSegment(HeaderValueOperator.Literal, literal.ToString()));
        if (segments.Count == 1 && segments[0].Operator == HeaderValueOperator.Literal) return FromLiteral(segments[0].Text);
        return new HeaderValueFormat(null, segments.ToArray());
    }

    private static HeaderValueSegment? ParseOperator(string token)
    {
        switch (token)
        {
            case "DOWNSTREAM_REMOTE_ADDRESS": return new(HeaderValueOperator.DownstreamRemoteAddress, "");
            case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": return new(HeaderValueOperator.DownstreamRemoteAddressWithoutPort, "");
            case "DOWNSTREAM_LOCAL_ADDRESS": return new(HeaderValueOperator.DownstreamLocalAddress, "");
            case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": return new(HeaderValueOperator.DownstreamLocalAddressWithoutPort, "");
            case "PROTOCOL": return new(HeaderValueOperator.Protocol, "");
            case "HOSTNAME": return new(HeaderValueOperator.Hostname, "");
        }
        if (token.StartsWith("REQ(", StringComparison.Ordinal) && token.EndsWith(')') && token.Length > 5)
            return new(HeaderValueOperator.RequestHeader, token[4..^1].ToLowerInvariant());
        return null;
    }

    public override string ToString() => Literal ?? string.Concat(Segments.Select(s => s.Operator == HeaderValueOperator.Literal ? s.Text : $"%{s.Operator}%"));
}
