using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// Envoy's named loggers and their levels, changed at run time by admin <c>/logging</c>. The server's
/// <see cref="ILoggerFactory"/> is wrapped so each csenvoy log category answers to its Envoy logger's level; other
/// categories (Kestrel, YARP ...) keep the host's filters.
/// </summary>
internal sealed class LogLevels
{
    /// <summary>The Envoy logger names csenvoy logs under, sorted as /logging lists them.</summary>
    public static readonly string[] Names = ["admin", "config", "connection", "hc", "http", "main", "router", "runtime", "stats", "tracing", "upstream"];

    /// <summary>Every logger name Envoy has (its <c>ALL_LOGGER_IDS</c>), for <c>--component-log-level</c>: csenvoy logs
    /// under <see cref="Names"/> only, so the level of any other is honoured by nothing being logged there.</summary>
    public static readonly string[] EnvoyNames =
    [
        "admin", "alternate_protocols_cache", "aws", "assert", "backtrace", "basic_auth", "cache_filter", "client",
        "config", "connection", "conn_handler", "decompression", "dns", "dubbo", "envoy_bug", "ext_authz", "ext_proc",
        "rocketmq", "file", "filter", "forward_proxy", "geolocation", "grpc", "happy_eyeballs", "hc", "health_checker",
        "http", "http2", "http3", "hystrix", "init", "io", "jwt", "kafka", "key_value_store", "lua", "main", "matcher",
        "misc", "mongo", "multi_connection", "oauth2", "quic", "quic_stream", "pool", "rate_limit_quota", "rbac", "rds",
        "redis", "router", "runtime", "stats", "secret", "tap", "testing", "thrift", "tracing", "upstream", "udp", "wasm",
        "websocket", "golang",
    ];

    /// <summary>Envoy's (spdlog's) level names, in order.</summary>
    public static readonly string[] LevelNames = ["trace", "debug", "info", "warning", "error", "critical", "off"];

    private readonly int[] _levels;

    public LogLevels(LogLevel initial)
    {
        _levels = new int[Names.Length];
        SetAll(initial);
    }

    public LogLevel Get(int logger) => (LogLevel)Volatile.Read(ref _levels[logger]);

    public void SetAll(LogLevel level)
    {
        for (var i = 0; i < _levels.Length; i++) Volatile.Write(ref _levels[i], (int)level);
    }

    public bool TrySet(string logger, LogLevel level)
    {
        var i = Array.IndexOf(Names, logger);
        if (i < 0) return false;
        Volatile.Write(ref _levels[i], (int)level);
        return true;
    }

    /// <summary>Envoy level name → .NET level ("warning" is Warning, "critical" Critical, "off" None).</summary>
    public static bool TryParse(string name, out LogLevel level)
    {
        var i = Array.IndexOf(LevelNames, name);
        level = i < 0 ? LogLevel.Information : (LogLevel)i;
        return i >= 0;
    }

    public static string Name(LogLevel level) => LevelNames[Math.Clamp((int)level, 0, LevelNames.Length - 1)];

    /// <summary>The Envoy logger a csenvoy category belongs to; -1 for categories that are not csenvoy's.</summary>
    private static int LoggerOf(string category) => category == "xds" ? Array.IndexOf(Names, "config") : Array.IndexOf(Names, category);

    public ILoggerFactory Wrap(ILoggerFactory inner) => new Factory(inner, this);

    private sealed class Factory(ILoggerFactory inner, LogLevels levels) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName)
        {
            var logger = inner.CreateLogger(categoryName);
            var index = LoggerOf(categoryName);
            return index < 0 ? logger : new Leveled(logger, levels, index);
        }

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose()
        {
            // The host owns the inner factory.
        }
    }

    private sealed class Leveled(ILogger inner, LogLevels levels, int index) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= levels.Get(index) && inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
