using CSharpEnvoy.DataPlane.Server;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.Host;

/// <summary>Envoy's command-line flags (the subset that applies to csenvoy), with Envoy's spellings and defaults.</summary>
internal static class CommandLine
{
    public const string Usage = """
        usage: csenvoy [-c <path>] [--config-yaml <yaml>] [--mode serve|validate] [-l <level>]
                       [--service-node <id>] [--service-cluster <name>] [--service-zone <zone>]
                       [--drain-time-s <seconds>] [--admin-address-path <path>] [--concurrency <n>]
                       [--version] [--help]

          -c, --config-path     bootstrap file (YAML or JSON, Envoy v3 API)
          --config-yaml         YAML merged over the file (lists append, as in Envoy)
          --mode                serve (default) or validate: check the config and exit 0/1
          -l, --log-level       trace, debug, info (default), warning/warn, error, critical, off
          --service-node        node id (overrides node.id)
          --service-cluster     node cluster (overrides node.cluster)
          --service-zone        local zone (overrides node.locality.zone)
          --drain-time-s        listener drain time in seconds (default 600)
          --admin-address-path  file the admin's bound address (ip:port) is written to once it listens
          --concurrency         worker (dispatcher) threads; default one per processor, 0 runs one
        """;

    public sealed record Result(ServerOptions? Options, string? Error, bool ShowVersion, bool ShowHelp)
    {
        /// <summary>Envoy's <c>--admin-address-path</c>: where the admin's bound address is written (port 0 admins).</summary>
        public string? AdminAddressPath { get; init; }
        /// <summary>Envoy's <c>--concurrency</c>: the number of worker (dispatcher) threads; null: one per processor.</summary>
        public int? Concurrency { get; init; }
    }

    public static Result Parse(string[] args)
    {
        string? configPath = null, configYaml = null, node = null, cluster = null, zone = null, adminAddressPath = null;
        var mode = "serve";
        var level = "info";
        var drain = 600;
        int? concurrency = null;
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
                case "--concurrency":
                    if (!uint.TryParse(Value(), out var workers) || workers > 1024) return new Result(null, "--concurrency needs a number of worker threads from 0 to 1024", false, false);
                    concurrency = (int)workers;
                    break;
                default:
                    return new Result(null, $"unknown argument '{args[i]}'", false, false);
            }
        }
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
        }, null, false, false) { AdminAddressPath = adminAddressPath, Concurrency = concurrency };
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
