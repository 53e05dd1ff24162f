using System.Text;

namespace CSharpEnvoy.Config.Validation;

/// <summary>The generated part of docs/compatibility.md: extensions and fields, straight from the registries that
/// the loader enforces, so the document cannot drift from the behaviour.</summary>
internal static class CompatibilityDoc
{
    public const string Begin = "<!-- BEGIN GENERATED: do not edit; run the CompatibilityDocTests with UPDATE_DOCS=1 -->";
    public const string End = "<!-- END GENERATED -->";

    public static string Generate()
    {
        var sb = new StringBuilder();
        sb.Append("## Extensions\n\n| category | name (and accepted legacy names) | config type | what it does |\n|---|---|---|---|\n");
        foreach (var e in ExtensionRegistry.All)
        {
            var names = e.Aliases.Length == 0 ? $"`{e.Name}`" : $"`{e.Name}` ({string.Join(", ", e.Aliases.Select(a => $"`{a}`"))})";
            sb.Append("| ").Append(e.Category).Append(" | ").Append(names).Append(" | `").Append(e.TypeName).Append("` | ").Append(e.Description).Append(" |\n");
        }
        sb.Append("\n## Fields\n\nEvery field not listed here is refused with an error naming its path. Fields marked \"accepted, warns\" load, ");
        sb.Append("and a warning naming the field is logged at startup, because csenvoy does not act on them yet.\n");
        sb.Append(SupportedFields.ToMarkdown());
        return sb.ToString();
    }
}
