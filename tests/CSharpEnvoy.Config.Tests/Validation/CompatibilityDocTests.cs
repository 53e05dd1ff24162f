using CSharpEnvoy.Config.Validation;

namespace CSharpEnvoy.Config.Tests.Validation;

public sealed class CompatibilityDocTests
{
    private static string DocPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CSharpEnvoy.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "docs", "compatibility.md");
    }

    /// <summary>docs/compatibility.md lists exactly what the loader accepts. Set UPDATE_DOCS=1 to regenerate.</summary>
    [Fact]
    public void CompatibilityDoc_MatchesSupportedFieldsAndExtensions()
    {
        var path = DocPath();
        var doc = File.ReadAllText(path);
        var begin = doc.IndexOf(CompatibilityDoc.Begin, StringComparison.Ordinal);
        var end = doc.IndexOf(CompatibilityDoc.End, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, "docs/compatibility.md lacks the generated-section markers");
        var generated = "\n" + CompatibilityDoc.Generate();
        var current = doc[(begin + CompatibilityDoc.Begin.Length)..end];
        if (current != generated && Environment.GetEnvironmentVariable("UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, doc[..(begin + CompatibilityDoc.Begin.Length)] + generated + doc[end..]);
            return;
        }
        Assert.Equal(generated, current);
    }

    [Fact]
    public void SupportedFields_NameRealProtoFields()
    {
        // A typo in the registry would silently refuse a field we meant to support.
        var registry = CSharpEnvoy.Config.Loading.ProtoRegistry.Default;
        foreach (var f in SupportedFields.All)
        {
            var message = registry.Find(f.Message);
            Assert.True(message is not null, $"unknown message {f.Message}");
            Assert.True(message!.FindFieldByName(f.Field) is not null, $"{f.Message} has no field '{f.Field}'");
        }
    }
}
