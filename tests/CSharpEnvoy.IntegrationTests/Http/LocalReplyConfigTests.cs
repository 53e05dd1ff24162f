using System.Net;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>The connection manager's <c>local_reply_config</c>: mappers (access log filters on the reply) that rewrite
/// the status, body and headers of the proxy's own replies, and body formats (text or JSON, <c>%LOCAL_REPLY_BODY%</c>)
/// with their content type.</summary>
public sealed class LocalReplyConfigTests
{
    private const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/down" }
            route: { cluster: unreachable }
          - match: { prefix: "/direct" }
            direct_response: { status: 200, body: { inline_string: "direct body" } }
        """;

    private static string Bootstrap(string localReplyConfig) => Yaml.Bootstrap(Routes, Yaml.Cluster("unreachable", "127.0.0.1:1"),
        hcmExtra: "local_reply_config:\n" + Yaml.Indent(localReplyConfig, 2));

    [Fact]
    public async Task Mapper_RewritesStatusBodyAndHeaders_OfTheFirstMatchingFilter()
    {
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap("""
            mappers:
            - filter: { status_code_filter: { comparison: { op: EQ, value: { default_value: 404, runtime_key: unused } } } }
              status_code: 410
              body: { inline_string: "gone for good" }
              headers_to_add: [{ header: { key: x-mapped, value: first } }]
            - filter: { status_code_filter: { comparison: { op: GE, value: { default_value: 400, runtime_key: unused } } } }
              headers_to_add: [{ header: { key: x-mapped, value: second } }]
            """));
        using var client = proxy.Client("main");

        using var missing = await client.GetAsync("/nothing"); // no route: 404
        Assert.Equal(HttpStatusCode.Gone, missing.StatusCode);
        Assert.Equal("gone for good", await missing.Content.ReadAsStringAsync());
        Assert.Equal("first", missing.Headers.GetValues("x-mapped").Single());

        using var down = await client.GetAsync("/down"); // connect failure: 503, the second mapper only adds a header
        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        Assert.StartsWith("upstream connect error", await down.Content.ReadAsStringAsync());
        Assert.Equal("second", down.Headers.GetValues("x-mapped").Single());

        using var direct = await client.GetAsync("/direct"); // 200: no mapper matches
        Assert.Equal("direct body", await direct.Content.ReadAsStringAsync());
        Assert.False(direct.Headers.Contains("x-mapped"));
    }

    [Fact]
    public async Task BodyFormat_Json_WrapsTheBody_WithItsContentType_AndAMapperCanOverrideIt()
    {
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap("""
            mappers:
            - filter: { header_filter: { header: { name: x-plain, present_match: true } } }
              body_format_override:
                text_format: "error %RESPONSE_CODE%: %LOCAL_REPLY_BODY%\n"
                content_type: text/html; charset=UTF-8
            body_format:
              json_format:
                status: "%RESPONSE_CODE%"
                message: "%LOCAL_REPLY_BODY%"
                path: "%REQ(:PATH)%"
            """));
        using var client = proxy.Client("main");

        using var down = await client.GetAsync("/down");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        Assert.Equal("application/json", down.Content.Headers.ContentType!.MediaType);
        var json = JsonDocument.Parse(await down.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(503, json.GetProperty("status").GetInt32());
        Assert.StartsWith("upstream connect error", json.GetProperty("message").GetString());
        Assert.Equal("/down", json.GetProperty("path").GetString());

        // A direct response is a local reply too.
        using var direct = await client.GetAsync("/direct");
        Assert.Equal("direct body", JsonDocument.Parse(await direct.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/down");
        request.Headers.Add("x-plain", "1");
        using var plain = await client.SendAsync(request);
        Assert.Equal("text/html; charset=UTF-8", plain.Content.Headers.ContentType!.ToString());
        Assert.StartsWith("error 503: upstream connect error", await plain.Content.ReadAsStringAsync());
    }

    [Fact]
    public void MapperWithoutFilter_OrWithAStatusOutOfRange_IsRefusedWithItsPath()
    {
        var errors = ProxyHarness.Validate(Bootstrap("""
            mappers:
            - status_code: 418
            - filter: { not_health_check_filter: {} }
              status_code: 700
            """)).Errors.Select(e => e.ToString()).ToList();
        const string p = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.local_reply_config";
        Assert.Contains($"{p}.mappers[0].filter: filter is required", errors);
        Assert.Contains($"{p}.mappers[1].status_code: status_code must be in [200, 600)", errors);
    }
}
