using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.RegularExpressions;

namespace CSharpEnvoy.Config.Model.Matchers;

/// <summary>
/// Envoy's <c>RegexMatcher</c> (<c>safe_regex</c>) with RE2 semantics, run on .NET's
/// linear-time NonBacktracking engine (which, like RE2, has no lookaround or backreferences).
/// </summary>
internal sealed class RegexMatcherModel
{
    private const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    // RE2::FullMatch; anchored once here so matching never needs to check the match span.
    private readonly Regex _fullMatch;

    // Unanchored, for partial matches and GlobalReplace.
    private readonly Regex _search;

    // RE2 numbers groups left to right; .NET numbers unnamed groups before named ones.
    private readonly int[] _groupNumbers;

    private RegexMatcherModel(string pattern, Regex fullMatch, Regex search, int[] groupNumbers)
    {
        Pattern = pattern;
        _fullMatch = fullMatch;
        _search = search;
        _groupNumbers = groupNumbers;
    }

    /// <summary>The pattern as configured (RE2 syntax).</summary>
    public string Pattern { get; }

    /// <summary>Number of capture groups, not counting group 0.</summary>
    public int CaptureGroupCount => _groupNumbers.Length - 1;

    public static bool TryCreate(
        string pattern,
        [NotNullWhen(true)] out RegexMatcherModel? model,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        model = null;
        if (!Re2Syntax.TryTranslate(pattern, out string? translated, out List<string?>? names, out string? reason))
        {
            error = Invalid(pattern, reason);
            return false;
        }

        Regex search;
        Regex full;
        try
        {
            // Compile the bare pattern first: it alone proves the parentheses balance, so the
            // anchored wrapper below cannot be escaped by something like "a)|(b".
            search = new Regex(translated, Options);
            full = new Regex(@"\A(?:" + translated + @")\z", Options);
        }
        catch (ArgumentException ex)
        {
            error = Invalid(pattern, Describe(ex));
            return false;
        }
        catch (NotSupportedException ex)
        {
            error = Invalid(pattern, ex.Message);
            return false;
        }

        var groupNumbers = new int[names.Count + 1];
        int unnamed = 0;
        for (int i = 0; i < names.Count; i++)
        {
            groupNumbers[i + 1] = names[i] is { } name ? search.GroupNumberFromName(name) : ++unnamed;
        }

        model = new RegexMatcherModel(pattern, full, search, groupNumbers);
        error = null;
        return true;
    }

    /// <summary>Like <see cref="TryCreate"/> but throws <see cref="ArgumentException"/> with the same message.</summary>
    public static RegexMatcherModel Create(string pattern) =>
        TryCreate(pattern, out RegexMatcherModel? model, out string? error) ? model : throw new ArgumentException(error, nameof(pattern));

    /// <summary>RE2::FullMatch: the whole input must match. Null (absent) never matches.</summary>
    public bool IsFullMatch(string? input) => input is not null && _fullMatch.IsMatch(input.AsSpan());

    public bool IsFullMatch(ReadOnlySpan<char> input) => _fullMatch.IsMatch(input);

    /// <summary>RE2::PartialMatch: some substring matches.</summary>
    public bool IsPartialMatch(ReadOnlySpan<char> input) => _search.IsMatch(input);

    /// <summary>
    /// RE2::GlobalReplace, as Envoy's <c>RegexMatchAndSubstitute</c> uses it: every non-overlapping
    /// match is replaced; <c>\0</c>..<c>\9</c> in the substitution insert capture groups and
    /// <c>\\</c> a backslash. An invalid substitution leaves the input unchanged, as in RE2.
    /// </summary>
    public string Replace(string input, string substitution)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!TryParseSubstitution(substitution, out List<object>? parts, out _))
        {
            return input;
        }

        StringBuilder? sb = null;
        int pos = 0;
        int lastEnd = -1;
        int count = 0;
        while (pos <= input.Length)
        {
            Match m = _search.Match(input, pos);
            if (!m.Success)
            {
                break;
            }

            sb ??= new StringBuilder(input.Length + substitution.Length);
            sb.Append(input, pos, m.Index - pos);
            if (m.Length == 0 && m.Index == lastEnd)
            {
                // RE2 skips an empty match right where the previous match ended.
                if (m.Index >= input.Length)
                {
                    pos = m.Index;
                    break;
                }

                int n = char.IsHighSurrogate(input[m.Index]) && m.Index + 1 < input.Length ? 2 : 1;
                sb.Append(input, m.Index, n);
                pos = m.Index + n;
                continue;
            }

            foreach (object part in parts)
            {
                if (part is string literal)
                {
                    sb.Append(literal);
                }
                else
                {
                    Group g = m.Groups[_groupNumbers[(int)part]];
                    if (g.Success)
                    {
                        sb.Append(input, g.Index, g.Length);
                    }
                }
            }

            pos = m.Index + m.Length;
            lastEnd = pos;
            count++;
        }

        if (count == 0)
        {
            return input;
        }

        sb!.Append(input, pos, input.Length - pos);
        return sb.ToString();
    }

    /// <summary>Checks a substitution as RE2 would (escapes, and group numbers against this pattern).</summary>
    public bool TryValidateSubstitution(string substitution, [NotNullWhen(false)] out string? error) =>
        TryParseSubstitution(substitution, out _, out error);

    public override string ToString() => Pattern;

    private bool TryParseSubstitution(
        string substitution,
        [NotNullWhen(true)] out List<object>? parts,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(substitution);
        parts = new List<object>();
        var literal = new StringBuilder();
        for (int i = 0; i < substitution.Length; i++)
        {
            char c = substitution[i];
            if (c != '\\')
            {
                literal.Append(c);
                continue;
            }

            if (i + 1 >= substitution.Length)
            {
                parts = null;
                error = $"invalid substitution '{substitution}': trailing \\";
                return false;
            }

            char next = substitution[++i];
            if (next == '\\')
            {
                literal.Append('\\');
            }
            else if (char.IsAsciiDigit(next))
            {
                int group = next - '0';
                if (group > CaptureGroupCount)
                {
                    parts = null;
                    error = $"invalid substitution '{substitution}': \\{group} refers to a missing capture group (regex '{Pattern}' has {CaptureGroupCount})";
                    return false;
                }

                if (literal.Length > 0)
                {
                    parts.Add(literal.ToString());
                    literal.Clear();
                }

                parts.Add(group);
            }
            else
            {
                parts = null;
                error = $"invalid substitution '{substitution}': invalid escape \\{next} (use \\\\ for a backslash)";
                return false;
            }
        }

        if (literal.Length > 0)
        {
            parts.Add(literal.ToString());
        }

        error = null;
        return true;
    }

    private static string Invalid(string pattern, string reason) => $"invalid regex '{pattern}': {reason}";

    private static string Describe(ArgumentException ex)
    {
        // .NET's message quotes the rewritten pattern and its offsets; keep only the reason.
        string msg = ex.Message;
        int at = msg.IndexOf(" at offset ", StringComparison.Ordinal);
        int dot = at < 0 ? -1 : msg.IndexOf(". ", at, StringComparison.Ordinal);
        return dot < 0 ? msg : msg[(dot + 2)..];
    }
}
