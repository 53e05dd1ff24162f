using YamlDotNet.RepresentationModel;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>The rewriter changes exactly the addresses it documents, and nothing else.</summary>
public sealed class EnvoyConfigRewriterTests
{
    [Fact]
    public void Rewrite_BindsListenersAndAdminToLoopbackPortZero_AndPointsMappedClustersAtTheirBackends()
    {
        var original = EnvoyConfigCorpus.Read("front-proxy/envoy.yaml");

        var rewritten = Parse(EnvoyConfigRewriter.RewriteBootstrap(original,
            new Dictionary<string, string> { ["service1-envoy"] = "127.0.0.1:4001" }));

        var staticResources = (YamlMappingNode)rewritten["static_resources"];
        foreach (YamlMappingNode listener in (YamlSequenceNode)staticResources["listeners"])
            Assert.Equal(("127.0.0.1", "0"), SocketAddress(listener));
        Assert.Equal(("127.0.0.1", "0"), SocketAddress((YamlMappingNode)rewritten["admin"]));
        var clusters = ((YamlSequenceNode)staticResources["clusters"]).Cast<YamlMappingNode>().ToList();
        Assert.Equal(("127.0.0.1", "4001"), EndpointAddress(clusters[0]));
        // Unmapped clusters keep their port; only the docker-compose host name goes.
        Assert.Equal(("127.0.0.1", "8000"), EndpointAddress(clusters[1]));
        // Everything else is untouched: e.g. the TLS certificate and the runtime layer.
        Assert.Contains("BEGIN CERTIFICATE", ToText(rewritten));
        Assert.True(rewritten.Children.ContainsKey(new YamlScalarNode("layered_runtime")));
    }

    [Fact]
    public void Rewrite_MappingAClusterTheConfigDoesNotHave_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => EnvoyConfigRewriter.RewriteBootstrap(
            EnvoyConfigCorpus.Read("double-proxy/envoy.yaml"), new Dictionary<string, string> { ["no-such-cluster"] = "127.0.0.1:1" }));
        Assert.Contains("no-such-cluster", ex.Message);
    }

    private static (string?, string?) SocketAddress(YamlMappingNode owner)
    {
        var sa = (YamlMappingNode)((YamlMappingNode)owner["address"])["socket_address"];
        return (((YamlScalarNode)sa["address"]).Value, ((YamlScalarNode)sa["port_value"]).Value);
    }

    private static (string?, string?) EndpointAddress(YamlMappingNode cluster)
    {
        var la = (YamlMappingNode)cluster["load_assignment"];
        var lbEndpoint = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)((YamlSequenceNode)la["endpoints"])[0])["lb_endpoints"])[0];
        return SocketAddress((YamlMappingNode)lbEndpoint["endpoint"]);
    }

    private static YamlMappingNode Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static string ToText(YamlNode node)
    {
        var w = new StringWriter();
        new YamlStream(new YamlDocument(node)).Save(w, assignAnchors: false);
        return w.ToString();
    }
}
