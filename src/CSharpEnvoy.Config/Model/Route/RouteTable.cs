namespace CSharpEnvoy.Config.Model.Route;

/// <summary>
/// A virtual host's ordered routes; the first whose match succeeds wins. Matches and routes sit in
/// parallel arrays so a smarter index (e.g. by first path segment) can be added without API changes.
/// </summary>
internal sealed class RouteTable<TRoute>
    where TRoute : class
{
    private readonly RouteMatchModel[] _matches;
    private readonly TRoute[] _routes;

    public RouteTable(IEnumerable<(RouteMatchModel Match, TRoute Route)> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var matches = new List<RouteMatchModel>();
        var values = new List<TRoute>();
        foreach ((RouteMatchModel match, TRoute route) in routes)
        {
            matches.Add(match ?? throw new ArgumentException("a route has no match", nameof(routes)));
            values.Add(route ?? throw new ArgumentException("a route is null", nameof(routes)));
        }

        _matches = matches.ToArray();
        _routes = values.ToArray();
    }

    public static RouteTable<TRoute> Empty { get; } = new([]);

    public int Count => _routes.Length;

    public RouteMatchModel GetMatch(int index) => _matches[index];

    public TRoute GetRoute(int index) => _routes[index];

    /// <summary>The first matching route, or null (Envoy then answers 404).</summary>
    public TRoute? Find(IRouteRequest request)
    {
        int i = FindIndex(request);
        return i < 0 ? null : _routes[i];
    }

    /// <summary>Index of the first route at or after <paramref name="startIndex"/> that matches, or -1.</summary>
    public int FindIndex(IRouteRequest request, int startIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegative(startIndex);
        RouteMatchModel[] matches = _matches;
        for (int i = startIndex; i < matches.Length; i++)
        {
            if (matches[i].Matches(request))
            {
                return i;
            }
        }

        return -1;
    }
}
