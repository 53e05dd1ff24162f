using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>A strict reader of the Prometheus text exposition format (0.0.4) as /stats/prometheus writes it: every line
/// is a <c># TYPE</c> comment or a sample <c>name{labels} value</c>; a duplicate series fails the test.</summary>
public static partial class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyList<KeyValuePair<string, string>> Labels, double Value)
    {
        /// <summary>The series with its labels sorted by name and unescaped: the same key whichever parser read it.</summary>
        public string CanonicalKey
        {
            get
            {
                var sb = new StringBuilder(Name).Append('{');
                foreach (var (k, v) in Labels.OrderBy(l => l.Key, StringComparer.Ordinal)) sb.Append(k).Append('=').Append(v).Append('\u0001');
                return sb.Append('}').ToString();
            }
        }
    }

    /// <summary>Samples by their series as written, all samples, and the families (TYPE lines) in order.</summary>
    public sealed record Exposition(Dictionary<string, double> ByRawSeries, List<Sample> Samples, List<(string Name, string Type)> Families);

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"")(?:,[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"")*)\})? (-?[0-9.eE+]+|\+Inf|NaN)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex Label();

    public static Exposition Parse(string text)
    {
        var raw = new Dictionary<string, double>();
        var samples = new List<Sample>();
        var families = new List<(string Name, string Type)>();
        var seen = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                Assert.Matches(@"^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$", line);
                var parts = line.Split(' ');
                Assert.True(seen.Add(parts[2]), "second TYPE line for " + parts[2]);
                families.Add((parts[2], parts[3]));
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, "not a Prometheus sample line: " + line);
            var value = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
            Assert.True(raw.TryAdd(line[..line.LastIndexOf(' ')], value), "duplicate series " + line);
            var labels = new List<KeyValuePair<string, string>>();
            foreach (Match l in Label().Matches(m.Groups[2].Value))
                labels.Add(new(l.Groups[1].Value, Unescape(l.Groups[2].Value)));
            samples.Add(new Sample(m.Groups[1].Value, labels, value));
        }
        return new Exposition(raw, samples, families);
    }

    private static string Unescape(string v)
    {
        var sb = new StringBuilder(v.Length);
        for (var i = 0; i < v.Length; i++)
        {
            if (v[i] != '\\') { sb.Append(v[i]); continue; }
            var next = v[++i];
            sb.Append(next == 'n' ? '\n' : next);
        }
        return sb.ToString();
    }
}
