using System.Text;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's RING_HASH (ketama). Each host gets a share of the ring proportional to its normalized weight, scaled so
/// the lightest host has a whole number of entries and the ring has at least <c>minimum_ring_size</c> (at most
/// <c>maximum_ring_size</c>) entries; entry <c>i</c> of a host hashes "&lt;address&gt;_&lt;i&gt;" with xxHash64. A pick takes
/// the first entry at or after the request hash, wrapping around. Without a hash the pick is random, as in Envoy.
/// </summary>
internal sealed class RingHashLoadBalancer : HostsSourceTableBalancer<RingHashLoadBalancer.Ring>
{
    public const ulong DefaultMinimumRingSize = 1024;
    public const ulong DefaultMaximumRingSize = 8 * 1024 * 1024;

    internal sealed class Ring(ulong[] hashes, Host[] hosts)
    {
        public readonly ulong[] Hashes = hashes;
        public readonly Host[] Hosts = hosts;
    }

    private readonly LbRandom _random;
    private readonly ulong _minRingSize;
    private readonly ulong _maxRingSize;
    private readonly bool _useHostname;

    public RingHashLoadBalancer(LbRandom random, ulong minimumRingSize = DefaultMinimumRingSize,
        ulong maximumRingSize = DefaultMaximumRingSize, bool useHostnameForHashing = false)
    {
        if (minimumRingSize > maximumRingSize)
            throw new ArgumentException($"ring hash: minimum_ring_size ({minimumRingSize}) > maximum_ring_size ({maximumRingSize})");
        _random = random;
        _minRingSize = minimumRingSize;
        _maxRingSize = maximumRingSize;
        _useHostname = useHostnameForHashing;
    }

    public override bool UsesHash => true;

    public override Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context)
    {
        var ring = TableFor(hosts);
        var hashes = ring.Hashes;
        if (hashes.Length == 0) return null;
        var h = context.HasHash ? context.Hash : _random.Next();
        // Lower bound: the first entry whose hash is >= h; past the end wraps to the first (ketama).
        var lo = 0;
        var len = hashes.Length;
        while (len > 0)
        {
            var half = len >> 1;
            if (hashes[lo + half] < h)
            {
                lo += half + 1;
                len -= half + 1;
            }
            else
            {
                len = half;
            }
        }
        return ring.Hosts[lo == hashes.Length ? 0 : lo];
    }

    protected override Ring Build(Host[] hosts)
    {
        if (hosts.Length == 0) return new Ring(Array.Empty<ulong>(), Array.Empty<Host>());
        ulong sum = 0;
        foreach (var h in hosts) sum += h.Weight;
        var minNormalized = 1.0;
        foreach (var h in hosts) minNormalized = Math.Min(minNormalized, (double)h.Weight / sum);

        // Envoy: scale so the least-weighted host gets a whole number of entries, capped at the maximum ring size.
        var scale = Math.Min(Math.Ceiling(minNormalized * _minRingSize) / minNormalized, _maxRingSize);
        var ringSize = (int)Math.Ceiling(scale);
        var hashes = new List<ulong>(ringSize);
        var owners = new List<Host>(ringSize);
        var key = new byte[512];
        var current = 0.0;
        var target = 0.0;
        foreach (var host in hosts)
        {
            var prefix = HashKeys.Encode(host, _useHostname, ref key, extra: 21);
            key[prefix++] = (byte)'_';
            target += scale * host.Weight / sum;
            for (ulong i = 0; current < target; i++, current++)
            {
                i.TryFormat(key.AsSpan(prefix), out var digits, default, System.Globalization.CultureInfo.InvariantCulture);
                hashes.Add(XxHash64.Hash(key.AsSpan(0, prefix + digits)));
                owners.Add(host);
            }
        }
        var hashArray = hashes.ToArray();
        var hostArray = owners.ToArray();
        Array.Sort(hashArray, hostArray);
        return new Ring(hashArray, hostArray);
    }
}

/// <summary>The string Envoy hashes for a host: its address ("10.0.0.1:80", "[::1]:80") or, with
/// <c>use_hostname_for_hashing</c>, its hostname.</summary>
internal static class HashKeys
{
    public static string Key(Host host, bool useHostname) =>
        useHostname && !string.IsNullOrEmpty(host.Hostname) ? host.Hostname : host.Address.ToString();

    /// <summary>Writes the key's UTF-8 bytes at the start of <paramref name="buffer"/> (grown to leave
    /// <paramref name="extra"/> bytes free) and returns their count.</summary>
    public static int Encode(Host host, bool useHostname, ref byte[] buffer, int extra)
    {
        var key = Key(host, useHostname);
        var need = Encoding.UTF8.GetByteCount(key) + extra;
        if (buffer.Length < need) buffer = new byte[need];
        return Encoding.UTF8.GetBytes(key, buffer);
    }
}
