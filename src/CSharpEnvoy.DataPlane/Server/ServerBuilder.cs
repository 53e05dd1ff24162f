using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Bootstrap;
using CSharpEnvoy.Config.Translation;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Server;

/// <summary>Bootstrap file and flags → validated model → server. Used by the csenvoy executable and by tests.</summary>
internal static class ServerBuilder
{
    /// <summary>Loads and validates the bootstrap. Returns null with every error collected in <paramref name="errors"/>.</summary>
    internal static BootstrapModel? LoadBootstrap(ServerOptions options, ConfigErrors errors)
    {
        string? fileText = null;
        if (options.ConfigPath is { } path)
        {
            try
            {
                fileText = File.ReadAllText(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                errors.Add("", $"cannot read config file '{path}': {ex.Message}");
                return null;
            }
        }
        var bootstrap = BootstrapTranslator.Parse(fileText, options.ConfigYaml, errors, options.ConfigPath ?? "--config-yaml");
        if (bootstrap is null || errors.HasErrors) return null;
        return BootstrapTranslator.Translate(bootstrap, new NodeOverrides(options.ServiceNode, options.ServiceCluster, options.ServiceZone), errors);
    }

    /// <summary>For <c>--mode validate</c>: the same checks as a start, without binding anything.</summary>
    public static object? LoadBootstrapForValidation(ServerOptions options, ConfigErrors errors) => LoadBootstrap(options, errors);

    /// <summary>Builds a server from options (not started). Throws <see cref="ConfigException"/> with all errors.</summary>
    public static EnvoyServer Build(ServerOptions options, ILoggerFactory loggers)
    {
        var errors = new ConfigErrors();
        var model = LoadBootstrap(options, errors);
        var log = loggers.CreateLogger("config");
        foreach (var w in errors.Warnings) log.LogWarning("{Warning}", w.ToString());
        if (model is null) throw new ConfigException(errors);
        return new EnvoyServer(model, options, loggers);
    }

    /// <summary>Builds and starts a server; the caller disposes it.</summary>
    public static async Task<EnvoyServer> StartAsync(ServerOptions options, ILoggerFactory loggers, CancellationToken ct = default)
    {
        var server = Build(options, loggers);
        await server.StartAsync(ct).ConfigureAwait(false);
        return server;
    }
}
