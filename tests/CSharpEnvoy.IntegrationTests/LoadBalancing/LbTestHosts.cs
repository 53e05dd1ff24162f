using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Upstream;
using LbHost = CSharpEnvoy.DataPlane.Upstream.Host;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

internal static class LbTestHosts
{
    public static LbHost Make(int i, uint weight = 1, LocalityModel? locality = null, uint priority = 0, uint localityWeight = 0) =>
        new(new SocketAddressModel($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 8080), null, locality ?? LocalityModel.Empty, "c", false, weight,
            priority, localityWeight);

    public static HostsSource Set(int count, Func<int, uint>? weight = null)
    {
        var hosts = new LbHost[count];
        for (var i = 0; i < count; i++) hosts[i] = Make(i, weight?.Invoke(i) ?? 1);
        return new HostsSource(hosts);
    }

    public static Dictionary<LbHost, int> Count(Func<LbHost?> pick, int picks)
    {
        var counts = new Dictionary<LbHost, int>();
        for (var i = 0; i < picks; i++)
        {
            var h = pick()!;
            counts[h] = counts.GetValueOrDefault(h) + 1;
        }
        return counts;
    }
}
