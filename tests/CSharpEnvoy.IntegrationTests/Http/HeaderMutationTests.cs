using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>
/// request/response_headers_to_add and _to_remove at route configuration, virtual host, route and weighted cluster
/// level (Envoy's "custom request/response headers" and <c>HeaderParser::evaluateHeaders</c>).
/// </summary>
public sealed class HeaderMutationTests
{
    /// <summary>
    /// Every level appends to x-level, overwrites x-over, and the route adds x-temp which the virtual host removes.
    /// Route configuration level keys follow the virtual host list (an indentless YAML sequence ends there).
    /// </summary>
    private static string Levels(bool mostSpecificWins) => $$"""
        - name: vh
          domains: ["*"]
          request_headers_to_add:
          - header: { key: x-level, value: vhost }
          - header: { key: x-over, value: vhost }
            append_action: OVERWRITE_IF_EXISTS_OR_ADD
          request_headers_to_remove: [x-temp]
          response_headers_to_add:
          - header: { key: x-level, value: vhost }
          - header: { key: x-over, value: vhost }
            append_action: OVERWRITE_IF_EXISTS_OR_ADD
          response_headers_to_remove: [x-temp]
          routes:
          - match: { prefix: "/" }
            request_headers_to_add:
            - header: { key: x-level, value: route }
            - header: { key: x-over, value: route }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            - header: { key: x-temp, value: route }
            request_headers_to_remove: [x-client-secret]
            response_headers_to_add:
            - header: { key: x-level, value: route }
            - header: { key: x-over, value: route }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            - header: { key: x-temp, value: route }
            response_headers_to_remove: [x-backend]
            route:
              weighted_clusters:
                clusters:
                - name: backend
                  weight: 1
                  request_headers_to_add:
                  - header: { key: x-level, value: wc }
                  - header: { key: x-over, value: wc }
                    append_action: OVERWRITE_IF_EXISTS_OR_ADD
                  response_headers_to_add:
                  - header: { key: x-level, value: wc }
                  - header: { key: x-over, value: wc }
                    append_action: OVERWRITE_IF_EXISTS_OR_ADD
        most_specific_header_mutations_wins: {{(mostSpecificWins ? "true" : "false")}}
        request_headers_to_add:
        - header: { key: x-level, value: global }
        - header: { key: x-over, value: global }
          append_action: OVERWRITE_IF_EXISTS_OR_ADD
        response_headers_to_add:
        - header: { key: x-level, value: global }
        - header: { key: x-over, value: global }
          append_action: OVERWRITE_IF_EXISTS_OR_ADD
        """;

    [Fact]
    public async Task Levels_ByDefault_MostSpecificFirst_SoTheRouteConfigurationWins()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Levels(false), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null, ("x-client-secret", "s3cret"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Envoy: weighted cluster, route, virtual host, route configuration.
        Assert.Equal("wc,route,vhost,global", Upstream(response, "x-level"));
        Assert.Equal("global", Upstream(response, "x-over"));
        Assert.Null(Upstream(response, "x-temp"));          // added by the route, removed by the virtual host after it
        Assert.Null(Upstream(response, "x-client-secret")); // removed by the route
        Assert.Equal("wc,route,vhost,global", Header(response, "x-level"));
        Assert.Equal("global", Header(response, "x-over"));
        Assert.Null(Header(response, "x-temp"));
        Assert.Null(Header(response, "x-backend"));         // the upstream's header, removed by the route
    }

    [Fact]
    public async Task Levels_MostSpecificHeaderMutationsWins_ReversesRouteVirtualHostAndRouteConfiguration()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Levels(true), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null, ("x-client-secret", "s3cret"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Envoy's RouteEntryImplBase::finalize{Request,Response}Headers: the weighted cluster entry evaluates its own
        // headers first and then its parent route's levels, which the flag orders global, virtual host, route.
        Assert.Equal("wc,global,vhost,route", Upstream(response, "x-level"));
        Assert.Equal("route", Upstream(response, "x-over"));
        Assert.Equal("route", Upstream(response, "x-temp")); // the virtual host's remove now runs before the route's add
        Assert.Null(Upstream(response, "x-client-secret"));
        Assert.Equal("wc,global,vhost,route", Header(response, "x-level"));
        Assert.Equal("route", Header(response, "x-over"));
        Assert.Equal("route", Header(response, "x-temp"));
        Assert.Null(Header(response, "x-backend"));
    }

    [Fact]
    public async Task AppendActions_DeprecatedAppend_AndKeepEmptyValue()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
                request_headers_to_add:
                - header: { key: x-append, value: added }
                - header: { key: x-append-new, value: added }
                - header: { key: x-absent, value: added }
                  append_action: ADD_IF_ABSENT
                - header: { key: x-present, value: added }
                  append_action: ADD_IF_ABSENT
                - header: { key: x-overwrite, value: added }
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                - header: { key: x-overwrite-new, value: added }
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                - header: { key: x-if-exists, value: added }
                  append_action: OVERWRITE_IF_EXISTS
                - header: { key: x-if-exists-missing, value: added }
                  append_action: OVERWRITE_IF_EXISTS
                - header: { key: x-legacy-false, value: legacy }
                  append: false
                - header: { key: x-legacy-true, value: legacy }
                  append: true
                - header: { key: x-empty, value: "" }
                - header: { key: x-empty-kept, value: "" }
                  keep_empty_value: true
                response_headers_to_add:
                - header: { key: x-backend, value: proxy }
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                - header: { key: x-echo-path, value: proxy }
                  append_action: ADD_IF_ABSENT
                - header: { key: x-resp-new, value: proxy }
                  append_action: OVERWRITE_IF_EXISTS
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null,
            ("x-append", "client"), ("x-present", "client"), ("x-overwrite", "client"), ("x-if-exists", "client"),
            ("x-legacy-false", "client"), ("x-legacy-true", "client"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("client,added", Upstream(response, "x-append"));
        Assert.Equal("added", Upstream(response, "x-append-new"));
        Assert.Equal("added", Upstream(response, "x-absent"));
        Assert.Equal("client", Upstream(response, "x-present"));
        Assert.Equal("added", Upstream(response, "x-overwrite"));
        Assert.Equal("added", Upstream(response, "x-overwrite-new"));
        Assert.Equal("added", Upstream(response, "x-if-exists"));
        Assert.Null(Upstream(response, "x-if-exists-missing"));
        Assert.Equal("legacy", Upstream(response, "x-legacy-false")); // append: false = OVERWRITE_IF_EXISTS_OR_ADD
        Assert.Equal("client,legacy", Upstream(response, "x-legacy-true"));
        Assert.Null(Upstream(response, "x-empty"));                   // empty values are skipped...
        Assert.Equal("", Upstream(response, "x-empty-kept"));         // ...unless keep_empty_value
        Assert.Equal("proxy", Header(response, "x-backend"));
        Assert.Equal("/", Header(response, "x-echo-path"));
        Assert.Null(Header(response, "x-resp-new"));
    }

    [Fact]
    public async Task OneLevel_OverwritesApplyBeforeAppends_AndChecksSeeTheHeadersAsTheLevelFoundThem()
    {
        // Envoy's HeaderParser::evaluateHeaders decides every entry of a level against the headers as they were
        // after the level's removals, then sets the overwrites, then adds the appends.
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
                request_headers_to_add:
                - header: { key: x-mixed, value: appended }
                - header: { key: x-mixed, value: overwritten }
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                - header: { key: x-twice, value: first }
                - header: { key: x-twice, value: second }
                  append_action: ADD_IF_ABSENT
                - header: { key: x-ghost, value: first }
                - header: { key: x-ghost, value: second }
                  append_action: OVERWRITE_IF_EXISTS
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("overwritten,appended", Upstream(response, "x-mixed"));
        Assert.Equal("first,second", Upstream(response, "x-twice"));
        Assert.Equal("first", Upstream(response, "x-ghost"));
    }

    [Fact]
    public async Task FormattedValues_RequestHeaderAndDownstreamAddress()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
                request_headers_to_add:
                - header: { key: x-client-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" }
                - header: { key: x-copied, value: "%REQ(X-Foo)%" }
                - header: { key: x-percent, value: "100%%" }
                response_headers_to_add:
                - header: { key: x-foo-was, value: "foo=%REQ(x-foo)%" }
                - header: { key: x-foo-bare, value: "%REQ(x-foo)%" }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var with = await GetAsync(client, "/", null, ("x-foo", "bar"));
        using var without = await client.GetAsync("/");

        Assert.Equal("127.0.0.1", Upstream(with, "x-client-ip"));
        Assert.Equal("bar", Upstream(with, "x-copied"));
        Assert.Equal("100%", Upstream(with, "x-percent"));
        Assert.Equal("foo=bar", Header(with, "x-foo-was"));
        Assert.Equal("bar", Header(with, "x-foo-bare"));
        // A missing request header formats as empty, and an empty value is not added.
        Assert.Null(Upstream(without, "x-copied"));
        Assert.Equal("foo=", Header(without, "x-foo-was"));
        Assert.Null(Header(without, "x-foo-bare"));
    }

    [Fact]
    public async Task ResponseHeaders_ApplyToDirectResponsesAndRedirects()
    {
        // Envoy's router finalizes the response headers of direct responses (redirects included) with the route's
        // header parsers.
        var vhosts = """
            - name: vh
              domains: ["*"]
              response_headers_to_add:
              - header: { key: x-vh, value: vhost }
              routes:
              - match: { path: "/direct" }
                direct_response: { status: 200, body: { inline_string: "hi" } }
                response_headers_to_add:
                - header: { key: x-route, value: direct }
              - match: { path: "/moved" }
                redirect: { path_redirect: "/new" }
                response_headers_to_add:
                - header: { key: x-route, value: redirect }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts));
        using var client = proxy.Client("main");

        using var direct = await client.GetAsync("/direct");
        using var moved = await client.GetAsync("/moved");

        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal("direct", Header(direct, "x-route"));
        Assert.Equal("vhost", Header(direct, "x-vh"));
        Assert.Equal(HttpStatusCode.MovedPermanently, moved.StatusCode);
        Assert.Equal("redirect", Header(moved, "x-route"));
        Assert.Equal("vhost", Header(moved, "x-vh"));
    }
}
