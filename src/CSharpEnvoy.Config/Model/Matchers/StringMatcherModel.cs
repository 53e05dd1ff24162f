using System.Diagnostics.CodeAnalysis;

namespace CSharpEnvoy.Config.Model.Matchers;

internal enum StringMatchKind
{
    Exact,
    Prefix,
    Suffix,
    Contains,
    SafeRegex,
}

/// <summary>Envoy's <c>type.matcher.v3.StringMatcher</c>.</summary>
internal sealed class StringMatcherModel
{
    private StringMatcherModel(StringMatchKind kind, string value, bool ignoreCase, RegexMatcherModel? regex)
    {
        Kind = kind;
        Value = value;
        IgnoreCase = ignoreCase;
        Regex = regex;
    }

    public StringMatchKind Kind { get; }

    /// <summary>The literal to compare with, or the regex pattern for <see cref="StringMatchKind.SafeRegex"/>.</summary>
    public string Value { get; }

    /// <summary>ASCII case-insensitive comparison; never set for regex (Envoy rejects that combination).</summary>
    public bool IgnoreCase { get; }

    public RegexMatcherModel? Regex { get; }

    public static StringMatcherModel Exact(string value, bool ignoreCase = false) => Literal(StringMatchKind.Exact, value, ignoreCase);

    public static StringMatcherModel Prefix(string value, bool ignoreCase = false) => Literal(StringMatchKind.Prefix, value, ignoreCase);

    public static StringMatcherModel Suffix(string value, bool ignoreCase = false) => Literal(StringMatchKind.Suffix, value, ignoreCase);

    public static StringMatcherModel Contains(string value, bool ignoreCase = false) => Literal(StringMatchKind.Contains, value, ignoreCase);

    /// <summary>Full-match regex (RE2::FullMatch).</summary>
    public static StringMatcherModel SafeRegex(RegexMatcherModel regex)
    {
        ArgumentNullException.ThrowIfNull(regex);
        return new StringMatcherModel(StringMatchKind.SafeRegex, regex.Pattern, ignoreCase: false, regex);
    }

    public static bool TryCreateSafeRegex(
        string pattern,
        [NotNullWhen(true)] out StringMatcherModel? matcher,
        [NotNullWhen(false)] out string? error)
    {
        if (RegexMatcherModel.TryCreate(pattern, out RegexMatcherModel? regex, out error))
        {
            matcher = SafeRegex(regex);
            return true;
        }

        matcher = null;
        return false;
    }

    /// <summary>Null means absent (e.g. a missing header) and never matches.</summary>
    public bool Match(string? value) => value is not null && Match(value.AsSpan());

    public bool Match(ReadOnlySpan<char> value) => Kind switch
    {
        StringMatchKind.Exact => IgnoreCase ? AsciiText.EqualsIgnoreCase(value, Value) : value.SequenceEqual(Value),
        StringMatchKind.Prefix => IgnoreCase ? AsciiText.StartsWithIgnoreCase(value, Value) : value.StartsWith(Value, StringComparison.Ordinal),
        StringMatchKind.Suffix => IgnoreCase ? AsciiText.EndsWithIgnoreCase(value, Value) : value.EndsWith(Value, StringComparison.Ordinal),
        StringMatchKind.Contains => IgnoreCase ? AsciiText.ContainsIgnoreCase(value, Value) : value.Contains(Value, StringComparison.Ordinal),
        _ => Regex!.IsFullMatch(value),
    };

    public override string ToString() => $"{Kind}({Value}{(IgnoreCase ? ", ignore_case" : "")})";

    private static StringMatcherModel Literal(StringMatchKind kind, string value, bool ignoreCase)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new StringMatcherModel(kind, value, ignoreCase, regex: null);
    }
}
