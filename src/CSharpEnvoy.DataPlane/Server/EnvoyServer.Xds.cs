using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Xds;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Server;

/// <summary>The server's side of xDS: the xDS manager (ADS, per-type streams, watched files), and starting/stopping listeners for LDS.</summary>
internal sealed partial class EnvoyServer
{
    private XdsManager? _xds;
    private readonly object _listenersWrite = new();

    /// <summary>The xDS manager when the bootstrap has dynamic_resources.</summary>
    internal XdsManager? Xds => _xds;

    /// <summary>Creates and starts the xDS manager when the bootstrap needs one; the caller waits for its first
    /// CDS/LDS answers once the static listeners are up.</summary>
    private void StartXds(RouterFilter router)
    {
        var config = Bootstrap.Xds;
        if (config is null)
        {
            // Static EDS clusters, RDS listeners and SDS secrets can still come from files or per-type streams.
            var usesSources = Bootstrap.Clusters.Any(c => c.EdsConfig is not null) ||
                Bootstrap.Listeners.Any(l => l.FilterChains.Any(fc => fc.HttpConnectionManager?.RdsConfig is not null)) ||
                Secrets.UsesGrpc;
            if (!usesSources) return;
            config = new Config.Model.Xds.XdsModel(null, null, null);
        }
        var node = Bootstrap.Source.Node?.Clone() ?? new Envoy.Config.Core.V3.Node();
        node.Id = Bootstrap.Node.Id;
        node.Cluster = Bootstrap.Node.Cluster;
        if (Bootstrap.Node.Locality is { } loc && (loc.Region.Length > 0 || loc.Zone.Length > 0 || loc.SubZone.Length > 0))
            node.Locality = new Envoy.Config.Core.V3.Locality { Region = loc.Region, Zone = loc.Zone, SubZone = loc.SubZone };
        node.UserAgentName = "csenvoy";
        node.UserAgentVersion = Version;
        node.ClientFeatures.Clear();
        node.ClientFeatures.Add("envoy.lb.does_not_support_overprovisioning");
        node.ClientFeatures.Add("xds.config.resource-in-sotw");

        var logger = _loggers.CreateLogger("xds");
        _xds = new XdsManager(config, node, ClusterManager, new Runtime(this, router), Bootstrap.Clusters.Select(c => c.Name),
            Bootstrap.Listeners.Select(l => l.Name), Stats, logger, Secrets);
        _xds.Start();
    }

    private async Task StopXdsAsync()
    {
        if (_xds is { } x)
        {
            _xds = null;
            await x.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void AddListener(ListenerHost host)
    {
        lock (_listenersWrite) _listeners = new List<ListenerHost>(_listeners) { host };
    }

    private void RemoveListenerHost(ListenerHost host)
    {
        lock (_listenersWrite)
        {
            var next = new List<ListenerHost>(_listeners);
            next.Remove(host);
            _listeners = next;
        }
    }

    private sealed class Runtime(EnvoyServer server, RouterFilter router) : IListenerRuntime
    {
        public HttpConnectionManager CreateConnectionManager(HttpConnectionManagerModel model) =>
            new(model, server.Stats, router, server.AccessLogs, server.Tracers, server.Health, server.Bootstrap.Node);

        public async Task<ListenerHost> StartListenerAsync(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, ListenSocket? socket, CancellationToken ct)
        {
            var host = new ListenerHost(model, hcms, server.Stats, server._services, server._loggers, server.ClusterManager, server.AccessLogs);
            await host.StartAsync(ct, socket).ConfigureAwait(false);
            server.AddListener(host);
            server._logger.LogInformation("LDS listener '{Name}' on {Address}", model.Name, host.BoundAddress);
            return host;
        }

        public void RemoveListener(ListenerHost host) => server.RemoveListenerHost(host);

        public IReadOnlyList<ListenerHost> Listeners => server._listeners;

        public TimeSpan DrainTime => server.Options.DrainTime;

        public DrainSequence StartDrain() => server.StartDrain();
    }
}
