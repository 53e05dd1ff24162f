using System.Reflection;
using System.Text.RegularExpressions;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Every file of the corpus, validated as csenvoy would at start-up (<c>--mode validate</c>): it either loads, or it is
/// refused only with errors that say "not supported"/"unsupported" and name a path that exists in the file. Never a
/// crash, a generic parse error, or an error with no (or a wrong) location.
/// </summary>
public sealed class CorpusSweepTests
{
    /// <summary>Corpus files known to hit a loader bug; each is in <see cref="KnownLoaderBug_StillRefusedClearly"/> (skipped) instead.</summary>
    private static readonly string[] s_knownLoaderBugs = { "udp/envoy.yaml" };

    /// <summary>Files that are not configs csenvoy could be given at all.</summary>
    private static readonly Dictionary<string, string> s_notApplicable = new()
    {
        ["single-page-app/hmac-secret.tmpl.yml"] = "an SDS secret resource; csenvoy has no secret discovery",
        ["single-page-app/token-secret.tmpl.yml"] = "an SDS secret resource; csenvoy has no secret discovery",
        ["single-page-app/secrets/myhub-token-secret.yml"] = "an SDS secret resource; csenvoy has no secret discovery",
    };

    /// <summary>Error messages that refuse a feature clearly, or name a file the config reads that is not there
    /// (sandboxes that generate their certificates at run time).</summary>
    private static readonly Regex s_clearRefusal = new(@"not supported|unsupported|only [A-Za-z0-9_ ]+ (is|are) supported|^cannot read '[^']+'", RegexOptions.CultureInvariant);

    public static TheoryData<string> SweptFiles() => new(SweptFileList());

    private static IEnumerable<string> SweptFileList() =>
        EnvoyConfigCorpus.AllYamlFiles().Where(f => !s_knownLoaderBugs.Contains(f) && !s_notApplicable.ContainsKey(f));

    [Theory]
    [MemberData(nameof(SweptFiles))]
    public void CorpusFile_Loads_OrIsRefusedOnlyWithPathedUnsupportedErrors(string file) => AssertLoadsOrRefusedClearly(file);

    [Theory]
    [InlineData("udp/envoy.yaml")]
    public void KnownLoaderBug_StillRefusedClearly(string file) => AssertLoadsOrRefusedClearly(file);

    [Fact]
    public void Corpus_IsPresent_AndEveryFileIsAccountedFor()
    {
        var all = EnvoyConfigCorpus.AllYamlFiles();
        Assert.True(all.Count >= 60, $"expected the whole corpus (about 70 YAML files), found {all.Count} under {EnvoyConfigCorpus.Root}");
        // The skip lists must name real files, so that nothing is excluded by a typo and forgotten.
        foreach (var f in s_knownLoaderBugs.Concat(s_notApplicable.Keys)) Assert.Contains(f, all);
        var skippedTheory = typeof(CorpusSweepTests).GetMethod(nameof(KnownLoaderBug_StillRefusedClearly))!;
        var skippedFiles = skippedTheory.GetCustomAttributes<InlineDataAttribute>().Select(a => (string)a.GetData(skippedTheory).Single()[0]);
        Assert.Equal(s_knownLoaderBugs.Order(), skippedFiles.Order());
        // Every sandbox folder contributes at least one swept file.
        var sandboxes = Directory.GetDirectories(EnvoyConfigCorpus.Root).Select(Path.GetFileName).ToList();
        var swept = SweptFileList().Select(f => f.Split('/')[0]).ToHashSet();
        Assert.DoesNotContain(sandboxes, s => !swept.Contains(s!) && !s_knownLoaderBugs.Any(b => b.StartsWith(s + "/", StringComparison.Ordinal)));
    }

    private static void AssertLoadsOrRefusedClearly(string file)
    {
        var yaml = BootstrapFor(file);
        ConfigErrors? errors = null;
        var crash = Record.Exception(() => errors = ProxyHarness.Validate(yaml));
        Assert.True(crash is null, $"{file}: validation threw instead of reporting errors: {crash}");

        var root = ParseYaml(yaml);
        var problems = new List<string>();
        foreach (var e in errors!.Errors)
        {
            if (e.Path.Length == 0) problems.Add($"no path: {e}");
            else if (!YamlPathExists(root, e.Path)) problems.Add($"path not in the file: {e}");
            if (!s_clearRefusal.IsMatch(e.Message)) problems.Add($"not an unsupported-feature message: {e}");
        }
        Assert.True(problems.Count == 0, $"{file}:\n  " + string.Join("\n  ", problems) + "\nall errors:\n" + errors);
    }

    /// <summary>The bootstrap a corpus file amounts to: a bootstrap as it is; xDS listener/cluster resource files of a
    /// sandbox as static resources (all of that sandbox's resource files together, so routes find their clusters);
    /// a bare list of clusters as static clusters.</summary>
    private static string BootstrapFor(string file)
    {
        var text = EnvoyConfigCorpus.Read(file);
        switch (EnvoyConfigCorpus.Classify(file))
        {
            case CorpusFileKind.Bootstrap:
                return text;
            case CorpusFileKind.XdsResources:
                var sandbox = file.Split('/')[0];
                var siblings = EnvoyConfigCorpus.AllYamlFiles()
                    .Where(f => f.StartsWith(sandbox + "/", StringComparison.Ordinal) && !s_notApplicable.ContainsKey(f)
                                && EnvoyConfigCorpus.Classify(f) == CorpusFileKind.XdsResources);
                return EnvoyConfigRewriter.StaticBootstrapFromResourceFiles(siblings.Select(EnvoyConfigCorpus.Read));
            default:
                Assert.True(ParseYaml(text) is YamlSequenceNode, $"{file}: a fragment that is not a list of clusters");
                return "static_resources:\n  clusters:\n" + text;
        }
    }

    private static YamlNode ParseYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents[0].RootNode;
    }

    /// <summary>
    /// Whether an error path (<c>a.b[0].c["key"]</c>, proto field names) names a node of the YAML. Keys may be
    /// written in lowerCamelCase, and a single object stands for a one-element list, as the loader allows.
    /// </summary>
    internal static bool YamlPathExists(YamlNode root, string path)
    {
        var segments = s_pathSegment.Matches(path);
        if (segments.Sum(m => m.Length) != path.Length) return false; // not a well-formed path
        var node = root;
        foreach (Match m in segments)
        {
            if (m.Groups[1].Success || m.Groups[3].Success)
            {
                var key = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[3].Value;
                if (node is not YamlMappingNode map) return false;
                var next = Lookup(map, key) ?? (m.Groups[1].Success ? Lookup(map, ToCamel(key)) : null);
                if (next is null) return false;
                node = next;
            }
            else
            {
                var index = int.Parse(m.Groups[2].Value);
                if (node is YamlSequenceNode seq)
                {
                    if (index >= seq.Children.Count) return false;
                    node = seq.Children[index];
                }
                else if (index != 0 || node is not YamlMappingNode) return false;
            }
        }
        return true;
    }

    /// <summary>One path segment: <c>.field</c> (or a leading <c>field</c>), <c>[index]</c> or <c>["map key"]</c>.</summary>
    private static readonly Regex s_pathSegment = new(@"\G(?:\.?([A-Za-z_@][A-Za-z0-9_]*)|\[(\d+)\]|\[""([^""]*)""\])", RegexOptions.CultureInvariant);

    private static YamlNode? Lookup(YamlMappingNode map, string key)
    {
        foreach (var (k, v) in map.Children)
            if (k is YamlScalarNode s && s.Value == key) return v;
        return null;
    }

    private static string ToCamel(string snake) =>
        Regex.Replace(snake, "_([a-z0-9])", m => m.Groups[1].Value.ToUpperInvariant());
}
