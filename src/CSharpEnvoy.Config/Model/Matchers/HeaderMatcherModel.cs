using System.Globalization;

namespace CSharpEnvoy.Config.Model.Matchers;

internal enum HeaderMatchKind
{
    /// <summary><c>string_match</c>, and the deprecated exact/prefix/suffix/contains/safe_regex forms.</summary>
    StringMatch,

    /// <summary><c>present_match</c>; also what an unset specifier means (present_match: true).</summary>
    Present,

    /// <summary><c>range_match</c>: integer value in [start, end).</summary>
    Range,
}

/// <summary>
/// Envoy's <c>config.route.v3.HeaderMatcher</c>. The caller supplies the header value with
/// repeated headers joined by ',' (as Envoy does), or null when the header is absent.
/// </summary>
internal sealed class HeaderMatcherModel
{
    private HeaderMatcherModel(
        string name,
        HeaderMatchKind kind,
        StringMatcherModel? stringMatcher,
        bool present,
        long rangeStart,
        long rangeEnd,
        bool invertMatch,
        bool treatMissingHeaderAsEmpty)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = AsciiText.ToLower(name);
        Kind = kind;
        StringMatcher = stringMatcher;
        PresentMatch = present;
        RangeStart = rangeStart;
        RangeEnd = rangeEnd;
        InvertMatch = invertMatch;
        TreatMissingHeaderAsEmpty = treatMissingHeaderAsEmpty;
    }

    /// <summary>Lower-cased header name (pseudo-headers such as <c>:method</c> included).</summary>
    public string Name { get; }

    public HeaderMatchKind Kind { get; }

    public StringMatcherModel? StringMatcher { get; }

    /// <summary>For <see cref="HeaderMatchKind.Present"/>: true = must be present, false = must be absent.</summary>
    public bool PresentMatch { get; }

    public long RangeStart { get; }

    /// <summary>Exclusive.</summary>
    public long RangeEnd { get; }

    public bool InvertMatch { get; }

    public bool TreatMissingHeaderAsEmpty { get; }

    public static HeaderMatcherModel ForStringMatch(string name, StringMatcherModel matcher, bool invertMatch = false, bool treatMissingHeaderAsEmpty = false)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        return new(name, HeaderMatchKind.StringMatch, matcher, false, 0, 0, invertMatch, treatMissingHeaderAsEmpty);
    }

    public static HeaderMatcherModel ForPresent(string name, bool present = true, bool invertMatch = false, bool treatMissingHeaderAsEmpty = false) =>
        new(name, HeaderMatchKind.Present, null, present, 0, 0, invertMatch, treatMissingHeaderAsEmpty);

    public static HeaderMatcherModel ForRange(string name, long start, long end, bool invertMatch = false, bool treatMissingHeaderAsEmpty = false) =>
        new(name, HeaderMatchKind.Range, null, false, start, end, invertMatch, treatMissingHeaderAsEmpty);

    /// <summary>
    /// Deprecated <c>exact_match</c>. Unlike <c>string_match.exact</c>, an empty value accepts any
    /// value. It stays a value matcher (an empty prefix), not present_match, because the two
    /// differ when an inverted matcher meets a missing header.
    /// </summary>
    public static HeaderMatcherModel ForDeprecatedExact(string name, string value, bool invertMatch = false, bool treatMissingHeaderAsEmpty = false) =>
        ForStringMatch(
            name,
            string.IsNullOrEmpty(value) ? StringMatcherModel.Prefix("") : StringMatcherModel.Exact(value),
            invertMatch,
            treatMissingHeaderAsEmpty);

    /// <summary>
    /// Matches one header value; null means the header is absent. Mirrors Envoy: an absent header
    /// (unless treated as empty) matches only present_match:false, or present_match:true when inverted.
    /// </summary>
    public bool Match(string? value) => value is null ? MatchMissing() : MatchValue(value);

    public bool Match(ReadOnlySpan<char> value) => MatchValue(value);

    private bool MatchMissing()
    {
        if (TreatMissingHeaderAsEmpty)
        {
            return MatchValue(ReadOnlySpan<char>.Empty);
        }

        // invert_match does not simply flip this result: Envoy special-cases absence.
        return Kind == HeaderMatchKind.Present && (InvertMatch ? PresentMatch : !PresentMatch);
    }

    private bool MatchValue(ReadOnlySpan<char> value)
    {
        bool match = Kind switch
        {
            HeaderMatchKind.StringMatch => StringMatcher!.Match(value),
            HeaderMatchKind.Present => PresentMatch,
            _ => TryParseInt64(value, out long n) && n >= RangeStart && n < RangeEnd,
        };
        return match != InvertMatch;
    }

    // absl::SimpleAtoi: optional surrounding ASCII whitespace, optional sign, decimal digits, no overflow.
    private static bool TryParseInt64(ReadOnlySpan<char> value, out long n) =>
        long.TryParse(
            value,
            NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite | NumberStyles.AllowLeadingSign,
            CultureInfo.InvariantCulture,
            out n);

    public override string ToString() => Kind switch
    {
        HeaderMatchKind.StringMatch => $"{Name}: {StringMatcher}",
        HeaderMatchKind.Present => $"{Name}: present={PresentMatch}",
        _ => $"{Name}: [{RangeStart}, {RangeEnd})",
    } + (InvertMatch ? " (inverted)" : "") + (TreatMissingHeaderAsEmpty ? " (missing=empty)" : "");
}
