using CSharpEnvoy.Config.Loading;

namespace CSharpEnvoy.Config.Tests.Loading;

/// <summary>The registry builds a package's descriptors on the first lookup of a name in it.</summary>
public sealed class ProtoRegistryTests
{
    private static ProtoRegistry Fresh() => new(typeof(ProtoRegistry).Assembly);

    [Fact]
    public void Find_LoadsOnlyThePackageAsked_AndResolvesNestedAndWellKnownTypes()
    {
        var registry = Fresh();
        var before = registry.UnloadedPackages;

        var hcm = registry.Find("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
        Assert.Equal("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm?.FullName);
        Assert.Equal(before - 1, registry.UnloadedPackages);

        Assert.Equal("envoy.config.cluster.v3.Cluster.EdsClusterConfig", registry.Find("envoy.config.cluster.v3.Cluster.EdsClusterConfig")?.FullName);
        Assert.Equal("google.protobuf.Duration", registry.Find("type.googleapis.com/google.protobuf.Duration")?.FullName);
        Assert.Equal("opentelemetry.proto.trace.v1.Span", registry.Find("opentelemetry.proto.trace.v1.Span")?.FullName);
        Assert.Null(registry.Find("type.googleapis.com/envoy.config.cluster.v3.NoSuchMessage"));
        Assert.Null(registry.Find("type.googleapis.com/envoy.nowhere.v3.Thing"));
        Assert.True(registry.UnloadedPackages > before / 2, $"{registry.UnloadedPackages} of {before} packages still unloaded");
    }

    [Fact]
    public void AllMessages_AreTheOnesFoundOneByOne_AndConcurrentLookupsOfOnePackageAllResolve()
    {
        var all = Fresh().Messages.Select(m => m.FullName).Order(StringComparer.Ordinal).ToArray();
        Assert.Contains("envoy.config.bootstrap.v3.Bootstrap", all);
        Assert.True(all.Length > 300, $"only {all.Length} messages");

        // Several threads ask for different types of one package at once: none may see it half loaded.
        var registry = Fresh();
        var names = all.Where(n => n.StartsWith("envoy.config.route.v3.", StringComparison.Ordinal)).ToArray();
        var found = new string?[names.Length];
        Parallel.For(0, names.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => found[i] = registry.Find(names[i])?.FullName);
        Assert.Equal(names, found);
        Assert.Equal(all, registry.Messages.Select(m => m.FullName).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(0, registry.UnloadedPackages);
    }
}
