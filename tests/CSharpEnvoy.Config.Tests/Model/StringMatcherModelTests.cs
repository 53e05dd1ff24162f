using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Tests.Model;

public class StringMatcherModelTests
{
    [Theory]
    [InlineData("abc", true)]
    [InlineData("abcd", false)]
    [InlineData("ab", false)]
    [InlineData("ABC", false)]
    public void Match_Exact_MatchesOnlyTheSameString(string value, bool expected)
    {
        Assert.Equal(expected, StringMatcherModel.Exact("abc").Match(value));
    }

    [Fact]
    public void Match_ExactIgnoreCase_DocExampleDataMatchesData()
    {
        StringMatcherModel m = StringMatcherModel.Exact("data", ignoreCase: true);

        Assert.True(m.Match("Data"));
        Assert.True(m.Match("data"));
        Assert.False(m.Match("datum"));
    }

    [Theory]
    [InlineData("abc.xyz", true)]
    [InlineData("abc", true)]
    [InlineData("xyz.abc", false)]
    public void Match_Prefix_DocExamples(string value, bool expected)
    {
        Assert.Equal(expected, StringMatcherModel.Prefix("abc").Match(value));
    }

    [Theory]
    [InlineData("xyz.abc", true)]
    [InlineData("abc.xyz", false)]
    public void Match_Suffix_DocExamples(string value, bool expected)
    {
        Assert.Equal(expected, StringMatcherModel.Suffix("abc").Match(value));
    }

    [Theory]
    [InlineData("xyz.abc.def", true)]
    [InlineData("abc", true)]
    [InlineData("xyz.ab.c", false)]
    public void Match_Contains_DocExamples(string value, bool expected)
    {
        Assert.Equal(expected, StringMatcherModel.Contains("abc").Match(value));
    }

    [Fact]
    public void Match_IgnoreCase_AppliesToPrefixSuffixAndContains()
    {
        Assert.True(StringMatcherModel.Prefix("ab", ignoreCase: true).Match("ABc"));
        Assert.False(StringMatcherModel.Prefix("ab").Match("ABc"));
        Assert.True(StringMatcherModel.Suffix("bc", ignoreCase: true).Match("aBC"));
        Assert.False(StringMatcherModel.Suffix("bc").Match("aBC"));
        Assert.True(StringMatcherModel.Contains("b", ignoreCase: true).Match("aBc"));
        Assert.False(StringMatcherModel.Contains("b").Match("aBc"));
    }

    [Fact]
    public void Match_IgnoreCase_FoldsAsciiOnlyLikeEnvoy()
    {
        StringMatcherModel m = StringMatcherModel.Exact("café", ignoreCase: true);

        Assert.True(m.Match("CAFé"));
        Assert.False(m.Match("CAFÉ"));
    }

    [Fact]
    public void Match_SafeRegex_IsFullMatch()
    {
        StringMatcherModel m = StringMatcherModel.SafeRegex(RegexMatcherModel.Create(@"\d{3}"));

        Assert.True(m.Match("123"));
        Assert.False(m.Match("1234"));
        Assert.False(m.Match("12"));
        Assert.Equal(StringMatchKind.SafeRegex, m.Kind);
        Assert.Equal(@"\d{3}", m.Value);
    }

    [Fact]
    public void Match_Null_NeverMatchesEvenAnEmptyExact()
    {
        Assert.False(StringMatcherModel.Exact("").Match((string?)null));
        Assert.True(StringMatcherModel.Exact("").Match(""));
        Assert.False(StringMatcherModel.Prefix("").Match((string?)null));
        Assert.False(StringMatcherModel.SafeRegex(RegexMatcherModel.Create(".*")).Match((string?)null));
    }

    [Fact]
    public void TryCreateSafeRegex_InvalidPattern_ReturnsError()
    {
        Assert.False(StringMatcherModel.TryCreateSafeRegex("([a-z", out StringMatcherModel? m, out string? error));
        Assert.Null(m);
        Assert.StartsWith("invalid regex '([a-z': ", error);
        Assert.True(StringMatcherModel.TryCreateSafeRegex("[a-z]+", out m, out _));
        Assert.True(m.Match("abc"));
    }
}
