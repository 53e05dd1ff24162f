using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.Route;

/// <summary>
/// Picks the virtual host for a Host/:authority value with Envoy's rules: lower-case comparison;
/// exact domains, then suffix wildcards (<c>*.foo.com</c>), then prefix wildcards (<c>foo.*</c>),
/// longest wildcard first, then <c>*</c>. A wildcard never matches an empty string.
/// </summary>
/// <remarks>
/// Wildcards are grouped by the length of their fixed part, each group a dictionary. A lookup
/// tries only the lengths that exist, longest first, slicing the host to that length, so the
/// cost depends on the number of distinct lengths, not on the number of domains.
/// </remarks>
internal sealed class VirtualHostTable<TVirtualHost>
    where TVirtualHost : class
{
    // Hosts longer than this are lower-cased into a pooled buffer instead of the stack.
    private const int StackBufferLength = 256;

    private readonly Dictionary<string, TVirtualHost>.AlternateLookup<ReadOnlySpan<char>> _exact;
    private readonly WildcardGroup[] _suffixes;
    private readonly WildcardGroup[] _prefixes;
    private readonly bool _onlyDefault;

    private VirtualHostTable(
        Dictionary<string, TVirtualHost> exact,
        WildcardGroup[] suffixes,
        WildcardGroup[] prefixes,
        TVirtualHost? defaultVirtualHost,
        bool ignorePortInHostMatching)
    {
        _exact = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _suffixes = suffixes;
        _prefixes = prefixes;
        DefaultVirtualHost = defaultVirtualHost;
        IgnorePortInHostMatching = ignorePortInHostMatching;
        _onlyDefault = exact.Count == 0 && suffixes.Length == 0 && prefixes.Length == 0;
    }

    /// <summary>A table with no virtual hosts: every lookup returns null.</summary>
    public static VirtualHostTable<TVirtualHost> Empty { get; } = new(new(StringComparer.Ordinal), [], [], null, false);

    /// <summary>The virtual host owning the <c>*</c> domain, if any.</summary>
    public TVirtualHost? DefaultVirtualHost { get; }

    /// <summary>RouteConfiguration.ignore_port_in_host_matching: strip ":port" from the host before matching.</summary>
    public bool IgnorePortInHostMatching { get; }

    /// <summary>
    /// The virtual host for <paramref name="host"/>, or null (Envoy answers 404). A null host
    /// (no authority) finds nothing, except when the only domain configured is <c>*</c>.
    /// </summary>
    public TVirtualHost? Find(string? host)
    {
        if (_onlyDefault)
        {
            return DefaultVirtualHost;
        }

        if (host is null)
        {
            return null;
        }

        scoped ReadOnlySpan<char> h = host;
        if (IgnorePortInHostMatching)
        {
            int portStart = HostHeader.PortStart(h);
            if (portStart >= 0)
            {
                h = h[..portStart];
            }
        }

        if (!AsciiText.HasUpper(h))
        {
            return Lookup(h);
        }

        char[]? rented = null;
        Span<char> lower = h.Length <= StackBufferLength
            ? stackalloc char[StackBufferLength]
            : (rented = ArrayPool<char>.Shared.Rent(h.Length));
        lower = lower[..h.Length];
        AsciiText.ToLower(h, lower);
        TVirtualHost? result = Lookup(lower);
        if (rented is not null)
        {
            ArrayPool<char>.Shared.Return(rented);
        }

        return result;
    }

    private TVirtualHost? Lookup(ReadOnlySpan<char> host)
    {
        if (_exact.TryGetValue(host, out TVirtualHost? vh))
        {
            return vh;
        }

        // Groups are sorted longest first; a group as long as the host would need '*' to match "".
        foreach (WildcardGroup g in _suffixes)
        {
            if (g.Length < host.Length && g.Lookup.TryGetValue(host[^g.Length..], out vh))
            {
                return vh;
            }
        }

        foreach (WildcardGroup g in _prefixes)
        {
            if (g.Length < host.Length && g.Lookup.TryGetValue(host[..g.Length], out vh))
            {
                return vh;
            }
        }

        return DefaultVirtualHost;
    }

    private readonly struct WildcardGroup(int length, Dictionary<string, TVirtualHost> map)
    {
        public int Length { get; } = length;

        public Dictionary<string, TVirtualHost>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; } =
            map.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>
    /// Collects virtual hosts and their domains, reporting every configuration error rather than
    /// stopping at the first.
    /// </summary>
    public sealed class Builder(string routeConfigurationName, bool ignorePortInHostMatching = false)
    {
        private readonly Dictionary<string, TVirtualHost> _exact = new(StringComparer.Ordinal);
        private readonly Dictionary<int, Dictionary<string, TVirtualHost>> _suffixes = new();
        private readonly Dictionary<int, Dictionary<string, TVirtualHost>> _prefixes = new();
        private readonly List<string> _errors = new();
        private TVirtualHost? _default;

        public IReadOnlyList<string> Errors => _errors;

        /// <param name="virtualHostName">Used only in error messages.</param>
        public Builder Add(TVirtualHost virtualHost, IEnumerable<string> domains, string? virtualHostName = null)
        {
            ArgumentNullException.ThrowIfNull(virtualHost);
            ArgumentNullException.ThrowIfNull(domains);
            foreach (string rawDomain in domains)
            {
                AddDomain(virtualHost, AsciiText.ToLower(rawDomain ?? ""), virtualHostName);
            }

            return this;
        }

        public bool TryBuild(
            [NotNullWhen(true)] out VirtualHostTable<TVirtualHost>? table,
            out IReadOnlyList<string> errors)
        {
            errors = _errors.ToArray();
            if (_errors.Count > 0)
            {
                table = null;
                return false;
            }

            table = new VirtualHostTable<TVirtualHost>(
                new Dictionary<string, TVirtualHost>(_exact, StringComparer.Ordinal),
                ToGroups(_suffixes),
                ToGroups(_prefixes),
                _default,
                ignorePortInHostMatching);
            return true;
        }

        /// <exception cref="InvalidOperationException">With all errors, one per line.</exception>
        public VirtualHostTable<TVirtualHost> Build() =>
            TryBuild(out VirtualHostTable<TVirtualHost>? table, out IReadOnlyList<string> errors)
                ? table
                : throw new InvalidOperationException(string.Join(Environment.NewLine, errors));

        private void AddDomain(TVirtualHost virtualHost, string domain, string? virtualHostName)
        {
            if (domain == "*")
            {
                if (_default is not null)
                {
                    _errors.Add($"Only a single wildcard domain is permitted in route {routeConfigurationName}");
                    return;
                }

                _default = virtualHost;
                return;
            }

            int star = domain.IndexOf('*');
            bool added;
            if (star < 0)
            {
                added = _exact.TryAdd(domain, virtualHost);
            }
            else if (domain.IndexOf('*', star + 1) >= 0)
            {
                _errors.Add($"invalid domain '{domain}'{In(virtualHostName)}: only one wildcard '*' is allowed");
                return;
            }
            else if (star == 0)
            {
                added = Group(_suffixes, domain.Length - 1).TryAdd(domain[1..], virtualHost);
            }
            else if (star == domain.Length - 1)
            {
                added = Group(_prefixes, domain.Length - 1).TryAdd(domain[..^1], virtualHost);
            }
            else
            {
                _errors.Add($"invalid domain '{domain}'{In(virtualHostName)}: the wildcard '*' must be the first or last character (e.g. '*.foo.com' or 'foo.*')");
                return;
            }

            if (!added)
            {
                // Envoy's wording, so existing runbooks and searches still apply.
                _errors.Add($"Only unique values for domains are permitted. Duplicate entry of domain {domain} in route {routeConfigurationName}");
            }
        }

        private static string In(string? virtualHostName) =>
            virtualHostName is null ? "" : $" in virtual host '{virtualHostName}'";

        private static Dictionary<string, TVirtualHost> Group(Dictionary<int, Dictionary<string, TVirtualHost>> groups, int length)
        {
            if (!groups.TryGetValue(length, out Dictionary<string, TVirtualHost>? map))
            {
                map = new Dictionary<string, TVirtualHost>(StringComparer.Ordinal);
                groups.Add(length, map);
            }

            return map;
        }

        private static WildcardGroup[] ToGroups(Dictionary<int, Dictionary<string, TVirtualHost>> groups)
        {
            var result = new WildcardGroup[groups.Count];
            int i = 0;
            foreach ((int length, Dictionary<string, TVirtualHost> map) in groups)
            {
                result[i++] = new WildcardGroup(length, new Dictionary<string, TVirtualHost>(map, StringComparer.Ordinal));
            }

            // Longest wildcard wins.
            Array.Sort(result, static (a, b) => b.Length.CompareTo(a.Length));
            return result;
        }
    }
}

/// <summary>The Host/:authority value's parts, by Envoy's rules.</summary>
internal static class HostHeader
{
    /// <summary>
    /// Index of the ':' that starts the port, or -1. A colon inside an IPv6 literal ("[::1]") is not
    /// a port separator. Same rule as Envoy's HeaderUtility::getPortStart.
    /// </summary>
    public static int PortStart(ReadOnlySpan<char> host)
    {
        int colon = host.LastIndexOf(':');
        if (colon < 0)
        {
            return -1;
        }

        int v6End = host.LastIndexOf(']');
        return v6End < colon ? colon : -1;
    }
}
