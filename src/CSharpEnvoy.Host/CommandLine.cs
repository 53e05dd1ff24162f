using CSharpEnvoy.DataPlane.Server;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.Host;

/// <summary>Envoy's command-line flags (the subset that applies to csenvoy), with Envoy's spellings and defaults.</summary>
internal static class CommandLine
{
    public const string Usage = """
        usage: csenvoy [-c <path>] [--config-yaml <yaml>] [--mode serve|validate] [-l <level>]
                       [--service-node <id>] [--service-cluster <name>] [--service-zone <zone>]
                       [--drain-time-s <seconds>] [--drain-strategy gradual|immediate]
                       [--admin-address-path <path>] [--concurrency <n>] [--cpuset-threads]
                       [--file-flush-interval-msec <ms>] [--local-address-ip-version v4]
                       [--component-log-level <logger>:<level>,...] [--log-format <pattern>]
                       [--log-format-escaped] [--log-path <path>]
                       [--disable-hot-restart] [--parent-shutdown-time-s <s>] [--version] [--help]

          -c, --config-path     bootstrap file (YAML or JSON, Envoy v3 API)
          --config-yaml         YAML merged over the file (lists append, as in Envoy)
          --mode                serve (default) or validate: check the config and exit 0/1
          -l, --log-level       trace, debug, info (default), warning/warn, error, critical, off
          --component-log-level  levels of single loggers over -l, e.g. upstream:debug,config:trace
          --log-format          spdlog pattern of the log lines, e.g. "[%Y-%m-%d %T.%e][%l][%n] %v"
          --log-format-escaped  C-style escapes in log messages (a message stays one line)
          --log-path            file the application log is appended to (default: the console)
          --service-node        node id (overrides node.id)
          --service-cluster     node cluster (overrides node.cluster)
          --service-zone        local zone (overrides node.locality.zone)
          --drain-time-s        listener drain time in seconds (default 600)
          --drain-strategy      gradual (default: more HTTP/1 responses close over the drain time) or immediate
          --admin-address-path  file the admin's bound address (ip:port) is written to once it listens
          --concurrency         worker (dispatcher) threads; default one per processor, 0 runs one
          --cpuset-threads      workers from the CPUs the process may run on (the default here)
          --file-flush-interval-msec  access log file flush interval in milliseconds (default 1000)
          --local-address-ip-version  v4 (the default; v6 is not supported)
          --disable-hot-restart, --parent-shutdown-time-s <s>, --use-dynamic-base-id, --base-id <n>,
          --restart-epoch 0     accepted: csenvoy never hot restarts, so these change nothing
          --reject-unknown-dynamic-fields  what csenvoy always does; --allow-unknown-static-fields and
          --ignore-unknown-dynamic-fields are accepted, and unknown fields are still refused
        """;

    public sealed record Result(ServerOptions? Options, string? Error, bool ShowVersion, bool ShowHelp)
    {
        /// <summary>Envoy's <c>--admin-address-path</c>: where the admin's bound address is written (port 0 admins).</summary>
        public string? AdminAddressPath { get; init; }
        /// <summary>Envoy's <c>--concurrency</c>: the number of worker (dispatcher) threads; null: one per processor.</summary>
        public int? Concurrency { get; init; }
        /// <summary>Envoy's <c>--log-format</c>; null: csenvoy's own line format.</summary>
        public LogFormat? LogFormat { get; init; }
        /// <summary>Envoy's <c>--log-format-escaped</c>: messages C-escaped, one line each.</summary>
        public bool LogFormatEscaped { get; init; }
        /// <summary>Envoy's <c>--log-path</c>: the file the application log is appended to; null: the console.</summary>
        public string? LogPath { get; init; }
        /// <summary>Envoy's <c>--file-flush-interval-msec</c>; null: the default.</summary>
        public TimeSpan? FileFlushInterval { get; init; }
    }

    public static Result Parse(string[] args)
    {
        string? configPath = null, configYaml = null, node = null, cluster = null, zone = null, adminAddressPath = null;
        var mode = "serve";
        var level = "info";
        var drain = 600;
        int? concurrency = null;
        var componentLevels = new List<KeyValuePair<string, string>>();
        LogFormat? logFormat = null;
        string? logFormatText = null;
        var logFormatEscaped = false;
        string? logPath = null;
        TimeSpan? flushInterval = null;
        var drainStrategy = CSharpEnvoy.DataPlane.Listener.DrainStrategy.Gradual;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string? inline = null;
            var eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            string? Value()
            {
                if (inline is not null) return inline;
                return i + 1 < args.Length ? args[++i] : null;
            }
            switch (arg)
            {
                case "--version": return new Result(null, null, true, false);
                case "-h" or "--help": return new Result(null, null, false, true);
                case "-c" or "--config-path": configPath = Value(); if (configPath is null) return Missing(arg); break;
                case "--config-yaml": configYaml = Value(); if (configYaml is null) return Missing(arg); break;
                case "--mode":
                    mode = Value() ?? "";
                    if (mode is not ("serve" or "validate" or "init_only"))
                        return new Result(null, $"invalid --mode '{mode}' (expected serve, validate or init_only)", false, false);
                    break;
                case "-l" or "--log-level":
                    level = Value() ?? "";
                    if (!IsLevel(level)) return new Result(null, $"invalid log level '{level}'", false, false);
                    break;
                case "--service-node": node = Value(); if (node is null) return Missing(arg); break;
                case "--service-cluster": cluster = Value(); if (cluster is null) return Missing(arg); break;
                case "--service-zone": zone = Value(); if (zone is null) return Missing(arg); break;
                case "--admin-address-path": adminAddressPath = Value(); if (adminAddressPath is null) return Missing(arg); break;
                case "--drain-time-s":
                    if (!int.TryParse(Value(), out drain) || drain < 0) return new Result(null, "--drain-time-s needs a non-negative number of seconds", false, false);
                    break;
                case "--log-format":
                    var pattern = Value();
                    if (pattern is null) return Missing(arg);
                    logFormatText = pattern;
                    logFormat = LogFormat.Parse(pattern, out var formatError);
                    if (logFormat is null) return new Result(null, formatError, false, false);
                    break;
                case "--log-format-escaped":
                    logFormatEscaped = true;
                    break;
                case "--log-path":
                    logPath = Value();
                    if (string.IsNullOrEmpty(logPath)) return Missing(arg);
                    break;
                case "--component-log-level":
                    var spec = Value();
                    if (spec is null) return Missing(arg);
                    foreach (var pair in spec.Split(','))
                    {
                        var colon = pair.IndexOf(':');
                        var component = colon < 0 ? pair : pair[..colon];
                        var componentLevel = colon < 0 ? "" : pair[(colon + 1)..];
                        if (Array.IndexOf(CSharpEnvoy.DataPlane.Admin.LogLevels.EnvoyNames, component) < 0)
                            return new Result(null, $"--component-log-level: invalid component specified '{component}'", false, false);
                        if (!IsLevel(componentLevel))
                            return new Result(null, $"--component-log-level: invalid log level '{componentLevel}' for '{component}'", false, false);
                        componentLevels.Add(new(component, componentLevel));
                    }
                    break;
                case "--drain-strategy":
                    switch (Value())
                    {
                        case "gradual": drainStrategy = CSharpEnvoy.DataPlane.Listener.DrainStrategy.Gradual; break;
                        case "immediate": drainStrategy = CSharpEnvoy.DataPlane.Listener.DrainStrategy.Immediate; break;
                        default: return new Result(null, "--drain-strategy must be gradual or immediate", false, false);
                    }
                    break;
                case "--file-flush-interval-msec":
                    if (!uint.TryParse(Value(), out var ms)) return new Result(null, "--file-flush-interval-msec needs a number of milliseconds", false, false);
                    flushInterval = TimeSpan.FromMilliseconds(ms);
                    break;
                case "--local-address-ip-version":
                    var version = Value();
                    if (version == "v6") return new Result(null, "--local-address-ip-version v6 is not supported by csenvoy (see docs/compatibility.md)", false, false);
                    if (version != "v4") return new Result(null, "--local-address-ip-version must be v4 or v6", false, false);
                    break;
                // Hot restart: csenvoy never hands its sockets to a new process or takes them from an old one, which is
                // Envoy's behaviour with --disable-hot-restart; these flags only concern that hand-over.
                case "--disable-hot-restart" or "--use-dynamic-base-id":
                    break;
                // Envoy then warns about fields its protos do not have instead of refusing them. csenvoy's protos are a
                // subset of Envoy's, so a field it does not know may be one Envoy has and csenvoy does not implement:
                // it keeps refusing them, with or without the flag.
                case "--allow-unknown-static-fields" or "--ignore-unknown-dynamic-fields":
                    break;
                // What csenvoy always does: an update with a field it does not know is rejected (NACKed).
                case "--reject-unknown-dynamic-fields":
                    break;
                // Envoy's workers from the cpuset: without --concurrency csenvoy runs one per processor .NET reports, which
                // is already the CPUs the process may run on (its affinity, and a cgroup CPU quota rounded up).
                case "--cpuset-threads":
                    break;
                case "--parent-shutdown-time-s" or "--base-id":
                    if (!uint.TryParse(Value(), out _)) return new Result(null, $"{arg} needs a non-negative number", false, false);
                    break;
                case "--restart-epoch":
                    if (!uint.TryParse(Value(), out var epoch)) return new Result(null, "--restart-epoch needs a non-negative number", false, false);
                    if (epoch != 0) return new Result(null, "--restart-epoch above 0 asks for a hot restart, which csenvoy does not do (see docs/compatibility.md)", false, false);
                    break;
                case "--concurrency":
                    if (!uint.TryParse(Value(), out var workers) || workers > 1024) return new Result(null, "--concurrency needs a number of worker threads from 0 to 1024", false, false);
                    concurrency = (int)workers;
                    break;
                default:
                    return new Result(null, $"unknown argument '{args[i]}'", false, false);
            }
        }
        // Envoy's default pattern when only the escaping is asked for.
        if (logFormatEscaped) logFormat ??= LogFormat.Parse(LogFormat.EnvoyDefaultPattern, out _);
        if (configPath is null && configYaml is null)
            return new Result(null, "unable to start: no config given (use -c <path> or --config-yaml)", false, false);
        return new Result(new ServerOptions
        {
            ConfigPath = configPath,
            ConfigYaml = configYaml,
            Mode = mode,
            LogLevel = level,
            ServiceNode = node,
            ServiceCluster = cluster,
            ServiceZone = zone,
            DrainTime = TimeSpan.FromSeconds(drain),
            DrainStrategy = drainStrategy,
            ComponentLogLevels = componentLevels,
            LogFormat = logFormatText,
            LogFormatEscaped = logFormatEscaped,
            LogPath = logPath,
        }, null, false, false) { AdminAddressPath = adminAddressPath, Concurrency = concurrency, FileFlushInterval = flushInterval, LogFormat = logFormat,
            LogFormatEscaped = logFormatEscaped, LogPath = logPath };
    }

    private static Result Missing(string flag) => new(null, $"missing value for {flag}", false, false);

    private static bool IsLevel(string l) => l is "trace" or "debug" or "info" or "warning" or "warn" or "error" or "critical" or "off";

    public static LogLevel ToLogLevel(string l) => l switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "warning" or "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        "off" => LogLevel.None,
        _ => LogLevel.Information,
    };
}
