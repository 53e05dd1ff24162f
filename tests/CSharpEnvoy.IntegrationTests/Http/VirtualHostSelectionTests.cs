using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>Virtual host selection by Host/:authority end to end (VirtualHost.domains), and require_tls.</summary>
public sealed class VirtualHostSelectionTests
{
    private static string Vhost(string name, string domains, string extra = "") => $$"""
        - name: {{name}}
          domains: {{domains}}
        {{Yaml.Indent(extra, 2)}}
          routes:
          - match: { prefix: "/" }
            direct_response: { status: 200, body: { inline_string: "{{name}}" } }
        """;

    private static readonly string Domains = string.Join("\n",
        Vhost("exact", "[\"api.example.com\"]"),
        Vhost("ported", "[\"ported.example.com:8080\"]"),
        Vhost("suffix", "[\"*.example.com\"]"),
        Vhost("deep-suffix", "[\"*.b.example.com\"]"),
        Vhost("prefix", "[\"api.*\"]"),
        Vhost("default", "[\"*\"]"));

    [Theory]
    [InlineData("api.example.com", "exact")]
    [InlineData("API.Example.COM", "exact")]            // case-insensitive
    [InlineData("foo.example.com", "suffix")]
    [InlineData("x.b.example.com", "deep-suffix")]      // the longest wildcard wins
    [InlineData("b.example.com", "suffix")]
    [InlineData("api.other.org", "prefix")]              // exact, then suffix, then prefix wildcards
    [InlineData("api.example.com:8080", "prefix")]       // the port is part of the host: no exact/suffix match
    [InlineData("ported.example.com:8080", "ported")]
    [InlineData("ported.example.com", "suffix")]
    [InlineData("example.com", "default")]               // "*.example.com" needs at least one character before it
    [InlineData("other.net", "default")]
    public async Task Domains_ExactSuffixPrefixAndDefault(string host, string expected)
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Domains));
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", host);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task IgnorePortInHostMatching_StripsThePort()
    {
        var vhosts = string.Join("\n", Vhost("exact", "[\"api.example.com\"]"), Vhost("default", "[\"*\"]")) + "\nignore_port_in_host_matching: true";
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts));
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", "api.example.com:8080");

        Assert.Equal("exact", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task NoDefault_UnknownHost_Is404()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Vhost("exact", "[\"api.example.com\"]")));
        using var client = proxy.Client("main");

        using var known = await GetAsync(client, "/", "api.example.com");
        using var unknown = await GetAsync(client, "/", "www.example.com");

        Assert.Equal(HttpStatusCode.OK, known.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task RequireTlsAll_RedirectsPlainHttpToHttps()
    {
        var vhosts = string.Join("\n",
            Vhost("secure", "[\"secure.example.com\", \"secure.example.com:8080\"]", "require_tls: ALL"),
            Vhost("default", "[\"*\"]"));
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts));
        using var client = proxy.Client("main");

        using var secure = await GetAsync(client, "/path/x?q=1", "secure.example.com");
        using var withPort = await GetAsync(client, "/p", "secure.example.com:8080");
        using var other = await GetAsync(client, "/path", "other.example.com");

        Assert.Equal(HttpStatusCode.MovedPermanently, secure.StatusCode);
        Assert.Equal("https://secure.example.com/path/x?q=1", secure.Headers.Location!.OriginalString);
        Assert.Equal("", await secure.Content.ReadAsStringAsync());
        // Envoy's createSslRedirectPath: "https://" + the Host header as sent + the path.
        Assert.Equal(HttpStatusCode.MovedPermanently, withPort.StatusCode);
        Assert.Equal("https://secure.example.com:8080/p", withPort.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal("default", await other.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RequireTlsExternalOnly_RedirectsOnlyExternalRequests()
    {
        var vhosts = Vhost("secure", "[\"*\"]", "require_tls: EXTERNAL_ONLY");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, hcmExtra: "use_remote_address: true"));
        using var client = proxy.Client("main");

        // A loopback peer without XFF is internal; with an XFF it is external.
        using var internalRequest = await GetAsync(client, "/x", "shop.example.com");
        using var externalRequest = await GetAsync(client, "/x", "shop.example.com", ("x-forwarded-for", "203.0.113.7"));

        Assert.Equal(HttpStatusCode.OK, internalRequest.StatusCode);
        Assert.Equal("secure", await internalRequest.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.MovedPermanently, externalRequest.StatusCode);
        Assert.Equal("https://shop.example.com/x", externalRequest.Headers.Location!.OriginalString);
    }
}
