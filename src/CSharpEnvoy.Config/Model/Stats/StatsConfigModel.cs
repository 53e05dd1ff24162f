using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.Stats;

/// <summary>One <c>stats_tags</c> entry: a regex whose first capture group is cut from the name (the tag value being
/// its second group if present, else the first), or a fixed value added to every stat.</summary>
internal sealed record TagSpecifierModel(string Name, string? Regex, string? FixedValue);

/// <summary>Envoy's <c>StatsMatcher</c>: which stats are instantiated at all.</summary>
internal sealed record StatsMatcherModel(bool RejectAll, IReadOnlyList<StringMatcherModel>? Exclusions, IReadOnlyList<StringMatcherModel>? Inclusions)
{
    /// <summary>True when a stat of that full name is kept (Envoy's <c>StatsMatcherImpl::rejects</c>, negated).</summary>
    public bool Accepts(string name)
    {
        if (RejectAll) return false;
        if (Exclusions is not null)
        {
            foreach (var m in Exclusions) if (m.Match(name)) return false;
            return true;
        }
        if (Inclusions is not null)
        {
            foreach (var m in Inclusions) if (m.Match(name)) return true;
            return false;
        }
        return true;
    }
}

/// <summary>The bootstrap's <c>stats_config</c>.</summary>
internal sealed record StatsConfigModel(IReadOnlyList<TagSpecifierModel> Tags, bool UseAllDefaultTags, StatsMatcherModel? Matcher)
{
    public static readonly StatsConfigModel Default = new(Array.Empty<TagSpecifierModel>(), true, null);
}
