namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's MAGLEV. Hosts, sorted by key, take turns filling a prime-sized table from their own permutation
/// (offset = xxHash64(key) mod M, skip = xxHash64(key, seed 1) mod (M - 1) + 1); a host of weight w takes a turn in
/// w / max_weight of the rounds. A pick is table[hash mod M]; without a hash it is random, as in Envoy.
/// </summary>
internal sealed class MaglevLoadBalancer : HostsSourceTableBalancer<MaglevLoadBalancer.Table>
{
    public const ulong DefaultTableSize = 65537;
    public const ulong MaxTableSize = 5000011;

    internal sealed class Table(Host[] entries)
    {
        public readonly Host[] Entries = entries;
    }

    private readonly LbRandom _random;
    private readonly ulong _tableSize;
    private readonly bool _useHostname;

    public MaglevLoadBalancer(LbRandom random, ulong tableSize = DefaultTableSize, bool useHostnameForHashing = false)
    {
        if (!IsPrime(tableSize)) throw new ArgumentException("The table size of maglev must be prime number");
        _random = random;
        _tableSize = tableSize;
        _useHostname = useHostnameForHashing;
    }

    public override bool UsesHash => true;

    public override Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context)
    {
        var entries = TableFor(hosts).Entries;
        if (entries.Length == 0) return null;
        var h = context.HasHash ? context.Hash : _random.Next();
        return entries[(int)(h % (ulong)entries.Length)];
    }

    private struct BuildEntry
    {
        public Host Host;
        public ulong Offset;
        public ulong Skip;
        public double Weight;
        public double TargetWeight;
        public ulong Next;
    }

    protected override Table Build(Host[] hosts)
    {
        if (hosts.Length == 0) return new Table(Array.Empty<Host>());
        var m = _tableSize;
        // Envoy fills in the order of the sorted keys so the table does not depend on the order hosts arrive in.
        var keys = new string[hosts.Length];
        var sorted = (Host[])hosts.Clone();
        for (var i = 0; i < sorted.Length; i++) keys[i] = HashKeys.Key(sorted[i], _useHostname);
        Array.Sort(keys, sorted, StringComparer.Ordinal);

        ulong sum = 0;
        foreach (var h in hosts) sum += h.Weight;
        var maxNormalized = 0.0;
        var entries = new BuildEntry[sorted.Length];
        var buffer = new byte[256];
        for (var i = 0; i < sorted.Length; i++)
        {
            var n = HashKeys.Encode(sorted[i], _useHostname, ref buffer, extra: 0);
            var key = buffer.AsSpan(0, n);
            var weight = (double)sorted[i].Weight / sum;
            maxNormalized = Math.Max(maxNormalized, weight);
            entries[i] = new BuildEntry
            {
                Host = sorted[i],
                Offset = XxHash64.Hash(key) % m,
                Skip = XxHash64.Hash(key, 1) % (m - 1) + 1,
                Weight = weight,
            };
        }

        var table = new Host?[m];
        ulong filled = 0;
        for (ulong iteration = 1; filled < m; iteration++)
        {
            for (var i = 0; i < entries.Length && filled < m; i++)
            {
                ref var e = ref entries[i];
                // A host at the maximum weight takes every round; one at a third of it every third round.
                if (iteration * e.Weight < e.TargetWeight) continue;
                e.TargetWeight += maxNormalized;
                var c = (e.Offset + e.Skip * e.Next) % m;
                while (table[c] is not null)
                {
                    e.Next++;
                    c = (e.Offset + e.Skip * e.Next) % m;
                }
                table[c] = e.Host;
                e.Next++;
                filled++;
            }
        }
        return new Table(table!);
    }

    public static bool IsPrime(ulong n)
    {
        if (n < 2) return false;
        if (n % 2 == 0) return n == 2;
        for (ulong d = 3; d * d <= n; d += 2)
            if (n % d == 0) return false;
        return true;
    }
}
