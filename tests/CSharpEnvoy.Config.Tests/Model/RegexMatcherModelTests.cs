using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Tests.Model;

public class RegexMatcherModelTests
{
    private static RegexMatcherModel Re(string pattern) => RegexMatcherModel.Create(pattern);

    [Theory]
    [InlineData("/bit", true)]
    [InlineData("/bot", true)]
    [InlineData("/bite", false)]
    [InlineData("/bit/bot", false)]
    public void IsFullMatch_RouteMatchSafeRegexDocExamples_MatchWholeInputOnly(string path, bool expected)
    {
        Assert.Equal(expected, Re("/b[io]t").IsFullMatch(path));
    }

    [Fact]
    public void IsFullMatch_SubstringMatches_ReturnsFalseButPartialMatchIsTrue()
    {
        RegexMatcherModel re = Re(@"\d{3}");

        Assert.False(re.IsFullMatch("1234"));
        Assert.True(re.IsPartialMatch("1234"));
        Assert.True(re.IsFullMatch("123"));
    }

    [Fact]
    public void IsFullMatch_TopLevelAlternation_AnchorsEveryAlternative()
    {
        RegexMatcherModel re = Re("foo|foobar");

        Assert.True(re.IsFullMatch("foobar"));
        Assert.True(re.IsFullMatch("foo"));
        Assert.False(re.IsFullMatch("xfoo"));
        Assert.False(Re("a|b").IsFullMatch("ab"));
    }

    [Fact]
    public void IsFullMatch_Null_ReturnsFalse()
    {
        Assert.False(Re(".*").IsFullMatch((string?)null));
        Assert.True(Re(".*").IsFullMatch(""));
    }

    [Fact]
    public void IsFullMatch_PythonStyleNamedGroup_IsAccepted()
    {
        Assert.True(Re(@"/users/(?P<id>[0-9]+)").IsFullMatch("/users/42"));
        Assert.True(Re(@"/users/(?<id>[0-9]+)").IsFullMatch("/users/42"));
    }

    [Fact]
    public void IsFullMatch_PerlClasses_AreAsciiOnlyLikeRe2()
    {
        // Arabic-Indic digits are \d in .NET but not in RE2.
        Assert.False(Re(@"\d+").IsFullMatch("١٢٣"));
        Assert.True(Re(@"\d+").IsFullMatch("123"));
        Assert.False(Re(@"\w+").IsFullMatch("héllo"));
        Assert.False(Re(@"[\w]+").IsFullMatch("héllo"));
        Assert.True(Re(@"\s").IsFullMatch("\t"));
        Assert.False(Re(@"\s").IsFullMatch("\u00a0"));
    }

    [Fact]
    public void IsPartialMatch_Dollar_IsEndOfTextUnlessMultiline()
    {
        // .NET's '$' also matches before a final newline; RE2's does not.
        Assert.False(Re("a$").IsPartialMatch("a\n"));
        Assert.True(Re("(?m)a$").IsPartialMatch("a\nb"));
        Assert.True(Re("(?m:a$)").IsPartialMatch("a\nb"));
        Assert.False(Re("(?m:x)a$").IsPartialMatch("a\n"));
    }

    [Fact]
    public void IsFullMatch_Re2OnlySyntax_IsTranslated()
    {
        Assert.True(Re("[[:alpha:]]+").IsFullMatch("abc"));
        Assert.False(Re("[[:alpha:]]+").IsFullMatch("ab1"));
        Assert.True(Re(@"\Q*.foo\E").IsFullMatch("*.foo"));
        Assert.False(Re(@"\Q*.foo\E").IsFullMatch("x.foo"));
        Assert.True(Re(@"\pL+").IsFullMatch("héllo"));
        Assert.True(Re(@"\p{^L}").IsFullMatch("1"));
        Assert.True(Re(@"\x{41}").IsFullMatch("A"));
        Assert.True(Re(@"\x{1F600}").IsFullMatch("😀"));
        Assert.True(Re("[]a]+").IsFullMatch("]a"));
    }

    [Fact]
    public void IsFullMatch_CaseInsensitiveFlag_Works()
    {
        Assert.True(Re("(?i)abc").IsFullMatch("AbC"));
        Assert.False(Re("abc").IsFullMatch("AbC"));
    }

    [Theory]
    [InlineData("([a-z")]
    [InlineData("[a-z")]
    [InlineData("(abc")]
    [InlineData("abc)")]
    [InlineData("a**")]
    [InlineData(@"abc\")]
    public void TryCreate_InvalidPattern_ReturnsMessageNamingThePattern(string pattern)
    {
        Assert.False(RegexMatcherModel.TryCreate(pattern, out RegexMatcherModel? model, out string? error));
        Assert.Null(model);
        Assert.StartsWith($"invalid regex '{pattern}': ", error);
        Assert.True(error.Length > $"invalid regex '{pattern}': ".Length);
    }

    [Theory]
    [InlineData(@"(a)\1")]
    [InlineData("a(?=b)")]
    [InlineData("a(?!b)")]
    [InlineData("(?<=a)b")]
    [InlineData("(?<!a)b")]
    [InlineData("(?>ab)")]
    [InlineData("(?U)a*")]
    [InlineData("(?x)a b")]
    [InlineData("a{1001}")]
    [InlineData(@"\Z")]
    [InlineData("(?P<n>a)(?P<n>b)")]
    [InlineData("[[:^alpha:]]")]
    [InlineData("[[:nope:]]")]
    public void TryCreate_ConstructRe2Rejects_IsRejected(string pattern)
    {
        Assert.False(RegexMatcherModel.TryCreate(pattern, out _, out string? error));
        Assert.StartsWith($"invalid regex '{pattern}': ", error);
    }

    [Fact]
    public void TryCreate_PatternEscapingTheAnchors_IsRejected()
    {
        // Would otherwise become \A(?:a)|(b)\z and match anything starting with "a".
        Assert.False(RegexMatcherModel.TryCreate("a)|(b", out _, out _));
    }

    [Fact]
    public void TryCreate_RepeatAtLimit_IsAccepted()
    {
        Assert.True(RegexMatcherModel.TryCreate("a{2,1000}", out RegexMatcherModel? model, out _));
        Assert.True(model.IsFullMatch(new string('a', 1000)));
        Assert.False(model.IsFullMatch(new string('a', 1001)));
    }

    [Fact]
    public void Create_InvalidPattern_ThrowsArgumentExceptionWithSameMessage()
    {
        ArgumentException ex = Assert.Throws<ArgumentException>(() => RegexMatcherModel.Create("([a-z"));
        Assert.StartsWith("invalid regex '([a-z': ", ex.Message);
    }

    // Examples from Envoy's RegexMatchAndSubstitute documentation.
    [Theory]
    [InlineData(@"^/service/([^/]+)(/.*)$", @"\2/instance/\1", "/service/foo/v1/api", "/v1/api/instance/foo")]
    [InlineData("one", "two", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz")]
    [InlineData(@"^(.*?)one(.*)$", @"\1two\2", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/one/zzz")]
    [InlineData("(?i)/xxx/", "/yyy/", "/aaa/XxX/bbb", "/aaa/yyy/bbb")]
    public void Replace_DocExamples_ProduceDocumentedResult(string pattern, string substitution, string input, string expected)
    {
        Assert.Equal(expected, Re(pattern).Replace(input, substitution));
    }

    [Fact]
    public void Replace_NoMatch_ReturnsInputUnchanged()
    {
        const string input = "/a/b";
        Assert.Same(input, Re("zzz").Replace(input, "x"));
    }

    [Theory]
    [InlineData("a*", "baaa", "-b-")]
    [InlineData("x*", "abc", "-a-b-c-")]
    [InlineData("^a", "aaa", "-aa")]
    public void Replace_EmptyAndAnchoredMatches_FollowRe2GlobalReplace(string pattern, string input, string expected)
    {
        Assert.Equal(expected, Re(pattern).Replace(input, "-"));
    }

    [Fact]
    public void Replace_SubstitutionEscapes_FollowRe2()
    {
        Assert.Equal(@"x\y", Re("a").Replace("a", @"x\\y"));
        Assert.Equal("$1", Re("(a)").Replace("a", "$1"));
        Assert.Equal("[a]", Re("(a)").Replace("a", @"[\0]"));
    }

    [Fact]
    public void Replace_NamedAndUnnamedGroups_AreNumberedLeftToRightLikeRe2()
    {
        // .NET alone numbers named groups after unnamed ones, which would give "ab".
        Assert.Equal("ba", Re("(?P<first>a)(b)").Replace("ab", @"\2\1"));
    }

    [Fact]
    public void Replace_InvalidSubstitution_LeavesInputUnchangedAndIsReported()
    {
        RegexMatcherModel re = Re("(a)");

        Assert.Equal("a", re.Replace("a", @"\2"));
        Assert.Equal("a", re.Replace("a", @"\q"));
        Assert.False(re.TryValidateSubstitution(@"\2", out string? error));
        Assert.Contains("capture group", error);
        Assert.False(re.TryValidateSubstitution(@"x\", out _));
        Assert.True(re.TryValidateSubstitution(@"\1\\", out _));
    }

    [Fact]
    public void CaptureGroupCount_CountsNamedAndUnnamedGroups()
    {
        Assert.Equal(3, Re("(a)(?P<x>b)(?:c)(d)").CaptureGroupCount);
    }
}
