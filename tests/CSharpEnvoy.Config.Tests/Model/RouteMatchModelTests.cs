using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Config.Tests.Model;

public class RouteMatchModelTests
{
    private static bool Matches(RouteMatchModel m, string pathAndQuery) => m.Matches(new TestRouteRequest(pathAndQuery));

    [Theory]
    [InlineData("/foo", true)]
    [InlineData("/foobar", true)]
    [InlineData("/foo/bar", true)]
    [InlineData("/foo?x=1", true)]
    [InlineData("/fo", false)]
    [InlineData("/Foo", false)]
    [InlineData("/bar/foo", false)]
    public void Matches_Prefix_MatchesStartOfPath(string path, bool expected)
    {
        Assert.Equal(expected, Matches(RouteMatchModel.ForPrefix("/foo"), path));
    }

    [Fact]
    public void Matches_SlashPrefix_MatchesEveryPath()
    {
        Assert.True(Matches(RouteMatchModel.ForPrefix("/"), "/"));
        Assert.True(Matches(RouteMatchModel.ForPrefix("/"), "/anything/at/all?q"));
    }

    [Theory]
    [InlineData("/foo", true)]
    [InlineData("/foo?a=b", true)]
    [InlineData("/foo/", false)]
    [InlineData("/foobar", false)]
    [InlineData("/FOO", false)]
    public void Matches_Path_MatchesWholePathWithoutQuery(string path, bool expected)
    {
        Assert.Equal(expected, Matches(RouteMatchModel.ForPath("/foo"), path));
    }

    [Fact]
    public void Matches_CaseInsensitive_AppliesToPrefixAndPath()
    {
        Assert.True(Matches(RouteMatchModel.ForPrefix("/API", caseSensitive: false), "/api/v1"));
        Assert.True(Matches(RouteMatchModel.ForPath("/Foo", caseSensitive: false), "/fOO"));
        Assert.False(Matches(RouteMatchModel.ForPath("/Foo", caseSensitive: false), "/fOOo"));
    }

    // Examples from the RouteMatch.path_separated_prefix documentation.
    [Theory]
    [InlineData("/api/dev", true)]
    [InlineData("/api/dev/", true)]
    [InlineData("/api/dev/v1", true)]
    [InlineData("/api/dev?param=true", true)]
    [InlineData("/api/developer", false)]
    [InlineData("/api/de", false)]
    [InlineData("/api", false)]
    public void Matches_PathSeparatedPrefix_DocExamples(string path, bool expected)
    {
        Assert.Equal(expected, Matches(RouteMatchModel.ForPathSeparatedPrefix("/api/dev"), path));
    }

    [Fact]
    public void Matches_PathSeparatedPrefixCaseInsensitive_IgnoresCase()
    {
        Assert.True(Matches(RouteMatchModel.ForPathSeparatedPrefix("/Api", caseSensitive: false), "/aPI/x"));
        Assert.False(Matches(RouteMatchModel.ForPathSeparatedPrefix("/Api"), "/aPI/x"));
    }

    [Theory]
    [InlineData("/api/")]
    [InlineData("/a?b")]
    [InlineData("/a#b")]
    [InlineData("/")]
    [InlineData("")]
    public void Constructor_InvalidPathSeparatedPrefix_Throws(string value)
    {
        Assert.Throws<ArgumentException>(() => RouteMatchModel.ForPathSeparatedPrefix(value));
    }

    [Fact]
    public void Constructor_SafeRegexKindWithString_Throws()
    {
        Assert.Throws<ArgumentException>(() => new RouteMatchModel(PathMatchKind.SafeRegex, "/a"));
    }

    [Theory]
    [InlineData("/bit", true)]
    [InlineData("/bot", true)]
    [InlineData("/bit?x=1", true)]
    [InlineData("/bite", false)]
    [InlineData("/bit/bot", false)]
    public void Matches_SafeRegex_WholePathWithoutQueryMustMatch(string path, bool expected)
    {
        Assert.Equal(expected, Matches(RouteMatchModel.ForSafeRegex(RegexMatcherModel.Create("/b[io]t")), path));
    }

    [Fact]
    public void Matches_SafeRegexWithCaseSensitiveFalse_StaysCaseSensitive()
    {
        var m = new RouteMatchModel(RegexMatcherModel.Create("/b[io]t")) { CaseSensitive = false };

        Assert.False(Matches(m, "/BIT"));
    }

    [Fact]
    public void Matches_Headers_AllMustMatch()
    {
        var m = new RouteMatchModel(PathMatchKind.Prefix, "/")
        {
            Headers =
            [
                HeaderMatcherModel.ForStringMatch(":method", StringMatcherModel.Exact("GET")),
                HeaderMatcherModel.ForPresent("X-Debug"),
            ],
        };

        Assert.True(m.Matches(new TestRouteRequest("/a").With(":method", "GET").With("x-debug", "1")));
        Assert.False(m.Matches(new TestRouteRequest("/a").With(":method", "GET")));
        Assert.False(m.Matches(new TestRouteRequest("/a").With(":method", "POST").With("x-debug", "1")));
    }

    [Fact]
    public void Matches_RepeatedRequestHeader_IsMatchedJoinedWithComma()
    {
        var m = new RouteMatchModel(PathMatchKind.Prefix, "/")
        {
            Headers = [HeaderMatcherModel.ForStringMatch("x-tag", StringMatcherModel.Exact("a,b"))],
        };

        Assert.True(m.Matches(new TestRouteRequest("/").With("x-tag", "a").With("x-tag", "b")));
        Assert.False(m.Matches(new TestRouteRequest("/").With("x-tag", "a")));
    }

    [Fact]
    public void Matches_QueryParameters_AllMustMatch()
    {
        var m = new RouteMatchModel(PathMatchKind.Path, "/search")
        {
            QueryParameters =
            [
                QueryParameterMatcherModel.ForStringMatch("debug", StringMatcherModel.Exact("1")),
                QueryParameterMatcherModel.ForPresent("q"),
            ],
        };

        Assert.True(Matches(m, "/search?q=x&debug=1"));
        Assert.False(Matches(m, "/search?debug=1"));
        Assert.False(Matches(m, "/search?q=x&debug=2"));
        Assert.False(Matches(m, "/search"));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/grpc-web+proto", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Matches_Grpc_RequiresGrpcContentType(string? contentType, bool expected)
    {
        var m = new RouteMatchModel(PathMatchKind.Prefix, "/") { Grpc = true };
        var request = new TestRouteRequest("/pkg.Service/Method");
        if (contentType is not null)
        {
            request.With("content-type", contentType);
        }

        Assert.Equal(expected, m.Matches(request));
    }

    [Fact]
    public void Matches_PathMismatch_ReadsNoHeaders()
    {
        var m = new RouteMatchModel(PathMatchKind.Prefix, "/api")
        {
            Headers = [HeaderMatcherModel.ForPresent("x-a")],
            Grpc = true,
        };
        var request = new TestRouteRequest("/other").With("x-a", "1");

        Assert.False(m.Matches(request));
        Assert.Equal(0, request.HeaderReads);
    }

    [Fact]
    public void Headers_DefaultArray_IsNormalisedToEmpty()
    {
        var m = new RouteMatchModel(PathMatchKind.Prefix, "/") { Headers = default, QueryParameters = default };

        Assert.Empty(m.Headers);
        Assert.Empty(m.QueryParameters);
        Assert.True(Matches(m, "/x"));
    }
}
