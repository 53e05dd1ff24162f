using CSharpEnvoy.Config.Model.Route;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>
/// The request as route matching sees it: the raw (not percent-decoded) path and query, as Envoy matches them, and
/// headers by lower-case name including the pseudo-headers <c>:method</c>, <c>:authority</c>, <c>:path</c>, <c>:scheme</c>.
/// </summary>
internal sealed class RequestView : IRouteRequest
{
    private readonly HttpContext _context;

    public RequestView(HttpContext context, string scheme)
    {
        _context = context;
        Scheme = scheme;
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw)) raw = context.Request.Path.ToUriComponent() + context.Request.QueryString.ToUriComponent();
        RawTarget = raw;
        var pathStart = 0;
        // absolute-form (proxy) request-target: keep only the path part for matching.
        if (raw.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || raw.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            var slash = raw.IndexOf('/', raw.IndexOf("//", StringComparison.Ordinal) + 2);
            pathStart = slash < 0 ? raw.Length : slash;
        }
        var q = raw.IndexOf('?', pathStart);
        Path = q < 0 ? (pathStart == 0 ? raw : raw[pathStart..]) : raw[pathStart..q];
        if (Path.Length == 0) Path = "/";
        Query = q < 0 ? "" : raw[(q + 1)..];
    }

    public string RawTarget { get; }
    /// <summary>The path as routed and sent upstream: the request's, or its normalized form (<see cref="PathNormalizer"/>).</summary>
    public string Path { get; set; }
    /// <summary>The query string sent upstream (without its "?"); a filter may drop it.</summary>
    public string Query { get; set; }
    public string Scheme { get; }

    /// <summary>The path and query to send upstream (before any rewrite).</summary>
    public string PathAndQuery => Query.Length == 0 ? Path : Path + "?" + Query;

    public string? GetHeader(string lowerName)
    {
        if (lowerName.Length > 0 && lowerName[0] == ':')
        {
            return lowerName switch
            {
                ":method" => _context.Request.Method,
                ":authority" => _context.Request.Host.Value,
                ":path" => PathAndQuery,
                ":scheme" => Scheme,
                _ => null,
            };
        }
        var values = _context.Request.Headers[lowerName];
        return values.Count switch
        {
            0 => null,
            1 => values[0],
            _ => string.Join(',', values.ToArray()),
        };
    }
}
