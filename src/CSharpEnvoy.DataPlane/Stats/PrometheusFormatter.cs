using System.Globalization;
using System.Text;

namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>
/// Envoy's <c>/stats/prometheus</c> exposition: tag-extracted names prefixed with <c>envoy_</c>, tags as labels named
/// <c>envoy_*</c>, one <c># TYPE</c> line per metric family, histograms as <c>_bucket</c>/<c>_sum</c>/<c>_count</c>.
/// </summary>
internal static class PrometheusFormatter
{
    public static string Format(StatsStore store, bool usedOnly)
    {
        var sb = new StringBuilder();
        var families = new SortedDictionary<string, (string Type, List<(string Labels, object Stat)> Series)>(StringComparer.Ordinal);
        void Add(string name, string type, object stat)
        {
            var tagged = store.Tags.Extract(name);
            var family = MetricName(tagged.Name);
            if (!families.TryGetValue(family, out var f)) families[family] = f = (type, new());
            f.Series.Add((Labels(tagged.Tags), stat));
        }
        foreach (var c in store.Counters) if (!usedOnly || c.Used) Add(c.Name, "counter", c);
        foreach (var g in store.Gauges) if (!usedOnly || g.Used) Add(g.Name, "gauge", g);
        foreach (var h in store.Histograms) if (!usedOnly || h.Used) Add(h.Name, "histogram", h);

        foreach (var (family, (type, series)) in families)
        {
            sb.Append("# TYPE ").Append(family).Append(' ').Append(type).Append('\n');
            series.Sort((a, b) => string.CompareOrdinal(a.Labels, b.Labels));
            foreach (var (labels, stat) in series)
            {
                switch (stat)
                {
                    case Counter c: Line(sb, family, labels, c.Value.ToString(CultureInfo.InvariantCulture)); break;
                    case Gauge g: Line(sb, family, labels, g.Value.ToString(CultureInfo.InvariantCulture)); break;
                    case Histogram h:
                        var cumulative = h.CumulativeBuckets();
                        for (var i = 0; i < cumulative.Length; i++)
                        {
                            var le = i < Histogram.DefaultBuckets.Length ? Histogram.DefaultBuckets[i].ToString(CultureInfo.InvariantCulture) : "+Inf";
                            var withLe = labels.Length == 0 ? $"le=\"{le}\"" : $"{labels},le=\"{le}\"";
                            Line(sb, family + "_bucket", withLe, cumulative[i].ToString(CultureInfo.InvariantCulture));
                        }
                        Line(sb, family + "_sum", labels, h.Sum.ToString(CultureInfo.InvariantCulture));
                        Line(sb, family + "_count", labels, h.Count.ToString(CultureInfo.InvariantCulture));
                        break;
                }
            }
        }
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, string name, string labels, string value)
    {
        sb.Append(name);
        if (labels.Length > 0) sb.Append('{').Append(labels).Append('}');
        sb.Append(' ').Append(value).Append('\n');
    }

    /// <summary>"envoy_" + the sanitized name.</summary>
    internal static string MetricName(string name) => Sanitize("envoy_", name);

    /// <summary>Envoy's <c>sanitizeName</c>: every character outside [a-zA-Z0-9_] turned into '_'.</summary>
    private static string Sanitize(string prefix, string name)
    {
        var sb = new StringBuilder(prefix, name.Length + prefix.Length);
        foreach (var ch in name) sb.Append(char.IsAsciiLetterOrDigit(ch) || ch == '_' ? ch : '_');
        return sb.ToString();
    }

    private static string Labels(IReadOnlyList<KeyValuePair<string, string>> tags)
    {
        if (tags.Count == 0) return "";
        var sb = new StringBuilder();
        foreach (var (k, v) in tags)
        {
            if (sb.Length > 0) sb.Append(',');
            // Labels are the sanitized tag names, unprefixed: envoy.cluster_name → envoy_cluster_name, a custom
            // stats_tags name as it is.
            sb.Append(Sanitize("", k));
            sb.Append("=\"").Append(v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")).Append('"');
        }
        return sb.ToString();
    }
}
