using System.Runtime.CompilerServices;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>What a pick knows about its request: the route hash policy's 64-bit hash, when one produced a value.</summary>
internal readonly struct LoadBalancerContext
{
    public LoadBalancerContext(ulong hash)
    {
        Hash = hash;
        HasHash = true;
    }

    public ulong Hash { get; }
    public bool HasHash { get; }

    public static LoadBalancerContext None => default;
}

/// <summary>
/// A cluster's load balancer. Picks run concurrently on every request thread: they must not lock or allocate.
/// Anything expensive is precomputed per <see cref="HostsSource"/> (immutable, swapped whole on any change).
/// </summary>
internal interface ILoadBalancer
{
    Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context);

    /// <summary>Builds the tables for a new host set off the request path (called when the cluster swaps it).</summary>
    void Prepare(HostsSource hosts);

    /// <summary>True for ring hash and maglev: only they consume the route's hash policy (Envoy computes the hash
    /// lazily, so a cookie is generated only for a hashing balancer).</summary>
    bool UsesHash { get; }
}

/// <summary>
/// The random source balancers draw from. Injected so tests are deterministic; production uses
/// <see cref="Shared"/>, a per-thread SplitMix64 (no contention, no locks).
/// </summary>
internal abstract class LbRandom
{
    public static LbRandom Shared { get; } = new PerThread();

    public abstract ulong Next();

    /// <summary>A deterministic sequence; safe to share between threads (interlocked), ordered only on one thread.</summary>
    public static LbRandom Seeded(ulong seed) => new SeededSource(seed);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    private sealed class PerThread : LbRandom
    {
        [ThreadStatic] private static ulong t_state;
        [ThreadStatic] private static bool t_seeded;

        public override ulong Next()
        {
            if (!t_seeded)
            {
                t_state = (ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.NextInt64() << 1);
                t_seeded = true;
            }
            t_state += Gamma;
            return Mix(t_state);
        }
    }

    private sealed class SeededSource(ulong seed) : LbRandom
    {
        private long _state = (long)seed;

        public override ulong Next() => Mix((ulong)Interlocked.Add(ref _state, unchecked((long)Gamma)));
    }
}

/// <summary>
/// A balancer whose per-pick work reads an immutable table derived from a <see cref="HostsSource"/>. The table is
/// stored on the source itself (one slot, tagged with the balancer that built it), so every source of a priority set
/// (per priority, per locality, healthy or degraded) keeps its own table, a membership change rebuilds each once, and
/// a pick reads it with a single volatile load.
/// </summary>
internal abstract class HostsSourceTableBalancer<TTable> : ILoadBalancer where TTable : class
{
    public abstract Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context);

    public virtual bool UsesHash => false;

    public void Prepare(HostsSource hosts) => TableFor(hosts);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal TTable TableFor(HostsSource hosts)
    {
        var s = hosts.LbTable;
        return s is not null && ReferenceEquals(s.Owner, this) ? (TTable)s.Table : Rebuild(hosts);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private TTable Rebuild(HostsSource hosts)
    {
        // Two threads may race to build the same table; both results are equal, the last store wins.
        var table = Build(hosts.Hosts);
        hosts.LbTable = new HostsSource.TableSlot(this, table);
        return table;
    }

    protected abstract TTable Build(Host[] hosts);

    protected static bool WeightsEqual(Host[] hosts)
    {
        for (var i = 1; i < hosts.Length; i++)
            if (hosts[i].Weight != hosts[0].Weight) return false;
        return true;
    }
}
