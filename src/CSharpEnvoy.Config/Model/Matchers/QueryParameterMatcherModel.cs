namespace CSharpEnvoy.Config.Model.Matchers;

/// <summary>
/// Envoy's <c>config.route.v3.QueryParameterMatcher</c>. Only the first occurrence of the
/// parameter counts, names are case-sensitive and nothing is percent-decoded (all as in Envoy).
/// </summary>
internal sealed class QueryParameterMatcherModel
{
    private QueryParameterMatcherModel(string name, StringMatcherModel? stringMatcher, bool present)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        StringMatcher = stringMatcher;
        PresentMatch = present;
    }

    public string Name { get; }

    /// <summary>Set for <c>string_match</c>; null for a presence check.</summary>
    public StringMatcherModel? StringMatcher { get; }

    /// <summary>When <see cref="StringMatcher"/> is null: true = must be present, false = must be absent.</summary>
    public bool PresentMatch { get; }

    public static QueryParameterMatcherModel ForStringMatch(string name, StringMatcherModel matcher)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        return new(name, matcher, present: true);
    }

    /// <summary><c>present_match</c>; an unset specifier means present_match: true.</summary>
    public static QueryParameterMatcherModel ForPresent(string name, bool present = true) => new(name, null, present);

    /// <param name="query">The query string after '?', possibly empty.</param>
    public bool Match(ReadOnlySpan<char> query)
    {
        bool found = TryGetFirstValue(query, Name, out ReadOnlySpan<char> value);
        if (StringMatcher is null)
        {
            return found == PresentMatch;
        }

        return found && StringMatcher.Match(value);
    }

    /// <summary>
    /// Finds the first "name=value" (or bare "name", whose value is empty) in an '&amp;'-separated
    /// query, without decoding or allocating.
    /// </summary>
    public static bool TryGetFirstValue(ReadOnlySpan<char> query, ReadOnlySpan<char> name, out ReadOnlySpan<char> value)
    {
        while (true)
        {
            int amp = query.IndexOf('&');
            ReadOnlySpan<char> param = amp < 0 ? query : query[..amp];
            int eq = param.IndexOf('=');
            ReadOnlySpan<char> key = eq < 0 ? param : param[..eq];
            // Envoy drops only a final empty segment ("a&"); other empty segments are empty keys.
            if (key.SequenceEqual(name) && !(amp < 0 && param.IsEmpty))
            {
                value = eq < 0 ? ReadOnlySpan<char>.Empty : param[(eq + 1)..];
                return true;
            }

            if (amp < 0)
            {
                value = default;
                return false;
            }

            query = query[(amp + 1)..];
        }
    }

    public override string ToString() => StringMatcher is null ? $"{Name}: present={PresentMatch}" : $"{Name}: {StringMatcher}";
}
