using System.Text.RegularExpressions;

namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>A stat name split into Envoy's tag-extracted name and its tags (e.g. "cluster.upstream_rq" with
/// envoy_response_code=200 and envoy_cluster_name=backend for "cluster.backend.upstream_rq_200").</summary>
internal readonly record struct TaggedName(string Name, IReadOnlyList<KeyValuePair<string, string>> Tags);

/// <summary>
/// Envoy's default tag extraction (<c>use_all_default_tags</c>): each regex, in Envoy's order, removes its first
/// capture group from the name and takes its innermost group as the tag value. Run when stats are rendered, never on
/// the request path.
/// </summary>
internal static class TagExtractor
{
    private static readonly (string Tag, Regex Regex)[] s_defaults =
    [
        ("envoy.response_code", new(@"_rq(_(\d{3}))$")),
        ("envoy.response_code_class", new(@"_rq_(\d)xx$")),
        ("envoy.virtual_cluster", new(@"^vhost(?=\.).*?\.vcluster\.((.*?)\.)\w+?$")),
        ("envoy.ssl_cipher", new(@"^listener(?=\.).*?\.ssl\.cipher(\.(.*?))$")),
        ("envoy.ssl_cipher_suite", new(@"^cluster(?=\.).*?\.ssl\.ciphers(\.(.*?))$")),
        ("envoy.tcp_prefix", new(@"^tcp\.((.*?)\.)\w+?$")),
        ("envoy.ratelimit_prefix", new(@"^ratelimit\.((.*?)\.)\w+?$")),
        ("envoy.cluster_name", new(@"^cluster\.(([^\.]+)\.).*")),
        ("envoy.http_conn_manager_prefix", new(@"^listener(?=\.).*?\.http\.((.*?)\.)")),
        ("envoy.http_conn_manager_prefix", new(@"^http\.((.*?)\.)")),
        ("envoy.listener_address", new(@"^listener\.(((?:[_.0-9]*|[_\[\]aAbBcCdDeEfF0-9]*))\.)")),
        ("envoy.virtual_host", new(@"^vhost\.((.*?)\.)")),
        ("envoy.rds_route_config", new(@"^http(?=\.).*?\.rds\.((.*?)\.)\w+?$")),
    ];

    public static TaggedName Extract(string name)
    {
        var tags = new List<KeyValuePair<string, string>>();
        var current = name;
        foreach (var (tag, regex) in s_defaults)
        {
            var m = regex.Match(current);
            if (!m.Success) continue;
            var remove = m.Groups[1];
            var value = m.Groups.Count > 2 && m.Groups[2].Success ? m.Groups[2].Value : remove.Value;
            // An http prefix is tagged once, by whichever of its two regexes matches first.
            if (tag == "envoy.http_conn_manager_prefix" && HasTag(tags, tag)) continue;
            tags.Add(new(tag, value));
            current = current.Remove(remove.Index, remove.Length);
        }
        return new TaggedName(current, tags);
    }

    private static bool HasTag(List<KeyValuePair<string, string>> tags, string tag)
    {
        foreach (var t in tags) if (t.Key == tag) return true;
        return false;
    }
}
