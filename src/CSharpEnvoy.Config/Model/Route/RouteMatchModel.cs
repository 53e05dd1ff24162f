using System.Collections.Immutable;
using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.Route;

/// <summary>RouteMatch's path_specifier (connect_matcher is not supported).</summary>
internal enum PathMatchKind
{
    Prefix,
    Path,
    SafeRegex,
    PathSeparatedPrefix,
}

/// <summary>
/// Envoy's <c>config.route.v3.RouteMatch</c>: the path specifier plus headers, query_parameters
/// and grpc, all of which must match. Path tests run against the path without its query.
/// </summary>
/// <example>
/// <code>new RouteMatchModel(PathMatchKind.Prefix, "/api") { CaseSensitive = false, Headers = [h1], Grpc = true }</code>
/// </example>
internal sealed class RouteMatchModel
{
    private const string GrpcContentType = "application/grpc";

    private readonly ImmutableArray<HeaderMatcherModel> _headers = [];
    private readonly ImmutableArray<QueryParameterMatcherModel> _queryParameters = [];

    /// <summary>A prefix, path or path_separated_prefix rule.</summary>
    /// <exception cref="ArgumentException">For <see cref="PathMatchKind.SafeRegex"/> (use the other constructor), or an invalid path_separated_prefix.</exception>
    public RouteMatchModel(PathMatchKind kind, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (kind == PathMatchKind.SafeRegex || !Enum.IsDefined(kind))
        {
            throw new ArgumentException($"path kind {kind} needs a RegexMatcherModel", nameof(kind));
        }

        if (kind == PathMatchKind.PathSeparatedPrefix && !IsValidPathSeparatedPrefix(value))
        {
            // Envoy validates it against ^[^?#]+[^?#/]$.
            throw new ArgumentException(
                $"invalid path_separated_prefix '{value}': it must not be empty, contain '?' or '#', or end with '/'",
                nameof(value));
        }

        PathKind = kind;
        PathValue = value;
    }

    /// <summary>A safe_regex rule: the whole path (without query) must match.</summary>
    public RouteMatchModel(RegexMatcherModel safeRegex)
    {
        ArgumentNullException.ThrowIfNull(safeRegex);
        PathKind = PathMatchKind.SafeRegex;
        PathValue = safeRegex.Pattern;
        PathRegex = safeRegex;
    }

    public PathMatchKind PathKind { get; }

    /// <summary>The prefix, path or path_separated_prefix; the pattern for safe_regex.</summary>
    public string PathValue { get; }

    public RegexMatcherModel? PathRegex { get; }

    /// <summary>Applies to prefix, path and path_separated_prefix; never to safe_regex. Default true.</summary>
    public bool CaseSensitive { get; init; } = true;

    public ImmutableArray<HeaderMatcherModel> Headers
    {
        get => _headers;
        init => _headers = value.IsDefault ? [] : value;
    }

    public ImmutableArray<QueryParameterMatcherModel> QueryParameters
    {
        get => _queryParameters;
        init => _queryParameters = value.IsDefault ? [] : value;
    }

    /// <summary>Only gRPC requests: content-type "application/grpc" or "application/grpc+...".</summary>
    public bool Grpc { get; init; }

    public static RouteMatchModel ForPrefix(string prefix, bool caseSensitive = true) =>
        new(PathMatchKind.Prefix, prefix) { CaseSensitive = caseSensitive };

    public static RouteMatchModel ForPath(string path, bool caseSensitive = true) =>
        new(PathMatchKind.Path, path) { CaseSensitive = caseSensitive };

    public static RouteMatchModel ForPathSeparatedPrefix(string prefix, bool caseSensitive = true) =>
        new(PathMatchKind.PathSeparatedPrefix, prefix) { CaseSensitive = caseSensitive };

    public static RouteMatchModel ForSafeRegex(RegexMatcherModel regex) => new(regex);

    public static bool IsValidPathSeparatedPrefix(string value) =>
        value.Length >= 2 && !value.AsSpan().ContainsAny('?', '#') && value[^1] != '/';

    public bool Matches(IRouteRequest request)
    {
        // The path test is the cheapest and rejects most routes, so it goes first.
        if (!MatchesPath(request.Path))
        {
            return false;
        }

        if (Grpc && !IsGrpcContentType(request.GetHeader("content-type")))
        {
            return false;
        }

        ImmutableArray<HeaderMatcherModel> headers = _headers;
        for (int i = 0; i < headers.Length; i++)
        {
            HeaderMatcherModel h = headers[i];
            if (!h.Match(request.GetHeader(h.Name)))
            {
                return false;
            }
        }

        ImmutableArray<QueryParameterMatcherModel> queryParameters = _queryParameters;
        if (queryParameters.Length > 0)
        {
            ReadOnlySpan<char> query = request.Query;
            for (int i = 0; i < queryParameters.Length; i++)
            {
                if (!queryParameters[i].Match(query))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <param name="path">The path without its query string.</param>
    public bool MatchesPath(ReadOnlySpan<char> path)
    {
        switch (PathKind)
        {
            case PathMatchKind.Prefix:
                return CaseSensitive
                    ? path.StartsWith(PathValue, StringComparison.Ordinal)
                    : AsciiText.StartsWithIgnoreCase(path, PathValue);
            case PathMatchKind.Path:
                return CaseSensitive ? path.SequenceEqual(PathValue) : AsciiText.EqualsIgnoreCase(path, PathValue);
            case PathMatchKind.PathSeparatedPrefix:
                int n = PathValue.Length;
                bool prefixMatches = CaseSensitive
                    ? path.StartsWith(PathValue, StringComparison.Ordinal)
                    : AsciiText.StartsWithIgnoreCase(path, PathValue);
                return prefixMatches && (path.Length == n || path[n] == '/');
            default:
                return PathRegex!.IsFullMatch(path);
        }
    }

    // Envoy's Grpc::Common::hasGrpcContentType: application/grpc-web and the like are not gRPC.
    private static bool IsGrpcContentType(string? contentType) =>
        contentType is not null
        && contentType.StartsWith(GrpcContentType, StringComparison.Ordinal)
        && (contentType.Length == GrpcContentType.Length || contentType[GrpcContentType.Length] == '+');

    public override string ToString() => $"{PathKind}({PathValue})"
        + (CaseSensitive ? "" : " case-insensitive")
        + (_headers.Length > 0 ? $" headers={_headers.Length}" : "")
        + (_queryParameters.Length > 0 ? $" query={_queryParameters.Length}" : "")
        + (Grpc ? " grpc" : "");
}
