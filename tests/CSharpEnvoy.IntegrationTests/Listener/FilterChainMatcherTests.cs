using System.Net;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Listener;

namespace CSharpEnvoy.IntegrationTests.Listener;

/// <summary>Envoy's filter chain selection order, most-specific-wins at each step, and no backtracking.</summary>
public sealed class FilterChainMatcherTests
{
    private static ConnectionMatchInput Input(int localPort = 443, string remote = "10.1.2.3", string sni = "", string tp = "tls", params string[] alpn) =>
        new(new IPEndPoint(IPAddress.Parse("10.0.0.1"), localPort), new IPEndPoint(IPAddress.Parse(remote), 40000),
            new ClientHelloInfo { ServerName = sni, TransportProtocol = tp, ApplicationProtocols = alpn });

    private static int Select(ConnectionMatchInput input, params FilterChainMatchModel[] chains) => new FilterChainMatcher(chains).Select(input);

    [Fact]
    public void ServerNames_ExactBeatsLongestWildcard_BeatsCatchAll()
    {
        FilterChainMatchModel[] chains =
        [
            new() { ServerNames = [".example.com"] },
            new() { ServerNames = [".a.example.com"] },
            new() { ServerNames = ["www.a.example.com"] },
            new(),
        ];
        Assert.Equal(2, Select(Input(sni: "www.a.example.com"), chains));
        Assert.Equal(1, Select(Input(sni: "x.a.example.com"), chains));
        Assert.Equal(0, Select(Input(sni: "b.example.com"), chains));
        Assert.Equal(3, Select(Input(sni: "example.com"), chains));
        Assert.Equal(3, Select(Input(sni: ""), chains));
    }

    [Fact]
    public void DestinationPort_IsDecidedFirst_WithoutBacktracking()
    {
        // The port-specific chain wins the first step; its server name then fails, and Envoy does not fall back to
        // the chain without a port even though that one would have matched.
        FilterChainMatchModel[] chains =
        [
            new() { DestinationPort = 443, ServerNames = ["a.test"] },
            new() { ServerNames = ["b.test"] },
        ];
        Assert.Equal(-1, Select(Input(localPort: 443, sni: "b.test"), chains));
        Assert.Equal(1, Select(Input(localPort: 8443, sni: "b.test"), chains));
        Assert.Equal(0, Select(Input(localPort: 443, sni: "a.test"), chains));
    }

    [Fact]
    public void ApplicationProtocols_FollowTheClientsOrder_AndSourceRangesTakeTheLongestPrefix()
    {
        FilterChainMatchModel[] alpn =
        [
            new() { ApplicationProtocols = ["http/1.1"] },
            new() { ApplicationProtocols = ["h2"] },
        ];
        Assert.Equal(1, Select(Input(alpn: ["h2", "http/1.1"]), alpn));
        Assert.Equal(0, Select(Input(alpn: ["http/1.1", "h2"]), alpn));
        Assert.Equal(-1, Select(Input(alpn: ["foo"]), alpn));

        FilterChainMatchModel[] sources =
        [
            new() { SourcePrefixRanges = [new CidrRangeModel(IPAddress.Parse("10.0.0.0"), 8)] },
            new() { SourcePrefixRanges = [new CidrRangeModel(IPAddress.Parse("10.1.0.0"), 16)] },
            new() { TransportProtocol = "raw_buffer" },
        ];
        Assert.Equal(1, Select(Input(remote: "10.1.2.3"), sources));
        Assert.Equal(0, Select(Input(remote: "10.2.2.3"), sources));
        Assert.Equal(-1, Select(Input(remote: "192.168.0.1"), sources));
        Assert.Equal(2, Select(Input(remote: "10.1.2.3", tp: "raw_buffer"), sources));
    }
}
