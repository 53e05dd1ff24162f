using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Config.Tests.Model;

public class RouteTableTests
{
    private static RouteTable<string> Table(params (RouteMatchModel, string)[] routes) => new(routes);

    [Fact]
    public void Find_SeveralRoutesMatch_FirstInOrderWins()
    {
        RouteTable<string> table = Table(
            (RouteMatchModel.ForPrefix("/api"), "api"),
            (RouteMatchModel.ForPrefix("/"), "catch-all"));

        Assert.Equal("api", table.Find(new TestRouteRequest("/api/users")));
        Assert.Equal("catch-all", table.Find(new TestRouteRequest("/web")));
    }

    [Fact]
    public void Find_CatchAllFirst_ShadowsLaterRoutes()
    {
        RouteTable<string> table = Table(
            (RouteMatchModel.ForPrefix("/"), "catch-all"),
            (RouteMatchModel.ForPrefix("/api"), "api"));

        Assert.Equal("catch-all", table.Find(new TestRouteRequest("/api/users")));
    }

    [Fact]
    public void Find_HeaderConditionFails_FallsThroughToNextRoute()
    {
        RouteTable<string> table = Table(
            (new RouteMatchModel(PathMatchKind.Prefix, "/") { Headers = [HeaderMatcherModel.ForStringMatch("x-canary", StringMatcherModel.Exact("1"))] }, "canary"),
            (RouteMatchModel.ForPrefix("/"), "stable"));

        Assert.Equal("canary", table.Find(new TestRouteRequest("/").With("x-canary", "1")));
        Assert.Equal("stable", table.Find(new TestRouteRequest("/").With("x-canary", "0")));
        Assert.Equal("stable", table.Find(new TestRouteRequest("/")));
    }

    [Fact]
    public void Find_NothingMatches_ReturnsNull()
    {
        RouteTable<string> table = Table((RouteMatchModel.ForPath("/only"), "only"));

        Assert.Null(table.Find(new TestRouteRequest("/other")));
        Assert.Null(RouteTable<string>.Empty.Find(new TestRouteRequest("/")));
    }

    [Fact]
    public void FindIndex_WithStartIndex_SkipsEarlierRoutes()
    {
        RouteTable<string> table = Table(
            (RouteMatchModel.ForPrefix("/"), "a"),
            (RouteMatchModel.ForPrefix("/x"), "b"),
            (RouteMatchModel.ForPrefix("/"), "c"));
        var request = new TestRouteRequest("/y");

        Assert.Equal(0, table.FindIndex(request));
        Assert.Equal(2, table.FindIndex(request, 1));
        Assert.Equal(-1, table.FindIndex(request, 3));
        Assert.Equal(3, table.Count);
        Assert.Equal("c", table.GetRoute(2));
        Assert.Equal("/x", table.GetMatch(1).PathValue);
    }
}
