namespace CSharpEnvoy.Config.Model.RouteConfiguration;

/// <summary>
/// One <c>typed_per_filter_config</c> entry of a route, virtual host or route configuration, keyed by the HTTP
/// filter's configured name (or its extension name). <see cref="Config"/> is the filter's own validated per-route
/// model (for example <c>FaultFilterModel</c>); null when the entry only enables or disables the filter
/// (<c>envoy.config.route.v3.FilterConfig</c> without <c>config</c>).
/// </summary>
internal sealed record PerFilterConfigModel(object? Config, bool Disabled);

/// <summary>The per-filter config maps of the three route levels, looked up most specific first (Envoy's
/// <c>RouteEntryImplBase::mostSpecificPerFilterConfig</c>: route, then virtual host, then route configuration).</summary>
internal static class PerFilterConfigLookup
{
    /// <summary>The most specific entry for a filter: first by its configured name, then by its extension name, as
    /// Envoy's filter manager does. Null when no level has one.</summary>
    public static PerFilterConfigModel? Find(RouteConfigurationModel? routes, VirtualHostModel? vhost, RouteModel? route,
        string configName, string extensionName)
    {
        var found = FindByName(routes, vhost, route, configName);
        if (found is null && !ReferenceEquals(configName, extensionName) && configName != extensionName)
            found = FindByName(routes, vhost, route, extensionName);
        return found;
    }

    private static PerFilterConfigModel? FindByName(RouteConfigurationModel? routes, VirtualHostModel? vhost, RouteModel? route, string name)
    {
        if (route?.TypedPerFilterConfig is { } r && r.TryGetValue(name, out var e)) return e;
        if (vhost?.TypedPerFilterConfig is { } v && v.TryGetValue(name, out e)) return e;
        if (routes?.TypedPerFilterConfig is { } c && c.TryGetValue(name, out e)) return e;
        return null;
    }
}
