using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Stats;
using Envoy.Config.Metrics.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Bootstrap <c>stats_config</c> → <see cref="StatsConfigModel"/>, with Envoy's checks
/// (<c>TagProducerImpl</c>: a tag name given twice, or a regex-less tag with no default regex, is an error).</summary>
internal static class StatsConfigTranslator
{
    /// <summary>Envoy's default tag names (<c>Config::TagNames</c>), the ones a regex-less stats_tags entry may name.</summary>
    public static readonly string[] DefaultTagNames =
    [
        "envoy.response_code", "envoy.response_code_class", "envoy.virtual_cluster", "envoy.ssl_cipher", "envoy.ssl_cipher_suite",
        "envoy.tcp_prefix", "envoy.ratelimit_prefix", "envoy.cluster_name", "envoy.http_conn_manager_prefix",
        "envoy.listener_address", "envoy.virtual_host", "envoy.rds_route_config",
    ];

    public static StatsConfigModel Translate(StatsConfig? config, ConfigErrors errors)
    {
        if (config is null) return StatsConfigModel.Default;
        const string path = "stats_config";
        var useDefaults = config.UseAllDefaultTags ?? true;
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (useDefaults) names.UnionWith(DefaultTagNames);
        var tags = new List<TagSpecifierModel>();
        for (var i = 0; i < config.StatsTags.Count; i++)
        {
            var t = config.StatsTags[i];
            var p = $"{path}.stats_tags[{i}]";
            if (string.IsNullOrEmpty(t.TagName)) { errors.Add(p + ".tag_name", "tag_name must not be empty"); continue; }
            if (!names.Add(t.TagName)) { errors.Add(p + ".tag_name", $"Tag name '{t.TagName}' specified twice."); continue; }
            if (t.TagValueCase == TagSpecifier.TagValueOneofCase.FixedValue)
            {
                tags.Add(new TagSpecifierModel(t.TagName, null, t.FixedValue));
                continue;
            }
            if (string.IsNullOrEmpty(t.Regex))
            {
                if (Array.IndexOf(DefaultTagNames, t.TagName) < 0)
                    errors.Add(p, $"No regex specified for tag specifier and no default regex for name: '{t.TagName}'");
                else tags.Add(new TagSpecifierModel(t.TagName, null, null));
                continue;
            }
            try
            {
                _ = new System.Text.RegularExpressions.Regex(t.Regex);
                tags.Add(new TagSpecifierModel(t.TagName, t.Regex, null));
            }
            catch (ArgumentException ex)
            {
                errors.Add(p + ".regex", $"invalid regex '{t.Regex}': {ex.Message}");
            }
        }

        StatsMatcherModel? matcher = null;
        if (config.StatsMatcher is { } m)
        {
            var mp = path + ".stats_matcher";
            matcher = m.StatsMatcherCase switch
            {
                StatsMatcher.StatsMatcherOneofCase.RejectAll => m.RejectAll ? new StatsMatcherModel(true, null, null) : null,
                StatsMatcher.StatsMatcherOneofCase.ExclusionList => new StatsMatcherModel(false, Matchers(m.ExclusionList, mp + ".exclusion_list", errors), null),
                StatsMatcher.StatsMatcherOneofCase.InclusionList => new StatsMatcherModel(false, null, Matchers(m.InclusionList, mp + ".inclusion_list", errors)),
                _ => null,
            };
        }
        return new StatsConfigModel(tags, useDefaults, matcher);
    }

    private static List<StringMatcherModel> Matchers(Envoy.Type.Matcher.V3.ListStringMatcher list, string path, ConfigErrors errors)
    {
        var result = new List<StringMatcherModel>();
        for (var i = 0; i < list.Patterns.Count; i++)
            if (RouteTranslator.StringMatcher(list.Patterns[i], $"{path}.patterns[{i}]", errors) is { } sm) result.Add(sm);
        return result;
    }
}
