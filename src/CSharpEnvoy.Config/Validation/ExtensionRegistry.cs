namespace CSharpEnvoy.Config.Validation;

internal enum ExtensionCategory { NetworkFilter, HttpFilter, UpstreamProtocolOptions }

/// <summary>An extension csenvoy implements: its canonical name, the names Envoy still accepts for it, and its config type.</summary>
internal sealed record ExtensionInfo(ExtensionCategory Category, string Name, string TypeName, string[] Aliases, string Description);

/// <summary>
/// Every extension csenvoy implements. As in Envoy, an extension given with a <c>typed_config</c> is found by the
/// config's type URL; one given by <c>name</c> alone is found by its name (including legacy names such as
/// <c>envoy.router</c>).
/// </summary>
internal static class ExtensionRegistry
{
    public const string HttpConnectionManager = "envoy.filters.network.http_connection_manager";
    public const string Router = "envoy.filters.http.router";
    public const string UpstreamHttpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    public static readonly IReadOnlyList<ExtensionInfo> All = new[]
    {
        new ExtensionInfo(ExtensionCategory.NetworkFilter, HttpConnectionManager,
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            new[] { "envoy.http_connection_manager" }, "HTTP/1.1, HTTP/2 and gRPC proxying"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, Router, "envoy.extensions.filters.http.router.v3.Router",
            new[] { "envoy.router" }, "forwards to the routed cluster; always last"),
        new ExtensionInfo(ExtensionCategory.UpstreamProtocolOptions, UpstreamHttpProtocolOptions,
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", Array.Empty<string>(), "upstream HTTP/1.1 or HTTP/2 selection"),
    };

    public static ExtensionInfo? FindByName(ExtensionCategory category, string name)
    {
        foreach (var e in All)
        {
            if (e.Category != category) continue;
            if (e.Name == name) return e;
            foreach (var a in e.Aliases) if (a == name) return e;
        }
        return null;
    }

    public static ExtensionInfo? FindByType(ExtensionCategory category, string typeUrlOrName)
    {
        var slash = typeUrlOrName.LastIndexOf('/');
        var type = slash >= 0 ? typeUrlOrName[(slash + 1)..] : typeUrlOrName;
        foreach (var e in All)
            if (e.Category == category && e.TypeName == type) return e;
        return null;
    }

    public static bool IsSupportedType(string typeUrl)
    {
        var slash = typeUrl.LastIndexOf('/');
        var type = slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
        foreach (var e in All) if (e.TypeName == type) return true;
        return false;
    }
}
