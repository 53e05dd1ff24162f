using CSharpEnvoy.DataPlane.Upstream;
using LbHost = CSharpEnvoy.DataPlane.Upstream.Host;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using static CSharpEnvoy.IntegrationTests.LoadBalancing.LbTestHosts;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>Ring hash and maglev: stable key → host mapping, even spread, weights, minimal disruption.</summary>
public sealed class ConsistentHashingTests
{
    private const int Keys = 10_000;

    public static TheoryData<string> Kinds => new() { "ring_hash", "maglev" };

    private static ILoadBalancer Create(string kind) =>
        kind == "ring_hash" ? new RingHashLoadBalancer(LbRandom.Seeded(7)) : new MaglevLoadBalancer(LbRandom.Seeded(7));

    private static ulong Key(int i) => XxHash64.HashUtf8("user-" + i);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SameKey_MapsToSameHost(string kind)
    {
        var set = Set(10);
        var lb = Create(kind);
        var other = Create(kind); // a second proxy with the same hosts agrees
        for (var i = 0; i < 500; i++)
        {
            var h = lb.ChooseHost(set, new LoadBalancerContext(Key(i)));
            Assert.Same(h, lb.ChooseHost(set, new LoadBalancerContext(Key(i))));
            Assert.Same(h, other.ChooseHost(set, new LoadBalancerContext(Key(i))));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Keys_SpreadEvenly(string kind)
    {
        var set = Set(10);
        var lb = Create(kind);
        var counts = Count(() => null, 0);
        for (var i = 0; i < Keys; i++)
        {
            var h = lb.ChooseHost(set, new LoadBalancerContext(Key(i)))!;
            counts[h] = counts.GetValueOrDefault(h) + 1;
        }
        // 10 % each; a 1024-entry ring has some imbalance, so ± 4 points (maglev is much tighter).
        Assert.All(set.Hosts, h => Assert.InRange(100.0 * counts[h] / Keys, 6.0, 14.0));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Weights_ScaleShares(string kind)
    {
        var set = Set(4, i => i == 0 ? 4u : 1u); // host 0 should get 4/7 = 57 %
        var lb = Create(kind);
        var onHeavy = 0;
        for (var i = 0; i < Keys; i++)
            if (lb.ChooseHost(set, new LoadBalancerContext(Key(i))) == set.Hosts[0]) onHeavy++;
        Assert.InRange(100.0 * onHeavy / Keys, 50.0, 64.0);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RemovingOneHost_MovesAboutOneNthOfKeys(string kind)
    {
        var before = Set(10);
        var after = new HostsSource(before.Hosts.Where((_, i) => i != 3).ToArray());
        var lb = Create(kind);
        // Pick every key on one host set, then on the other: the table is cached per host set.
        var picksBefore = new LbHost?[Keys];
        for (var i = 0; i < Keys; i++) picksBefore[i] = lb.ChooseHost(before, new LoadBalancerContext(Key(i)));
        var moved = 0;
        var movedFromSurvivors = 0;
        for (var i = 0; i < Keys; i++)
        {
            var b = lb.ChooseHost(after, new LoadBalancerContext(Key(i)));
            Assert.NotSame(before.Hosts[3], b);
            if (picksBefore[i] == b) continue;
            moved++;
            if (picksBefore[i] != before.Hosts[3]) movedFromSurvivors++;
        }
        if (kind == "maglev")
        {
            // Maglev: the removed host's ~1/10 of the keys, plus a little near-minimal disruption.
            Assert.InRange(100.0 * moved / Keys, 6.0, 15.0);
            Assert.InRange(100.0 * movedFromSurvivors / Keys, 0.0, 3.0);
        }
        else
        {
            // Envoy's ring keeps its size (minimum_ring_size), so the 9 survivors get more replicas each and those new
            // entries take about another 1/N of the keys: ~2/N in all, never the whole key space.
            Assert.InRange(100.0 * moved / Keys, 10.0, 25.0);
            Assert.InRange(100.0 * movedFromSurvivors / Keys, 3.0, 13.0);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void NoHash_PicksRandomly(string kind)
    {
        var set = Set(4);
        var lb = Create(kind);
        var counts = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Keys);
        Assert.Equal(4, counts.Count);
        Assert.All(set.Hosts, h => Assert.InRange(100.0 * counts[h] / Keys, 15.0, 35.0));
    }

    [Fact]
    public void RingHash_RingSize_FollowsEnvoysScaling()
    {
        // 3 equal hosts, minimum 1024: the lightest host gets ceil(1024 / 3) = 342 entries → 1026.
        var lb = new RingHashLoadBalancer(LbRandom.Seeded(1));
        Assert.Equal(1026, lb.TableFor(Set(3)).Hashes.Length);
        // The maximum caps it.
        var small = new RingHashLoadBalancer(LbRandom.Seeded(1), minimumRingSize: 16, maximumRingSize: 16);
        Assert.Equal(16, small.TableFor(Set(5)).Hashes.Length);
        // Sorted, for binary search.
        var ring = lb.TableFor(Set(3)).Hashes;
        for (var i = 1; i < ring.Length; i++) Assert.True(ring[i - 1] <= ring[i]);
    }

    [Fact]
    public void RingHash_EntriesHashAddressUnderscoreIndex()
    {
        // Envoy hashes "<address>_<i>" for replica i; the one-host ring holds exactly those hashes.
        var lb = new RingHashLoadBalancer(LbRandom.Seeded(1), minimumRingSize: 4, maximumRingSize: 4);
        var ring = lb.TableFor(Set(1)).Hashes;
        var expected = Enumerable.Range(0, 4).Select(i => XxHash64.HashUtf8($"10.0.0.0:8080_{i}")).Order().ToArray();
        Assert.Equal(expected, ring);
    }

    [Fact]
    public void Maglev_TableIsFull_AndSharesAreEven()
    {
        var lb = new MaglevLoadBalancer(LbRandom.Seeded(1), tableSize: 65537);
        var set = Set(7);
        var table = lb.TableFor(set).Entries;
        Assert.Equal(65537, table.Length);
        Assert.All(table, Assert.NotNull);
        foreach (var h in set.Hosts)
        {
            var n = table.Count(x => x == h);
            Assert.InRange(n, 65537 / 7 - 2, 65537 / 7 + 2); // maglev gives each host M/N entries, ± 1
        }
    }

    [Fact]
    public void Maglev_TableSize_MustBePrime()
    {
        var e = Assert.Throws<ArgumentException>(() => new MaglevLoadBalancer(LbRandom.Seeded(1), tableSize: 65536));
        Assert.Contains("prime", e.Message);
    }
}
