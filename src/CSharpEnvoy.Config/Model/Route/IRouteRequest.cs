namespace CSharpEnvoy.Config.Model.Route;

/// <summary>
/// The parts of a request that route matching reads. Implementations should return cached
/// strings so that matching allocates nothing.
/// </summary>
internal interface IRouteRequest
{
    /// <summary>The :path without the query string (and without any '#fragment').</summary>
    string Path { get; }

    /// <summary>Everything after the first '?' of :path; empty when there is none.</summary>
    string Query { get; }

    /// <summary>
    /// The value of a header by lower-case name, or null when absent. Repeated headers are joined
    /// with ',' (Envoy's rule). Must also serve the pseudo-headers :method, :authority, :scheme and :path,
    /// because Envoy users match methods and hosts through them.
    /// </summary>
    string? GetHeader(string lowerName);
}
