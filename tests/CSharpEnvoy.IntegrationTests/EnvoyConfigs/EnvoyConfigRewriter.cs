using YamlDotNet.RepresentationModel;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Makes a sandbox's Envoy config runnable on one machine, editing the parsed YAML (nothing else is touched):
/// <list type="bullet">
/// <item>every listener and the admin bind to <c>127.0.0.1</c> with <c>port_value: 0</c> (ephemeral; read back from the harness);</item>
/// <item>every cluster endpoint points at <c>127.0.0.1</c>; endpoints of a cluster the test maps to a backend get that
/// backend's port, the others keep their original port (they are only validated, never called).</item>
/// </list>
/// The sandbox's docker-compose host names thereby become 127.0.0.1.
/// </summary>
internal static class EnvoyConfigRewriter
{
    public const string Loopback = "127.0.0.1";

    /// <summary>Rewrites a bootstrap. <paramref name="clusterBackends"/> maps cluster names to backend addresses
    /// ("127.0.0.1:port"); naming a cluster the config does not have is a test bug and throws.</summary>
    public static string RewriteBootstrap(string yaml, IReadOnlyDictionary<string, string>? clusterBackends = null)
    {
        var root = Parse(yaml);
        var unused = new HashSet<string>(clusterBackends?.Keys ?? Array.Empty<string>());

        if (Child(root, "admin") is YamlMappingNode admin) BindToLoopbackEphemeral(admin);
        if (Child(root, "static_resources") is YamlMappingNode staticResources)
        {
            foreach (var listener in Items(Child(staticResources, "listeners"))) BindToLoopbackEphemeral(listener);
            foreach (var cluster in Items(Child(staticResources, "clusters"))) PointAtBackend(cluster, clusterBackends, unused);
        }

        if (unused.Count > 0) throw new ArgumentException($"the config has no cluster named {string.Join(", ", unused)}");
        return Save(root);
    }

    /// <summary>
    /// Builds a bootstrap whose static resources are the listeners and clusters of xDS resource files (the
    /// <c>resources:</c> files a <c>path_config_source</c> points at), rewritten as <see cref="RewriteBootstrap"/> does,
    /// plus an admin on an ephemeral port.
    /// </summary>
    public static string StaticBootstrapFromResourceFiles(IEnumerable<string> resourceFiles, IReadOnlyDictionary<string, string>? clusterBackends = null)
    {
        var listeners = new YamlSequenceNode();
        var clusters = new YamlSequenceNode();
        foreach (var text in resourceFiles)
        {
            foreach (var resource in Items(Child(Parse(text), "resources")))
            {
                var type = (Child(resource, "@type") as YamlScalarNode)?.Value ?? "";
                var body = new YamlMappingNode();
                foreach (var (k, v) in resource.Children)
                    if (k is not YamlScalarNode { Value: "@type" }) body.Add(k, v);
                if (type.EndsWith("/envoy.config.listener.v3.Listener", StringComparison.Ordinal)) listeners.Add(body);
                else if (type.EndsWith("/envoy.config.cluster.v3.Cluster", StringComparison.Ordinal)) clusters.Add(body);
                else throw new ArgumentException($"unexpected resource type '{type}'");
            }
        }
        var root = new YamlMappingNode
        {
            { "admin", new YamlMappingNode { { "address", new YamlMappingNode { { "socket_address", new YamlMappingNode() } } } } },
            { "static_resources", new YamlMappingNode { { "listeners", listeners }, { "clusters", clusters } } },
        };
        return RewriteBootstrap(Save(root), clusterBackends);
    }

    /// <summary>The listener/admin binding: <c>address.socket_address</c> becomes 127.0.0.1 port 0.</summary>
    private static void BindToLoopbackEphemeral(YamlMappingNode listenerOrAdmin)
    {
        if (SocketAddress(listenerOrAdmin) is not { } sa) return;
        Set(sa, "address", Loopback);
        Set(sa, "port_value", "0");
    }

    /// <summary>Every <c>load_assignment.endpoints[].lb_endpoints[].endpoint.address.socket_address</c> of a cluster.</summary>
    private static void PointAtBackend(YamlMappingNode cluster, IReadOnlyDictionary<string, string>? clusterBackends, HashSet<string> unused)
    {
        var name = (Child(cluster, "name") as YamlScalarNode)?.Value ?? "";
        string? port = null;
        if (clusterBackends is not null && clusterBackends.TryGetValue(name, out var backend))
        {
            port = backend[(backend.LastIndexOf(':') + 1)..];
            unused.Remove(name);
        }
        if (Child(cluster, "load_assignment") is not YamlMappingNode loadAssignment) return;
        foreach (var localityEndpoints in Items(Child(loadAssignment, "endpoints")))
        foreach (var lbEndpoint in Items(Child(localityEndpoints, "lb_endpoints")))
        {
            if (Child(lbEndpoint, "endpoint") is not YamlMappingNode endpoint || SocketAddress(endpoint) is not { } sa) continue;
            Set(sa, "address", Loopback);
            if (port is not null) Set(sa, "port_value", port);
        }
    }

    private static YamlMappingNode? SocketAddress(YamlMappingNode owner) =>
        Child(owner, "address") is YamlMappingNode address ? Child(address, "socket_address") as YamlMappingNode : null;

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    /// <summary>The mappings of a list; Envoy also accepts a single object where a list is expected.</summary>
    private static IEnumerable<YamlMappingNode> Items(YamlNode? node) => node switch
    {
        YamlSequenceNode seq => seq.Children.OfType<YamlMappingNode>(),
        YamlMappingNode single => new[] { single },
        _ => Array.Empty<YamlMappingNode>(),
    };

    private static void Set(YamlMappingNode map, string key, string value) => map.Children[new YamlScalarNode(key)] = new YamlScalarNode(value);

    private static YamlMappingNode Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Single().RootNode as YamlMappingNode
            ?? throw new ArgumentException("the config's top level is not a mapping");
    }

    private static string Save(YamlNode root)
    {
        var writer = new StringWriter();
        new YamlStream(new YamlDocument(root)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }
}
