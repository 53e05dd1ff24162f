using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Tests.Model;

public class HeaderMatcherModelTests
{
    private static HeaderMatcherModel Regex(string pattern, bool invert = false, bool missingAsEmpty = false) =>
        HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.SafeRegex(RegexMatcherModel.Create(pattern)), invert, missingAsEmpty);

    [Fact]
    public void Name_MixedCase_IsLowerCased()
    {
        Assert.Equal("x-foo", HeaderMatcherModel.ForPresent("X-Foo").Name);
        Assert.Equal(":method", HeaderMatcherModel.ForPresent(":method").Name);
    }

    [Fact]
    public void Match_StringExact_MatchesValueAndNotMissingHeader()
    {
        HeaderMatcherModel m = HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Exact("GET"));

        Assert.True(m.Match("GET"));
        Assert.False(m.Match("POST"));
        Assert.False(m.Match((string?)null));
    }

    [Fact]
    public void Match_DeprecatedForms_DocExamples()
    {
        HeaderMatcherModel prefix = HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Prefix("abcd"));
        HeaderMatcherModel suffix = HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Suffix("abcd"));
        HeaderMatcherModel contains = HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Contains("abcd"));

        Assert.True(prefix.Match("abcdxyz"));
        Assert.False(prefix.Match("abcxyz"));
        Assert.True(suffix.Match("xyzabcd"));
        Assert.False(suffix.Match("xyzbcd"));
        Assert.True(contains.Match("xyzabcdpqr"));
        Assert.False(contains.Match("xyzbcdpqr"));
    }

    [Fact]
    public void Match_InvertedRegex_DocExample1234MatchesWhenInverted()
    {
        Assert.False(Regex(@"\d{3}").Match("1234"));
        Assert.True(Regex(@"\d{3}", invert: true).Match("1234"));
        Assert.False(Regex(@"\d{3}", invert: true).Match("123"));
    }

    [Theory]
    [InlineData("-1", true)]
    [InlineData("-10", true)]
    [InlineData("0", false)]
    [InlineData("somestring", false)]
    [InlineData("10.9", false)]
    [InlineData("-1somestring", false)]
    [InlineData("", false)]
    public void Match_Range_DocExamplesForMinus10To0(string value, bool expected)
    {
        Assert.Equal(expected, HeaderMatcherModel.ForRange("x", -10, 0).Match(value));
    }

    [Fact]
    public void Match_InvertedRange_DocExampleMinus1DoesNotMatch()
    {
        Assert.False(HeaderMatcherModel.ForRange("x", -10, 0, invertMatch: true).Match("-1"));
        Assert.True(HeaderMatcherModel.ForRange("x", -10, 0, invertMatch: true).Match("5"));
    }

    [Theory]
    [InlineData(" 5 ", true)]
    [InlineData("+5", true)]
    [InlineData("05", true)]
    [InlineData("5 x", false)]
    [InlineData("0x5", false)]
    [InlineData("9223372036854775808", false)]
    public void Match_Range_ParsesLikeAbslSimpleAtoi(string value, bool expected)
    {
        Assert.Equal(expected, HeaderMatcherModel.ForRange("x", 0, long.MaxValue).Match(value));
    }

    [Fact]
    public void Match_PresentTrue_MatchesAnyValueIncludingEmpty()
    {
        HeaderMatcherModel m = HeaderMatcherModel.ForPresent("x", present: true);

        Assert.True(m.Match("anything"));
        Assert.True(m.Match(""));
        Assert.False(m.Match((string?)null));
    }

    [Fact]
    public void Match_PresentFalse_MatchesOnlyWhenAbsent()
    {
        HeaderMatcherModel m = HeaderMatcherModel.ForPresent("x", present: false);

        Assert.True(m.Match((string?)null));
        Assert.False(m.Match("v"));
    }

    [Fact]
    public void Match_InvertedOnMissingHeader_FollowsEnvoysSpecialCase()
    {
        // A missing header is not simply "no match, then inverted".
        Assert.True(HeaderMatcherModel.ForPresent("x", true, invertMatch: true).Match((string?)null));
        Assert.False(HeaderMatcherModel.ForPresent("x", false, invertMatch: true).Match((string?)null));
        Assert.False(HeaderMatcherModel.ForPresent("x", true, invertMatch: true).Match("v"));
        Assert.True(HeaderMatcherModel.ForPresent("x", false, invertMatch: true).Match("v"));
        Assert.False(Regex("a", invert: true).Match((string?)null));
        Assert.False(HeaderMatcherModel.ForRange("x", 0, 10, invertMatch: true).Match((string?)null));
    }

    // The four treat_missing_header_as_empty examples of Envoy's HeaderMatcher docs.
    [Fact]
    public void Match_TreatMissingAsEmpty_DocExamples()
    {
        Assert.True(HeaderMatcherModel.ForRange("header1", 0, 10, invertMatch: true, treatMissingHeaderAsEmpty: true).Match((string?)null));
        Assert.False(HeaderMatcherModel.ForRange("header2", 0, 10, invertMatch: true, treatMissingHeaderAsEmpty: false).Match((string?)null));
        Assert.True(Regex("^$", missingAsEmpty: true).Match((string?)null));
        Assert.False(Regex("^$", missingAsEmpty: false).Match((string?)null));
    }

    [Fact]
    public void Match_PresentFalseWithMissingAsEmpty_NoLongerMatchesAbsence()
    {
        // Treated as present-but-empty, so "must be absent" fails.
        Assert.False(HeaderMatcherModel.ForPresent("x", false, treatMissingHeaderAsEmpty: true).Match((string?)null));
    }

    [Fact]
    public void Match_JoinedRepeatedHeader_IsMatchedAsOneValue()
    {
        Assert.True(HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Exact("a,b")).Match("a,b"));
        Assert.False(HeaderMatcherModel.ForStringMatch("x", StringMatcherModel.Exact("a")).Match("a,b"));
    }

    [Fact]
    public void ForDeprecatedExact_EmptyValue_MatchesAnyPresentValueButStaysAValueMatcher()
    {
        HeaderMatcherModel m = HeaderMatcherModel.ForDeprecatedExact("x", "");
        HeaderMatcherModel inverted = HeaderMatcherModel.ForDeprecatedExact("x", "", invertMatch: true);

        Assert.True(m.Match("whatever"));
        Assert.False(m.Match((string?)null));
        // A presence matcher would return true here.
        Assert.False(inverted.Match((string?)null));
        Assert.False(inverted.Match("whatever"));
    }

    [Fact]
    public void ForDeprecatedExact_NonEmptyValue_IsExact()
    {
        HeaderMatcherModel m = HeaderMatcherModel.ForDeprecatedExact("x", "v");

        Assert.True(m.Match("v"));
        Assert.False(m.Match("vv"));
    }
}
