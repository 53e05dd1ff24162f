using System.Text.RegularExpressions;
using CSharpEnvoy.Config.Model.Stats;

namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>A stat name split into Envoy's tag-extracted name and its tags (e.g. "cluster.upstream_rq" with
/// envoy_response_code=200 and envoy_cluster_name=backend for "cluster.backend.upstream_rq_200").</summary>
internal readonly record struct TaggedName(string Name, IReadOnlyList<KeyValuePair<string, string>> Tags);

/// <summary>
/// Envoy's tag extraction (<c>TagProducerImpl</c>): the default extractors (when <c>use_all_default_tags</c>, the
/// default) in Envoy's order, then the configured <c>stats_tags</c>. Each regex removes its first capture group from
/// the name and takes its second group (else the first) as the tag value; fixed values are added to every stat. Run
/// when stats are rendered, never on the request path.
/// </summary>
internal sealed class TagProducer
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

    /// <summary>Envoy's defaults with no stats_tags.</summary>
    public static readonly TagProducer Default = new(s_defaults, Array.Empty<KeyValuePair<string, string>>());

    private readonly (string Tag, Regex Regex)[] _extractors;
    private readonly KeyValuePair<string, string>[] _fixed;

    private TagProducer((string Tag, Regex Regex)[] extractors, KeyValuePair<string, string>[] fixedTags)
    {
        _extractors = extractors;
        _fixed = fixedTags;
    }

    public static TagProducer Create(StatsConfigModel config)
    {
        if (config.UseAllDefaultTags && config.Tags.Count == 0) return Default;
        var extractors = new List<(string, Regex)>();
        if (config.UseAllDefaultTags) extractors.AddRange(s_defaults);
        var fixedTags = new List<KeyValuePair<string, string>>();
        foreach (var t in config.Tags)
        {
            if (t.FixedValue is not null) fixedTags.Add(new(t.Name, t.FixedValue));
            else if (t.Regex is not null) extractors.Add((t.Name, new Regex(t.Regex, RegexOptions.CultureInvariant)));
            else
                // A regex-less entry names a default tag: its default regex(es) apply.
                foreach (var d in s_defaults) if (d.Tag == t.Name) extractors.Add(d);
        }
        return new TagProducer(extractors.ToArray(), fixedTags.ToArray());
    }

    public TaggedName Extract(string name)
    {
        var tags = new List<KeyValuePair<string, string>>(_fixed);
        var current = name;
        foreach (var (tag, regex) in _extractors)
        {
            var m = regex.Match(current);
            if (!m.Success || m.Groups.Count < 2) continue;
            var remove = m.Groups[1];
            var value = m.Groups.Count > 2 && m.Groups[2].Success ? m.Groups[2].Value : remove.Value;
            // A tag is extracted once, by whichever of its regexes matches first (the http prefix has two).
            if (HasTag(tags, tag)) continue;
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

/// <summary>Envoy's default tag extraction (<c>use_all_default_tags</c> with no <c>stats_tags</c>).</summary>
internal static class TagExtractor
{
    public static TaggedName Extract(string name) => TagProducer.Default.Extract(name);
}
