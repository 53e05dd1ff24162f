using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Server;
using CSharpEnvoy.DataPlane.Stats;
using Envoy.Admin.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using HcmProto = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// Envoy's admin interface on <c>admin.address</c>: the same paths, formats and JSON layouts (proto3 JSON with
/// snake_case names, as Envoy prints them), so existing scripts and dashboards keep working.
/// </summary>
internal sealed class AdminServer : IHttpApplication<HttpContext>, IAsyncDisposable
{
    private static readonly (string Path, string Help)[] s_endpoints =
    {
        ("/", "Admin home page"),
        ("/certs", "print certs on machine"),
        ("/clusters", "upstream cluster status"),
        ("/config_dump", "dump current Envoy configs"),
        ("/drain_listeners", "drain listeners"),
        ("/healthcheck/fail", "cause the server to fail health checks"),
        ("/healthcheck/ok", "cause the server to pass health checks"),
        ("/help", "print out list of admin commands"),
        ("/listeners", "print listener info"),
        ("/logging", "query/change logging levels"),
        ("/memory", "print current allocation/heap usage"),
        ("/quitquitquit", "exit the server"),
        ("/ready", "print server state, return 200 if LIVE, otherwise return 503"),
        ("/reset_counters", "reset all counters to zero"),
        ("/runtime", "print runtime values"),
        ("/server_info", "print server version/status information"),
        ("/stats", "print server stats"),
        ("/stats/prometheus", "print server stats in prometheus format"),
    };

    private readonly EnvoyServer _server;
    private readonly SocketAddressModel _address;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggers;
    // Made on first use: their type registry (for Any fields) loads every message type of the API.
    private JsonFormatter? _jsonFormatter;
    private JsonFormatter? _jsonWithDefaultsFormatter;

    private JsonFormatter Formatter => _jsonFormatter ??= new JsonFormatter(JsonFormatter.Settings.Default
        .WithPreserveProtoFieldNames(true)
        .WithIndentation()
        .WithTypeRegistry(ProtoRegistry.Default.TypeRegistry));

    // /server_info prints every primitive (state LIVE is enum 0), as Envoy's does.
    private JsonFormatter FormatterWithDefaults => _jsonWithDefaultsFormatter ??= new JsonFormatter(JsonFormatter.Settings.Default
        .WithPreserveProtoFieldNames(true)
        .WithIndentation()
        .WithFormatDefaultValues(true)
        .WithTypeRegistry(ProtoRegistry.Default.TypeRegistry));
    private KestrelServer? _kestrel;

    public AdminServer(EnvoyServer server, SocketAddressModel address, IServiceProvider services, ILoggerFactory loggers)
    {
        _server = server;
        _address = address;
        _services = services;
        _loggers = loggers;
    }

    public SocketAddressModel? BoundAddress { get; private set; }

    public async Task StartAsync(CancellationToken ct)
    {
        var options = new KestrelServerOptions { ApplicationServices = _services, AddServerHeader = false };
        if (_address.IsPipe) options.ListenUnixSocket(_address.PipePath!);
        else options.Listen(new IPEndPoint(IPAddress.Parse(_address.Address), _address.Port));
        _kestrel = new KestrelServer(Options.Create(options), new SocketTransportFactory(Options.Create(new SocketTransportOptions()), _loggers), _loggers);
        try
        {
            await _kestrel.StartAsync(this, ct).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            _kestrel.Dispose();
            _kestrel = null;
            throw new Listener.ListenerBindException($"cannot bind admin address {_address}: {ex.InnerException?.Message ?? ex.Message}", ex);
        }
        BoundAddress = _address;
        if (!_address.IsPipe && _address.Port == 0)
        {
            var bound = _kestrel.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            if (bound is not null && Uri.TryCreate(bound, UriKind.Absolute, out var uri)) BoundAddress = _address with { Port = uri.Port };
        }
    }

    public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

    public void DisposeContext(HttpContext context, Exception? exception)
    {
    }

    public Task ProcessRequestAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var q = context.Request.Query;
        context.Response.Headers["x-content-type-options"] = "nosniff";
        context.Response.Headers.CacheControl = "no-cache, max-age=0";
        switch (path)
        {
            case "/ready":
                var live = _server.State == ServerState.Live;
                context.Response.StatusCode = live ? 200 : 503;
                return Text(context, StateName(_server.State) + "\n");
            case "/server_info":
                return Text(context, FormatterWithDefaults.Format(ServerInfo()) + "\n", "application/json");
            case "/config_dump":
            {
                var (dump, status, error) = ConfigDumpQuery.Build(ConfigDumpSections(q.ContainsKey("include_eds")), q["resource"].FirstOrDefault(), q["mask"].FirstOrDefault());
                if (dump is not null) return Json(context, dump);
                context.Response.StatusCode = status;
                return Text(context, error!);
            }
            case "/clusters":
                return q["format"] == "json" ? Json(context, ClustersStatus.Build(_server.ClusterManager, StaticClusterNames())) : Text(context, Clusters());
            case "/listeners":
                return Text(context, Listeners(q["format"] == "json"), q["format"] == "json" ? "application/json" : "text/plain");
            case "/stats":
                return Stats(context);
            case "/stats/prometheus":
                _server.UpdateServerGauges();
                return Text(context, PrometheusFormatter.Format(_server.Stats, q.ContainsKey("usedonly")), "text/plain; version=0.0.4; charset=UTF-8");
            case "/reset_counters":
                if (!IsPost(context)) return MethodNotAllowed(context);
                _server.Stats.ResetCounters();
                return Text(context, "OK\n");
            case "/quitquitquit":
                if (!IsPost(context)) return MethodNotAllowed(context);
                _server.RequestShutdown();
                return Text(context, "OK\n");
            case "/logging":
                if (!IsPost(context)) return MethodNotAllowed(context);
                return Logging(context);
            case "/healthcheck/fail":
            case "/healthcheck/ok":
                if (!IsPost(context)) return MethodNotAllowed(context);
                _server.SetHealthCheckFailed(path == "/healthcheck/fail");
                return Text(context, "OK\n");
            case "/drain_listeners":
                if (!IsPost(context)) return MethodNotAllowed(context);
                _server.DrainListeners(q.ContainsKey("inboundonly"), q.ContainsKey("graceful"));
                return Text(context, "OK\n");
            case "/memory":
                return Text(context, Memory(), "application/json");
            case "/certs":
                return Text(context, FormatterWithDefaults.Format(CertsStatus.Build(TlsContexts(), DateTimeOffset.UtcNow)) + "\n", "application/json");
            case "/runtime":
                return Text(context, Runtime(), "application/json");
            case "/help":
                return Text(context, Help());
            case "/":
                return Text(context, AdminPage.Html, "text/html; charset=UTF-8");
            default:
                context.Response.StatusCode = 404;
                return Text(context, "invalid path. admin commands are:\n" + Help());
        }
    }

    private static bool IsPost(HttpContext context) => HttpMethods.IsPost(context.Request.Method);

    private static Task MethodNotAllowed(HttpContext context)
    {
        context.Response.StatusCode = 405;
        return Text(context, "This operation requires a POST request.\n");
    }

    private static string StateName(ServerState s) => s switch
    {
        ServerState.Live => "LIVE",
        ServerState.Draining => "DRAINING",
        ServerState.PreInitializing => "PRE_INITIALIZING",
        _ => "INITIALIZING",
    };

    private static string Help()
    {
        var sb = new StringBuilder("admin commands are:\n");
        foreach (var (p, h) in s_endpoints) sb.Append("  ").Append(p).Append(": ").Append(h).Append('\n');
        return sb.ToString();
    }

    private static Task Text(HttpContext context, string body, string contentType = "text/plain; charset=UTF-8")
    {
        context.Response.ContentType = contentType;
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Response.ContentLength = bytes.Length;
        return context.Response.Body.WriteAsync(bytes, 0, bytes.Length);
    }

    private Task Json(HttpContext context, IMessage message) =>
        Text(context, Formatter.Format(UnknownAnyRewriter.ForJson(message, ProtoRegistry.Default)) + "\n", "application/json");

    private ServerInfo ServerInfo()
    {
        var o = _server.Options;
        var uptime = Duration.FromTimeSpan(TimeSpan.FromSeconds(Math.Floor(_server.Uptime.TotalSeconds)));
        var node = _server.Bootstrap.Source.Node?.Clone() ?? new Envoy.Config.Core.V3.Node();
        node.Id = _server.Bootstrap.Node.Id;
        node.Cluster = _server.Bootstrap.Node.Cluster;
        node.UserAgentName = "csenvoy";
        return new ServerInfo
        {
            Version = $"csenvoy/{EnvoyServer.Version}/RELEASE",
            State = (ServerInfo.Types.State)(int)_server.State,
            UptimeCurrentEpoch = uptime,
            UptimeAllEpochs = uptime,
            HotRestartVersion = "disabled",
            CommandLineOptions = new CommandLineOptions
            {
                ConfigPath = o.ConfigPath ?? "",
                ConfigYaml = o.ConfigYaml ?? "",
                LogLevel = o.LogLevel,
                ServiceCluster = o.ServiceCluster ?? "",
                ServiceNode = o.ServiceNode ?? "",
                ServiceZone = o.ServiceZone ?? "",
                DrainTime = Duration.FromTimeSpan(o.DrainTime),
                Mode = o.Mode == "validate" ? CommandLineOptions.Types.Mode.Validate : CommandLineOptions.Types.Mode.Serve,
                DisableHotRestart = true,
                Concurrency = (uint)CSharpEnvoy.DataPlane.Event.Dispatcher.Count,
                ComponentLogLevel = string.Join(',', o.ComponentLogLevels.Select(p => p.Key + ":" + p.Value)),
                DrainStrategy = o.DrainStrategy == CSharpEnvoy.DataPlane.Listener.DrainStrategy.Immediate ? CommandLineOptions.Types.DrainStrategy.Immediate : CommandLineOptions.Types.DrainStrategy.Gradual,
                FileFlushInterval = Duration.FromTimeSpan(CSharpEnvoy.DataPlane.AccessLog.AccessLogWriter.FlushInterval),
                LogFormat = o.LogFormat ?? "",
                LogFormatEscaped = o.LogFormatEscaped,
                LogPath = o.LogPath ?? "",
                RejectUnknownDynamicFields = true, // unknown fields are always refused (docs/compatibility.md)
            },
            Node = node,
        };
    }

    /// <summary>The dump's top-level messages in Envoy's order (bootstrap, clusters, endpoints with include_eds,
    /// listeners, routes).</summary>
    private List<IMessage> ConfigDumpSections(bool includeEds)
    {
        var updated = Timestamp.FromDateTimeOffset(_server.StartTime);
        var dump = new List<IMessage> { new BootstrapConfigDump { Bootstrap = _server.Bootstrap.Source, LastUpdated = updated } };

        var clusters = new ClustersConfigDump();
        foreach (var c in _server.Bootstrap.Clusters)
            if (c.Source is { } src) clusters.StaticClusters.Add(new ClustersConfigDump.Types.StaticCluster { Cluster = Any.Pack(src), LastUpdated = updated });

        var listeners = new ListenersConfigDump();
        var routes = new RoutesConfigDump();
        foreach (var l in _server.Bootstrap.Listeners)
        {
            if (l.Source is not Envoy.Config.Listener.V3.Listener src) continue;
            listeners.StaticListeners.Add(new ListenersConfigDump.Types.StaticListener { Listener = Any.Pack(src), LastUpdated = updated });
            foreach (var fc in src.FilterChains)
                foreach (var f in fc.Filters)
                    if (f.TypedConfig is { } tc && tc.Is(HcmProto.Descriptor) && tc.Unpack<HcmProto>().RouteConfig is { } rc)
                        routes.StaticRouteConfigs.Add(new RoutesConfigDump.Types.StaticRouteConfig { RouteConfig = Any.Pack(rc), LastUpdated = updated });
        }
        // xDS resources: Envoy's dynamic_* sections with version_info, last_updated and error_state.
        _server.Xds?.AddToConfigDump(clusters, listeners, routes, endpoints: null);
        dump.Add(clusters);
        if (includeEds)
        {
            var statics = StaticClusterNames();
            dump.Add(ConfigDumpQuery.Endpoints(_server.ClusterManager, name => !statics.Contains(name)));
        }
        dump.Add(listeners);
        dump.Add(routes);
        dump.Add(_server.Secrets.ConfigDump());
        return dump;
    }

    /// <summary>The bootstrap's clusters; every other cluster was added via the API (CDS).</summary>
    private HashSet<string> StaticClusterNames() => _server.Bootstrap.Clusters.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>Envoy's text format: <c>cluster::host:port::stat::value</c>, one line per stat.</summary>
    private string Clusters()
    {
        var sb = new StringBuilder();
        var statics = StaticClusterNames();
        foreach (var c in _server.ClusterManager.Clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            var n = c.Name;
            sb.Append(n).Append("::observability_name::").Append(n).Append('\n');
            foreach (var (priority, t) in new[] { ("default_priority", c.Model.CircuitBreakers), ("high_priority", c.Model.CircuitBreakersHigh) })
            {
                sb.Append(n).Append("::").Append(priority).Append("::max_connections::").Append(t.MaxConnections).Append('\n');
                sb.Append(n).Append("::").Append(priority).Append("::max_pending_requests::").Append(t.MaxPendingRequests).Append('\n');
                sb.Append(n).Append("::").Append(priority).Append("::max_requests::").Append(t.MaxRequests).Append('\n');
                sb.Append(n).Append("::").Append(priority).Append("::max_retries::").Append(t.MaxRetries).Append('\n');
            }
            sb.Append(n).Append("::added_via_api::").Append(statics.Contains(n) ? "false" : "true").Append('\n');
            if (c.Model.EdsServiceName is { } eds) sb.Append(n).Append("::eds_service_name::").Append(eds).Append('\n');
            foreach (var h in c.PrioritySet.Hosts)
            {
                var prefix = n + "::" + h.Address + "::";
                sb.Append(prefix).Append("cx_active::").Append(h.ConnectionsActive).Append('\n');
                sb.Append(prefix).Append("rq_active::").Append(h.ActiveRequests).Append('\n');
                sb.Append(prefix).Append("rq_total::").Append(h.RequestsTotal).Append('\n');
                if (h.Hostname is not null) sb.Append(prefix).Append("hostname::").Append(h.Hostname).Append('\n');
                sb.Append(prefix).Append("health_flags::").Append(ClustersStatus.Flags(h)).Append('\n');
                sb.Append(prefix).Append("weight::").Append(h.Weight).Append('\n');
                sb.Append(prefix).Append("region::").Append(h.Locality.Region).Append('\n');
                sb.Append(prefix).Append("zone::").Append(h.Locality.Zone).Append('\n');
                sb.Append(prefix).Append("sub_zone::").Append(h.Locality.SubZone).Append('\n');
                sb.Append(prefix).Append("canary::false\n");
                sb.Append(prefix).Append("priority::").Append(h.Priority).Append('\n');
                sb.Append(prefix).Append("success_rate::").Append(ClustersStatus.Rate(h.Outlier?.SuccessRate ?? -1)).Append('\n');
                sb.Append(prefix).Append("local_origin_success_rate::").Append(ClustersStatus.Rate(h.Outlier?.LocalOriginSuccessRate ?? -1)).Append('\n');
            }
        }
        return sb.ToString();
    }

    private string Listeners(bool json)
    {
        if (!json)
        {
            var sb = new StringBuilder();
            foreach (var l in _server.Listeners) sb.Append(l.Model.Name).Append("::").Append(l.BoundAddress).Append('\n');
            return sb.ToString();
        }
        var listeners = new Envoy.Admin.V3.Listeners();
        foreach (var l in _server.Listeners)
        {
            var a = l.BoundAddress;
            var address = a.IsPipe
                ? new Envoy.Config.Core.V3.Address { Pipe = new Envoy.Config.Core.V3.Pipe { Path = a.PipePath } }
                : new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = a.Address, PortValue = (uint)a.Port } };
            listeners.ListenerStatuses.Add(new ListenerStatus { Name = l.Model.Name, LocalAddress = address });
        }
        return Formatter.Format(listeners) + "\n";
    }

    /// <summary>/stats: "name: value" lines sorted by name; <c>?filter=</c> regex, <c>?usedonly</c>, <c>?format=json</c>.</summary>
    private Task Stats(HttpContext context)
    {
        _server.UpdateServerGauges();
        var q = context.Request.Query;
        Regex? filter = null;
        if (q.TryGetValue("filter", out var f) && !string.IsNullOrEmpty(f))
        {
            try
            {
                filter = new Regex(f.ToString(), RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException ex)
            {
                context.Response.StatusCode = 400;
                return Text(context, $"Invalid regex: \"{ex.Message}\"\n");
            }
        }
        var usedOnly = q.ContainsKey("usedonly");
        var type = q["type"].ToString();
        var all = new List<(string Name, long Value)>();
        if (type is "" or "All" or "Counters")
            foreach (var c in _server.Stats.Counters)
                if ((!usedOnly || c.Used) && (filter is null || filter.IsMatch(c.Name))) all.Add((c.Name, c.Value));
        if (type is "" or "All" or "Gauges")
            foreach (var g in _server.Stats.Gauges)
                if ((!usedOnly || g.Used) && (filter is null || filter.IsMatch(g.Name))) all.Add((g.Name, g.Value));
        all.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var histograms = new List<Histogram>();
        if (type is "" or "All" or "Histograms")
            foreach (var h in _server.Stats.Histograms)
                if ((!usedOnly || h.Used) && (filter is null || filter.IsMatch(h.Name))) histograms.Add(h);
        histograms.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        if (q["format"] == "json")
        {
            var sb = new StringBuilder("{\"stats\":[");
            for (var i = 0; i < all.Count; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append("{\"name\":\"").Append(JsonEscape(all[i].Name)).Append("\",\"value\":").Append(all[i].Value.ToString(CultureInfo.InvariantCulture)).Append('}');
            }
            // Envoy's layout: one entry {"histograms": {"supported_quantiles": [...], "computed_quantiles": [...]}}.
            if (histograms.Count > 0)
            {
                if (all.Count > 0) sb.Append(',');
                sb.Append("{\"histograms\":{\"supported_quantiles\":[");
                for (var i = 0; i < Histogram.SupportedQuantiles.Length; i++)
                    sb.Append(i > 0 ? "," : "").Append((Histogram.SupportedQuantiles[i] * 100).ToString(CultureInfo.InvariantCulture));
                sb.Append("],\"computed_quantiles\":[");
                for (var h = 0; h < histograms.Count; h++)
                {
                    if (h > 0) sb.Append(',');
                    sb.Append("{\"name\":\"").Append(JsonEscape(histograms[h].Name)).Append("\",\"values\":[");
                    for (var i = 0; i < Histogram.SupportedQuantiles.Length; i++)
                    {
                        var v = histograms[h].Quantile(Histogram.SupportedQuantiles[i]);
                        sb.Append(i > 0 ? "," : "").Append("{\"interval\":null,\"cumulative\":")
                          .Append(double.IsNaN(v) ? "null" : v.ToString(CultureInfo.InvariantCulture)).Append('}');
                    }
                    sb.Append("]}");
                }
                sb.Append("]}}");
            }
            sb.Append("]}\n");
            return Text(context, sb.ToString(), "application/json");
        }
        var text = new StringBuilder();
        foreach (var (name, value) in all) text.Append(name).Append(": ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        // Envoy's text form of a histogram: quantiles as P<q>(interval,cumulative); csenvoy keeps no interval view.
        foreach (var h in histograms)
        {
            text.Append(h.Name).Append(':');
            foreach (var qv in Histogram.SupportedQuantiles)
            {
                var v = h.Quantile(qv);
                text.Append(" P").Append((qv * 100).ToString(CultureInfo.InvariantCulture)).Append("(nan,")
                    .Append(double.IsNaN(v) ? "nan" : v.ToString("0.###", CultureInfo.InvariantCulture)).Append(')');
            }
            text.Append('\n');
        }
        return Text(context, text.ToString());
    }

    /// <summary>Envoy's <c>LogsHandler::handlerLogging</c>: no parameter lists the loggers; <c>level=</c> sets them
    /// all, <c>&lt;logger&gt;=&lt;level&gt;</c> one, <c>paths=a:l1,b:l2</c> several. A bad request is a 404 with the
    /// usage, as in Envoy; the loggers are listed either way.</summary>
    private Task Logging(HttpContext context)
    {
        var levels = _server.LogLevels;
        var sb = new StringBuilder();
        var error = ChangeLogLevels(context.Request.Query, levels);
        if (error is not null)
        {
            context.Response.StatusCode = 404;
            sb.Append("error: ").Append(error).Append("\n\n");
            sb.Append("usage: /logging?<name>=<level> (change single level)\n");
            sb.Append("usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n");
            sb.Append("usage: /logging?level=<level> (change all levels)\n");
            sb.Append("levels: ");
            foreach (var l in LogLevels.LevelNames) sb.Append(l).Append(' ');
            sb.Append('\n');
        }
        sb.Append("active loggers:\n");
        for (var i = 0; i < LogLevels.Names.Length; i++)
            sb.Append("  ").Append(LogLevels.Names[i]).Append(": ").Append(LogLevels.Name(levels.Get(i))).Append('\n');
        sb.Append('\n');
        return Text(context, sb.ToString());
    }

    private static string? ChangeLogLevels(IQueryCollection query, LogLevels levels)
    {
        if (query.Count == 0) return null;
        if (query.Count > 1) return "invalid number of parameters";
        var (key, value) = query.First();
        if (key == "paths")
        {
            var pairs = new List<(string, Microsoft.Extensions.Logging.LogLevel)>();
            foreach (var pair in value.ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var colon = pair.IndexOf(':');
                if (colon < 0) return "invalid paths format";
                var name = pair[..colon];
                if (!LogLevels.TryParse(pair[(colon + 1)..], out var l)) return "unknown log level";
                if (Array.IndexOf(LogLevels.Names, name) < 0) return "unknown logger name";
                pairs.Add((name, l));
            }
            foreach (var (name, l) in pairs) levels.TrySet(name, l);
            return null;
        }
        if (!LogLevels.TryParse(value.ToString(), out var level)) return "unknown log level";
        if (key == "level")
        {
            levels.SetAll(level);
            return null;
        }
        return levels.TrySet(key, level) ? null : "unknown logger name";
    }

    /// <summary>Envoy's <c>envoy.admin.v3.Memory</c> layout (uint64 values as JSON strings), from the .NET GC's view:
    /// managed bytes in use, the GC heap size, and the process's resident memory.</summary>
    /// <summary>Every TLS context in service: listener filter chains' (in listener order), then clusters' (by name).</summary>
    private List<Config.Model.Tls.TlsContextModel> TlsContexts()
    {
        var contexts = new List<Config.Model.Tls.TlsContextModel>();
        foreach (var l in _server.Listeners)
            foreach (var fc in l.Model.AllFilterChains)
                if (fc.Tls is { } tls) contexts.Add(Current(tls.Common));
        foreach (var c in _server.ClusterManager.Clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
            if (c.Model.Tls is { } tls) contexts.Add(Current(tls.Common));
        return contexts;
    }

    /// <summary>A context with the certificate and CAs of its SDS secrets' current versions.</summary>
    private Config.Model.Tls.TlsContextModel Current(Config.Model.Tls.TlsContextModel context)
    {
        if (!context.UsesSecrets) return context;
        var certificate = context.CertificateSecret is { } c ? _server.Secrets.Provider(c).Current : null;
        var validation = context.ValidationSecret is { } v ? _server.Secrets.Provider(v).Current : null;
        var (cert, validationModel) = Tls.SecretManager.Resolve(context, certificate, validation, new Config.Loading.ConfigErrors());
        return context with { Certificates = cert is null ? [] : [cert], Validation = validationModel };
    }

    private static string Memory()
    {
        var info = GC.GetGCMemoryInfo();
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        static string S(long v) => "\"" + v.ToString(CultureInfo.InvariantCulture) + "\"";
        return "{\n \"allocated\": " + S(GC.GetTotalMemory(false)) +
               ",\n \"heap_size\": " + S(info.HeapSizeBytes) +
               ",\n \"pageheap_unmapped\": \"0\",\n \"pageheap_free\": " + S(info.FragmentedBytes) +
               ",\n \"total_thread_cache\": \"0\",\n \"total_physical_bytes\": " + S(process.WorkingSet64) + "\n}\n";
    }

    /// <summary>Envoy's /runtime layout: the bootstrap's layer names; csenvoy applies no runtime keys yet, so no entries.</summary>
    private string Runtime()
    {
        var sb = new StringBuilder("{\n \"entries\": {},\n \"layers\": [");
        var layers = _server.Bootstrap.Source.LayeredRuntime?.Layers;
        for (var i = 0; layers is not null && i < layers.Count; i++)
            sb.Append(i > 0 ? ", " : "").Append('"').Append(JsonEscape(layers[i].Name)).Append('"');
        return sb.Append("]\n}\n").ToString();
    }

    private static string JsonEscape(string s) => System.Text.Json.JsonEncodedText.Encode(s).ToString();

    public async ValueTask DisposeAsync()
    {
        if (_kestrel is null) return;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _kestrel.StopAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _kestrel.Dispose();
        _kestrel = null;
    }
}
