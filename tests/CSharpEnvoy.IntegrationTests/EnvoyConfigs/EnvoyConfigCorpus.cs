using YamlDotNet.RepresentationModel;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// The corpus of real Envoy configurations from Envoy's public sandboxes, kept beside the repository in
/// <c>../shared/envoy-configs</c> (one folder per sandbox; see its README.md).
/// </summary>
internal static class EnvoyConfigCorpus
{
    private static readonly Lazy<string?> s_root = new(FindRoot);

    /// <summary>The corpus folder; fails the calling test with a clear message when it is missing.</summary>
    public static string Root => s_root.Value ?? throw new InvalidOperationException(
        "The Envoy config corpus was not found: expected a folder 'shared/envoy-configs' beside the repository " +
        "(i.e. <folder containing CSharpEnvoy.sln>/../shared/envoy-configs), walking up from " + AppContext.BaseDirectory);

    /// <summary>The text of a corpus file, by its path relative to the corpus root (e.g. "front-proxy/envoy.yaml").</summary>
    public static string Read(string relativePath)
    {
        var path = Path.Combine(Root, relativePath);
        Assert.True(File.Exists(path), $"corpus file '{relativePath}' not found under {Root}");
        return File.ReadAllText(path);
    }

    /// <summary>Every YAML file of the corpus, as paths relative to the root with '/' separators, sorted.</summary>
    public static IReadOnlyList<string> AllYamlFiles() =>
        Directory.EnumerateFiles(Root, "*.*", SearchOption.AllDirectories)
            .Where(p => p.EndsWith(".yaml", StringComparison.Ordinal) || p.EndsWith(".yml", StringComparison.Ordinal))
            .Select(p => Path.GetRelativePath(Root, p).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>What a corpus file holds, judged from its top-level keys.</summary>
    public static CorpusFileKind Classify(string relativePath)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(Read(relativePath)));
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root) return CorpusFileKind.Fragment;
        var keys = root.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value).ToHashSet();
        if (keys.Contains("resources")) return CorpusFileKind.XdsResources;
        if (keys.Overlaps(new[] { "static_resources", "dynamic_resources", "admin", "node" })) return CorpusFileKind.Bootstrap;
        return CorpusFileKind.Fragment;
    }

    /// <summary>The corpus files that are Envoy bootstraps (what <c>envoy -c</c> is given).</summary>
    public static IEnumerable<string> BootstrapFiles() => AllYamlFiles().Where(f => Classify(f) == CorpusFileKind.Bootstrap);

    private static string? FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "CSharpEnvoy.sln"))) continue;
            var corpus = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "envoy-configs"));
            return Directory.Exists(corpus) ? corpus : null;
        }
        return null;
    }
}

internal enum CorpusFileKind
{
    /// <summary>A bootstrap (has static_resources, dynamic_resources, admin or node).</summary>
    Bootstrap,
    /// <summary>A file of xDS resources (<c>resources: [...]</c>), as read by a path_config_source.</summary>
    XdsResources,
    /// <summary>Anything else: a YAML fragment a sandbox splices into another file.</summary>
    Fragment,
}
