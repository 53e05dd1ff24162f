using System.Diagnostics;
using CSharpEnvoy.Config.Model.Bootstrap;
using CSharpEnvoy.DataPlane.Admin;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Tls;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Server;

/// <summary>The command line as the server reports it in /server_info.</summary>
internal sealed record ServerOptions
{
    public string? ConfigPath { get; init; }
    public string? ConfigYaml { get; init; }
    public string LogLevel { get; init; } = "info";
    public TimeSpan DrainTime { get; init; } = TimeSpan.FromSeconds(600);
    /// <summary>Envoy's <c>--component-log-level</c>: logger name and level pairs applied over <see cref="LogLevel"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ComponentLogLevels { get; init; } = [];
    /// <summary>Envoy's <c>--drain-strategy</c> (default gradual).</summary>
    public Listener.DrainStrategy DrainStrategy { get; init; } = Listener.DrainStrategy.Gradual;
    /// <summary>Envoy's <c>--log-format</c>, <c>--log-format-escaped</c> and <c>--log-path</c>, as given (the host
    /// applies them; <c>/server_info</c> reports them).</summary>
    public string? LogFormat { get; init; }
    public bool LogFormatEscaped { get; init; }
    public string? LogPath { get; init; }
    public string? ServiceNode { get; init; }
    public string? ServiceCluster { get; init; }
    public string? ServiceZone { get; init; }
    public string Mode { get; init; } = "serve";
    /// <summary>The clock for health checking and outlier detection intervals (tests pass a manual one).</summary>
    internal TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>The random source for jitter and enforcement percentages (tests pass a seeded one).</summary>
    internal Upstream.LoadBalancing.LbRandom? Random { get; init; }
}

internal enum ServerState { Live = 0, Draining = 1, PreInitializing = 2, Initializing = 3 }

/// <summary>
/// The running proxy: cluster manager, listeners and admin built from one validated bootstrap. Every request path
/// object is created here, once; requests only read them.
/// </summary>
internal sealed partial class EnvoyServer : IAsyncDisposable
{
    public static readonly string Version = typeof(EnvoyServer).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    private readonly ServiceProvider _services;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    // Copy-on-write once started: xDS replaces the list whole (EnvoyServer.Xds.cs); readers iterate a snapshot.
    private volatile List<ListenerHost> _listeners = new();
    private AdminServer? _admin;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly List<Stats.Sinks.StatsdSink> _statsSinks = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal EnvoyServer(BootstrapModel bootstrap, ServerOptions options, ILoggerFactory loggers)
    {
        Bootstrap = bootstrap;
        Options = options;
        // -l and --component-log-level take spdlog's "warn" as well as Envoy's "warning".
        static LogLevel CommandLineLevel(string name) => LogLevels.TryParse(name == "warn" ? "warning" : name, out var level) ? level : LogLevel.Information;
        LogLevels = new LogLevels(CommandLineLevel(options.LogLevel));
        foreach (var (component, name) in options.ComponentLogLevels)
            LogLevels.TrySet(component, CommandLineLevel(name));
        loggers = LogLevels.Wrap(loggers);
        _loggers = loggers;
        _logger = loggers.CreateLogger("main");
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddLogging();
        services.AddHttpForwarder();
        services.AddKestrelTlsServices(); // for Kestrel's HTTPS middleware on TLS listeners
        _services = services.BuildServiceProvider();
        Stats = new StatsStore(bootstrap.StatsConfig);
        AccessLogs = new AccessLog.AccessLogManager(Stats);
        ClusterManager = new ClusterManager(Stats, loggers);
        Secrets = new SecretManager(Stats, loggers.CreateLogger("secret"), bootstrap.StaticSecrets);
        ClusterManager.Services = new UpstreamServices(options.TimeProvider, options.Random ?? Upstream.LoadBalancing.LbRandom.Shared)
        {
            LocalLocality = bootstrap.Node.Locality,
            Secrets = Secrets,
        };
        ClusterManager.LocalClusterName = bootstrap.LocalClusterName;
        Tracers = new Tracing.TracerManager(bootstrap.Node, ClusterManager, Stats, loggers.CreateLogger("tracing"), options.TimeProvider);
        Health = new ServerHealth(bootstrap.Node.Cluster);
        StartTime = DateTimeOffset.UtcNow;
        Stats.Gauge("server.concurrency").Set(Event.Dispatcher.Count);
        Stats.Gauge("server.version").Set(0);
    }

    internal BootstrapModel Bootstrap { get; }
    public ServerOptions Options { get; }
    internal StatsStore Stats { get; }
    internal ClusterManager ClusterManager { get; }
    /// <summary>Static and SDS secrets of the listeners' and clusters' TLS contexts.</summary>
    internal SecretManager Secrets { get; }
    /// <summary>Access log destinations, flushed when the server is disposed.</summary>
    internal AccessLog.AccessLogManager AccessLogs { get; }
    /// <summary>Tracing drivers and their span exporters, flushed when the server is disposed.</summary>
    internal Tracing.TracerManager Tracers { get; }
    /// <summary>Admin /healthcheck/fail and /healthcheck/ok; read by the health check filter.</summary>
    internal ServerHealth Health { get; }
    /// <summary>Envoy's logger levels, changed by admin /logging.</summary>
    internal LogLevels LogLevels { get; }

    /// <summary>A drain starting now, with <c>--drain-time-s</c> and <c>--drain-strategy</c>.</summary>
    internal DrainSequence StartDrain() => new(Options.DrainStrategy, Options.DrainTime, Options.TimeProvider);
    internal IReadOnlyList<ListenerHost> Listeners => _listeners;
    private volatile ServerState _state = ServerState.PreInitializing;

    /// <summary>Envoy's <c>serverState</c>: a live server whose health check was failed (admin /healthcheck/fail)
    /// reports DRAINING.</summary>
    public ServerState State
    {
        get => _state == ServerState.Live && Health.HealthCheckFailed ? ServerState.Draining : _state;
        private set => _state = value;
    }
    public DateTimeOffset StartTime { get; }
    public TimeSpan Uptime => _uptime.Elapsed;

    /// <summary>The admin address actually bound (port filled in when the config asked for port 0).</summary>
    public string? AdminAddress => _admin?.BoundAddress?.ToString();

    /// <summary>Bound address of each listener by name (real ports when the config asked for port 0).</summary>
    public IReadOnlyDictionary<string, string> ListenerAddresses
    {
        get
        {
            var d = new Dictionary<string, string>();
            foreach (var l in _listeners) d[l.Model.Name] = l.BoundAddress.ToString();
            return d;
        }
    }

    public Task Stopped => _stopped.Task;

    public async Task StartAsync(CancellationToken ct = default)
    {
        State = ServerState.Initializing;
        Stats.Gauge("server.state").Set((int)ServerState.Initializing);
        if (Bootstrap.AdminAddress is { } adminAddress)
        {
            _admin = new AdminServer(this, adminAddress, _services, _loggers);
            await _admin.StartAsync(ct).ConfigureAwait(false);
        }
        await ClusterManager.InitializeAsync(Bootstrap.Clusters, ct).ConfigureAwait(false);
        foreach (var sink in Bootstrap.StatsSinks)
            _statsSinks.Add(new Stats.Sinks.StatsdSink(Stats, sink, Bootstrap.StatsFlushInterval, _loggers.CreateLogger("stats")));

        var forwarder = _services.GetRequiredService<IHttpForwarder>();
        var router = new RouterFilter(forwarder, ClusterManager);
        try
        {
            // Envoy's init manager: the static listeners' and clusters' SDS secrets arrive (or time out) before the
            // listeners open their ports. The clusters made their providers already; the listeners' are made here.
            foreach (var l in Bootstrap.Listeners)
                foreach (var chain in l.AllFilterChains)
                    if (chain.Tls is { } tls) Secrets.ProvidersOf(tls.Common);
            // Secrets over gRPC need the xDS streams before the listeners; otherwise they start after them, as before.
            var xdsFirst = Secrets.UsesGrpc;
            if (xdsFirst) StartXds(router);
            await Secrets.WaitForInitialAsync(ct).ConfigureAwait(false);
            foreach (var l in Bootstrap.Listeners)
            {
                var hcms = new List<HttpConnectionManager?>();
                foreach (var chain in l.AllFilterChains)
                    hcms.Add(chain.HttpConnectionManager is { } m ? new HttpConnectionManager(m, Stats, router, AccessLogs, Tracers, Health, Bootstrap.Node) : null);
                var host = new ListenerHost(l, hcms, Stats, _services, _loggers, ClusterManager, AccessLogs);
                await host.StartAsync(ct).ConfigureAwait(false);
                AddListener(host);
                _logger.LogInformation("listener '{Name}' on {Address}", l.Name, host.BoundAddress);
            }
            if (!xdsFirst) StartXds(router);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
        if (_xds is not null) await _xds.WaitForInitialAsync(ct).ConfigureAwait(false);
        Stats.Gauge("listener_manager.total_listeners_active").Set(_listeners.Count);
        // Loading the configuration (YAML or JSON trees, protos, validation) leaves garbage several times the size of
        // what it built; one compacting collection before going live gives that memory back to the OS instead of
        // keeping it as the process's resident size.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (IdleMemoryRelease.Enabled) _idleMemoryRelease = new IdleMemoryRelease(TimeProvider.System);
        // Envoy goes LIVE once the first LDS response's listeners have warmed (their RDS routes or secrets, each bounded
        // by its initial_fetch_timeout); until then /ready answers 503 INITIALIZING. The listeners that are ready serve
        // already, and the start does not wait: a warm-up without a bound would otherwise hold the server forever.
        var warmed = _xds?.InitialListenersWarmed ?? Task.CompletedTask;
        if (warmed.IsCompleted) GoLive();
        else _ = warmed.ContinueWith(_ => GoLive(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void GoLive()
    {
        if (_state != ServerState.Initializing) return; // disposed meanwhile
        State = ServerState.Live;
        Stats.Gauge("server.state").Set((int)State);
        Stats.Gauge("server.live").Set(1);
        _logger.LogInformation("all clusters initialized; server live");
    }

    /// <summary>Refreshes the server gauges that are read rather than pushed (uptime, memory).</summary>
    internal void UpdateServerGauges()
    {
        Stats.Gauge("server.uptime").Set((long)Uptime.TotalSeconds);
        Stats.Gauge("server.memory_allocated").Set(GC.GetTotalMemory(false));
        Stats.Gauge("server.memory_heap_size").Set(GC.GetGCMemoryInfo().HeapSizeBytes);
        long active = 0;
        foreach (var l in _listeners) active += l.CxActive.Value;
        Stats.Gauge("server.total_connections").Set(active);
    }

    /// <summary>Admin /quitquitquit and signals: stop accepting, then stop.</summary>
    public void RequestShutdown() => _stopped.TrySetResult();

    /// <summary>Gives a burst's heap back once the process is quiet; null when turned off.</summary>
    private IdleMemoryRelease? _idleMemoryRelease;

    public async ValueTask DisposeAsync()
    {
        State = ServerState.Draining;
        _idleMemoryRelease?.Dispose();
        await _drainCancel.CancelAsync().ConfigureAwait(false);
        await StopXdsAsync().ConfigureAwait(false);
        await Secrets.DisposeAsync().ConfigureAwait(false);
        foreach (var l in _listeners) await l.DisposeAsync().ConfigureAwait(false);
        _listeners = new List<ListenerHost>();
        if (_admin is not null) await _admin.DisposeAsync().ConfigureAwait(false);
        _admin = null;
        // After the listeners: requests still finishing have logged by now.
        await AccessLogs.DisposeAsync().ConfigureAwait(false);
        // Before the cluster manager: the last span batches go out over its clusters.
        await Tracers.DisposeAsync().ConfigureAwait(false);
        foreach (var sink in _statsSinks) await sink.DisposeAsync().ConfigureAwait(false);
        _statsSinks.Clear();
        ClusterManager.Dispose();
        await _services.DisposeAsync().ConfigureAwait(false);
        _stopped.TrySetResult();
    }
}
