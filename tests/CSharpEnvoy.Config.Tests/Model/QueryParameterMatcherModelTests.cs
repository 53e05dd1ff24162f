using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Tests.Model;

public class QueryParameterMatcherModelTests
{
    private static QueryParameterMatcherModel Exact(string name, string value) =>
        QueryParameterMatcherModel.ForStringMatch(name, StringMatcherModel.Exact(value));

    [Theory]
    [InlineData("debug=1", true)]
    [InlineData("a=b&debug=1", true)]
    [InlineData("debug=2", false)]
    [InlineData("other=1", false)]
    [InlineData("", false)]
    public void Match_StringMatch_ComparesTheParameterValue(string query, bool expected)
    {
        Assert.Equal(expected, Exact("debug", "1").Match(query));
    }

    [Fact]
    public void Match_RepeatedParameter_OnlyFirstValueCounts()
    {
        Assert.False(Exact("debug", "1").Match("debug=2&debug=1"));
        Assert.True(Exact("debug", "2").Match("debug=2&debug=1"));
    }

    [Fact]
    public void Match_Value_IsNotUrlDecoded()
    {
        Assert.True(Exact("q", "a%20b").Match("q=a%20b"));
        Assert.False(Exact("q", "a b").Match("q=a%20b"));
        Assert.False(Exact("a b", "1").Match("a%20b=1"));
    }

    [Fact]
    public void Match_ParameterWithoutEquals_HasEmptyValue()
    {
        Assert.True(Exact("debug", "").Match("debug"));
        Assert.True(Exact("debug", "").Match("x=1&debug&y=2"));
        Assert.False(Exact("debug", "1").Match("debug"));
        Assert.True(QueryParameterMatcherModel.ForPresent("debug").Match("debug"));
    }

    [Fact]
    public void Match_Name_IsCaseSensitiveAndWhole()
    {
        Assert.False(Exact("debug", "1").Match("Debug=1"));
        Assert.False(Exact("debug", "1").Match("debugx=1"));
        Assert.False(Exact("debug", "1").Match("xdebug=1"));
    }

    [Fact]
    public void Match_ValueContainingEquals_KeepsEverythingAfterFirstEquals()
    {
        Assert.True(Exact("a", "b=c").Match("a=b=c"));
    }

    [Fact]
    public void Match_PresentTrue_RequiresTheParameter()
    {
        QueryParameterMatcherModel m = QueryParameterMatcherModel.ForPresent("debug", present: true);

        Assert.True(m.Match("debug=0"));
        Assert.False(m.Match("nodebug=1"));
        Assert.False(m.Match(""));
    }

    [Fact]
    public void Match_PresentFalse_RequiresAbsence()
    {
        QueryParameterMatcherModel m = QueryParameterMatcherModel.ForPresent("debug", present: false);

        Assert.True(m.Match(""));
        Assert.True(m.Match("other=1"));
        Assert.False(m.Match("debug=1"));
        Assert.False(m.Match("debug"));
    }

    [Fact]
    public void Match_RegexValue_IsFullMatch()
    {
        var m = QueryParameterMatcherModel.ForStringMatch("id", StringMatcherModel.SafeRegex(RegexMatcherModel.Create("[0-9]+")));

        Assert.True(m.Match("id=123"));
        Assert.False(m.Match("id=123a"));
    }

    [Theory]
    [InlineData("a=1&&b=2", "b", "2")]
    [InlineData("a=1&", "a", "1")]
    [InlineData("&a=1", "a", "1")]
    [InlineData("a==", "a", "=")]
    public void TryGetFirstValue_EdgeSeparators_FindValue(string query, string name, string expected)
    {
        Assert.True(QueryParameterMatcherModel.TryGetFirstValue(query, name, out ReadOnlySpan<char> value));
        Assert.Equal(expected, value.ToString());
    }
}
