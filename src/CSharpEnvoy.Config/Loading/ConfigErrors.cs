namespace CSharpEnvoy.Config.Loading;

/// <summary>One problem found in a configuration, located by the proto field path of the offending value
/// (e.g. <c>static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]</c>).</summary>
internal readonly record struct ConfigError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}

/// <summary>Collects every error of a load or validation pass; nothing short-circuits, so a user sees all
/// problems of a file at once (Envoy reports the first; we do better where it costs nothing).</summary>
internal sealed class ConfigErrors
{
    private readonly List<ConfigError> _errors = new();
    private readonly List<ConfigError> _warnings = new();

    public IReadOnlyList<ConfigError> Errors => _errors;
    public IReadOnlyList<ConfigError> Warnings => _warnings;
    public bool HasErrors => _errors.Count > 0;

    public void Add(string path, string message) => _errors.Add(new ConfigError(path, message));
    public void Warn(string path, string message) => _warnings.Add(new ConfigError(path, message));

    public void AddRange(ConfigErrors other, string? prefix = null)
    {
        foreach (var e in other._errors) _errors.Add(prefix is null ? e : new ConfigError(Join(prefix, e.Path), e.Message));
        foreach (var w in other._warnings) _warnings.Add(prefix is null ? w : new ConfigError(Join(prefix, w.Path), w.Message));
    }

    public static string Join(string prefix, string path)
    {
        if (prefix.Length == 0) return path;
        if (path.Length == 0) return prefix;
        return path[0] == '[' ? prefix + path : prefix + "." + path;
    }

    /// <summary>All errors, one per line, in the order found.</summary>
    public override string ToString() => string.Join(Environment.NewLine, _errors);
}

/// <summary>Thrown only at the edges (bootstrap load, xDS apply) to carry a failed validation outwards.</summary>
internal sealed class ConfigException : Exception
{
    public ConfigException(ConfigErrors errors) : base(errors.ToString()) => Errors = errors;
    public ConfigException(string path, string message) : this(Single(path, message)) { }
    public ConfigErrors Errors { get; }

    private static ConfigErrors Single(string path, string message)
    {
        var e = new ConfigErrors();
        e.Add(path, message);
        return e;
    }
}
