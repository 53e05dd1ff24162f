using System.Diagnostics;
using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Config.Tests.Model;

public class VirtualHostTableTests
{
    private sealed record Vh(string Name);

    private static VirtualHostTable<Vh> Build(bool ignorePort, params string[][] domainsPerHost)
    {
        var builder = new VirtualHostTable<Vh>.Builder("rc", ignorePort);
        for (int i = 0; i < domainsPerHost.Length; i++)
        {
            builder.Add(new Vh(string.Join("|", domainsPerHost[i])), domainsPerHost[i]);
        }

        return builder.Build();
    }

    private static VirtualHostTable<Vh> Build(params string[] domains) => Build(false, domains.Select(d => new[] { d }).ToArray());

    private static string? Find(VirtualHostTable<Vh> table, string? host) => table.Find(host)?.Name;

    // The "Domain search order" of VirtualHost.domains.
    [Theory]
    [InlineData("www.foo.com", "www.foo.com")]
    [InlineData("api.foo.com", "*.foo.com")]
    [InlineData("www.bar.com", "www.*")]
    [InlineData("example.org", "*")]
    public void Find_DocSearchOrder_ExactThenSuffixThenPrefixThenStar(string host, string expected)
    {
        VirtualHostTable<Vh> table = Build("*", "www.*", "*.foo.com", "www.foo.com");

        Assert.Equal(expected, Find(table, host));
    }

    [Fact]
    public void Find_SuffixAndPrefixBothMatch_SuffixWinsEvenIfShorter()
    {
        VirtualHostTable<Vh> table = Build("*.com", "www.foo.*");

        Assert.Equal("*.com", Find(table, "www.foo.com"));
    }

    [Theory]
    [InlineData("baz-bar.foo.com", "*-bar.foo.com")]
    [InlineData("baz.foo.com", "*.foo.com")]
    [InlineData("a.b.foo.com", "*.foo.com")]
    public void Find_SuffixWildcards_LongestWins(string host, string expected)
    {
        VirtualHostTable<Vh> table = Build("*.foo.com", "*-bar.foo.com");

        Assert.Equal(expected, Find(table, host));
    }

    [Theory]
    [InlineData("-bar.foo.com", "*.foo.com")]
    [InlineData(".foo.com", null)]
    [InlineData("foo.com", null)]
    [InlineData("x-bar.foo.com", "*-bar.foo.com")]
    public void Find_SuffixWildcard_DoesNotMatchEmptyString(string host, string? expected)
    {
        VirtualHostTable<Vh> table = Build("*-bar.foo.com", "*.foo.com");

        Assert.Equal(expected, Find(table, host));
        Assert.Null(Find(Build("*-bar.foo.com"), "-bar.foo.com"));
    }

    [Theory]
    [InlineData("foo-bar-baz", "foo-bar-*")]
    [InlineData("foo-baz", "foo-*")]
    [InlineData("foo-", null)]
    [InlineData("foo-bar-", "foo-*")]
    public void Find_PrefixWildcards_LongestWinsAndNeverMatchEmpty(string host, string? expected)
    {
        VirtualHostTable<Vh> table = Build("foo-*", "foo-bar-*");

        Assert.Equal(expected, Find(table, host));
    }

    [Fact]
    public void Find_MixedCase_ComparesLowerCase()
    {
        VirtualHostTable<Vh> table = Build("WWW.Foo.com", "*.Bar.COM", "Baz.*");

        Assert.Equal("WWW.Foo.com", Find(table, "www.FOO.com"));
        Assert.Equal("*.Bar.COM", Find(table, "X.bar.com"));
        Assert.Equal("Baz.*", Find(table, "BAZ.io"));
    }

    [Fact]
    public void Find_LongMixedCaseHost_IsLowerCasedOffTheStack()
    {
        string label = new('a', 300);
        VirtualHostTable<Vh> table = Build(label + ".example.com", "*.example.com");

        Assert.Equal(label + ".example.com", Find(table, label.ToUpperInvariant() + ".EXAMPLE.com"));
        Assert.Equal("*.example.com", Find(table, "B" + label + ".example.com"));
    }

    [Fact]
    public void Find_HostWithPort_PortIsPartOfTheMatchByDefault()
    {
        VirtualHostTable<Vh> table = Build("foo.com:8080", "bar.com");

        Assert.Equal("foo.com:8080", Find(table, "foo.com:8080"));
        Assert.Null(Find(table, "foo.com"));
        Assert.Null(Find(table, "bar.com:80"));
    }

    [Fact]
    public void Find_IgnorePortInHostMatching_StripsPortFromHostOnly()
    {
        VirtualHostTable<Vh> table = Build(true, ["foo.com"], ["bar.com:8080"], ["*.wild.com"]);

        Assert.Equal("foo.com", Find(table, "foo.com:8080"));
        Assert.Equal("foo.com", Find(table, "foo.com"));
        Assert.Equal("*.wild.com", Find(table, "a.wild.com:443"));
        // Domains keep their port, so a host can no longer reach this one.
        Assert.Null(Find(table, "bar.com:8080"));
    }

    [Theory]
    [InlineData("[::1]:80", "[::1]")]
    [InlineData("[::1]", "[::1]")]
    [InlineData("[2001:db8::1]:8443", "[2001:db8::1]")]
    public void Find_IgnorePortWithIpv6Literal_KeepsColonsInsideBrackets(string host, string expected)
    {
        VirtualHostTable<Vh> table = Build(true, ["[::1]"], ["[2001:db8::1]"]);

        Assert.Equal(expected, Find(table, host));
    }

    [Fact]
    public void Find_Ipv6LiteralWithPort_MatchesDomainWithPortByDefault()
    {
        VirtualHostTable<Vh> table = Build("[::1]:80", "[::1]");

        Assert.Equal("[::1]:80", Find(table, "[::1]:80"));
        Assert.Equal("[::1]", Find(table, "[::1]"));
    }

    [Theory]
    [InlineData("foo.com:8080", 7)]
    [InlineData("foo.com", -1)]
    [InlineData("[::1]", -1)]
    [InlineData("[::1]:80", 5)]
    [InlineData("foo.com:", 7)]
    public void PortStart_FindsPortSeparatorOutsideIpv6Brackets(string host, int expected)
    {
        Assert.Equal(expected, HostHeader.PortStart(host));
    }

    [Fact]
    public void Find_EmptyHost_FallsBackToStarOrNothing()
    {
        Assert.Equal("*", Find(Build("*", "foo.com"), ""));
        Assert.Null(Find(Build("foo.com", "*.bar.com"), ""));
    }

    [Fact]
    public void Find_NullHost_FindsOnlyTheSoleStarHost()
    {
        Assert.Null(Find(Build("*", "foo.com"), null));
        Assert.Equal("*", Find(Build("*"), null));
        Assert.Null(Find(Build("foo.com"), null));
        Assert.Null(VirtualHostTable<Vh>.Empty.Find("foo.com"));
    }

    [Fact]
    public void Builder_DuplicateDomainAcrossVirtualHosts_ReportsEnvoysMessage()
    {
        var builder = new VirtualHostTable<Vh>.Builder("my-routes")
            .Add(new Vh("a"), ["Foo.com", "*.x.com"])
            .Add(new Vh("b"), ["foo.com", "*.X.com"]);

        Assert.False(builder.TryBuild(out VirtualHostTable<Vh>? table, out IReadOnlyList<string> errors));
        Assert.Null(table);
        Assert.Equal(
            [
                "Only unique values for domains are permitted. Duplicate entry of domain foo.com in route my-routes",
                "Only unique values for domains are permitted. Duplicate entry of domain *.x.com in route my-routes",
            ],
            errors);
    }

    [Fact]
    public void Builder_SecondStarDomain_ReportsEnvoysMessage()
    {
        var builder = new VirtualHostTable<Vh>.Builder("rc").Add(new Vh("a"), ["*"]).Add(new Vh("b"), ["*"]);

        Assert.False(builder.TryBuild(out _, out IReadOnlyList<string> errors));
        Assert.Equal(["Only a single wildcard domain is permitted in route rc"], errors);
    }

    [Theory]
    [InlineData("foo.*.com", "first or last")]
    [InlineData("*.foo.*", "only one wildcard")]
    [InlineData("**", "only one wildcard")]
    public void Builder_InvalidWildcard_IsReportedWithVirtualHostName(string domain, string reason)
    {
        var builder = new VirtualHostTable<Vh>.Builder("rc").Add(new Vh("a"), [domain], "backend");

        Assert.False(builder.TryBuild(out _, out IReadOnlyList<string> errors));
        string error = Assert.Single(errors);
        Assert.Contains($"'{domain}'", error);
        Assert.Contains("'backend'", error);
        Assert.Contains(reason, error);
        Assert.Throws<InvalidOperationException>(() => builder.Build());
    }

    [Fact]
    public void Find_TenThousandWildcards_ResolvesCorrectlyWithoutLinearScan()
    {
        var builder = new VirtualHostTable<Vh>.Builder("rc");
        for (int i = 0; i < 10_000; i++)
        {
            builder.Add(new Vh("s" + i), [$"*.svc{i}.example.com"]);
            builder.Add(new Vh("p" + i), [$"tenant{i}.*"]);
        }

        VirtualHostTable<Vh> table = builder.Build();
        Assert.Equal("s1234", Find(table, "a.svc1234.example.com"));
        Assert.Equal("p9999", Find(table, "tenant9999.example.org"));
        Assert.Null(Find(table, "nothing.example.net"));

        // A linear scan would do ~2e9 comparisons here; hashing by length does a few lookups each.
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100_000; i++)
        {
            table.Find("a.svc9000.example.com");
            table.Find("tenant5000.example.org");
        }

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
    }
}
