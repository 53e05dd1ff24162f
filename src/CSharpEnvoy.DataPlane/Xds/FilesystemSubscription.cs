using System.Threading.Channels;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Xds;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Xds;

/// <summary>
/// Filesystem xDS (Envoy's <c>path_config_source</c> and the older <c>path</c>): the file holds a DiscoveryResponse
/// (YAML or JSON; binary proto when it ends in <c>.pb</c>) and is read again whenever a file is moved onto it, or,
/// with <c>watched_directory</c>, whenever anything is moved in that directory. Envoy reacts to moves only, so a writer
/// replaces the file atomically (write elsewhere, then <c>mv</c>) and a half-written file is never read. Reads whose
/// bytes equal the last read are skipped, so the several events of one swap apply once.
/// </summary>
internal sealed class FilesystemSubscription : IAsyncDisposable
{
    private readonly string _typeUrl;
    private readonly string _path;
    private readonly string _watchedDirectory;
    private readonly Func<string, string, IReadOnlyList<Any>, Task<string?>> _apply;
    private readonly Action<string, string> _failed;
    private readonly string _sourceKey;
    private readonly ILogger _logger;
    // One pending reload is enough: a reload reads the file as it is when it runs.
    private readonly Channel<bool> _reloads = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stop = new();
    private FileSystemWatcher? _watcher;
    private Timer? _poll;
    private Task? _loop;
    private ulong? _lastHash;

    /// <param name="apply">Applies a DiscoveryResponse (type, version, resources); returns the rejection or null.</param>
    /// <param name="failed">Reports a file that could not be read or parsed (type, source key).</param>
    public FilesystemSubscription(string typeUrl, ConfigSourceModel source, Func<string, string, IReadOnlyList<Any>, Task<string?>> apply,
        Action<string, string> failed, ILogger logger)
    {
        _typeUrl = typeUrl;
        _sourceKey = source.Key;
        _path = Path.GetFullPath(source.Path!);
        _watchedDirectory = source.WatchedDirectory is { } d ? Path.GetFullPath(d) : Path.GetDirectoryName(_path)!;
        _apply = apply;
        _failed = failed;
        _logger = logger;
    }

    /// <summary>Envoy refuses a filesystem subscription whose file does not exist when it is created.</summary>
    public static string? CheckExists(ConfigSourceModel source) =>
        File.Exists(source.Path) ? null : $"paths must refer to an existing path in the system: '{source.Path}' does not exist";

    /// <summary>Starts watching and queues the first read.</summary>
    public void Start()
    {
        _watcher = new FileSystemWatcher(_watchedDirectory)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName,
            IncludeSubdirectories = false,
        };
        // A move within the directory is Renamed, a move in from elsewhere is Created (inotify IN_MOVED_TO).
        _watcher.Renamed += (_, e) => OnMoved(e.FullPath);
        _watcher.Created += (_, e) => OnMoved(e.FullPath);
        _watcher.Error += (_, e) =>
        {
            _logger.LogWarning("filesystem xDS watch on '{Directory}' failed: {Error}; reading '{Path}' again", _watchedDirectory, e.GetException().Message, _path);
            _reloads.Writer.TryWrite(true);
        };
        try
        {
            _watcher.EnableRaisingEvents = true;
        }
        catch (IOException ex)
        {
            // Out of inotify instances (fs.inotify.max_user_instances, 128 by default, shared by the user's processes):
            // read the file every second instead of never again; unchanged contents are skipped by their hash.
            _logger.LogWarning("filesystem xDS: cannot watch '{Directory}' ({Error}); polling '{Path}' every second instead", _watchedDirectory, ex.Message, _path);
            _watcher.Dispose();
            _watcher = null;
            _poll = new Timer(_ => _reloads.Writer.TryWrite(true), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }
        _reloads.Writer.TryWrite(true);
        _loop = Task.Run(LoopAsync);
    }

    private void OnMoved(string fullPath)
    {
        // Without watched_directory only moves onto the file itself count, as with Envoy's MovedTo watch on the path.
        if (_watchedDirectory == Path.GetDirectoryName(_path) && !string.Equals(fullPath, _path, StringComparison.Ordinal)) return;
        _reloads.Writer.TryWrite(true);
    }

    private async Task LoopAsync()
    {
        try
        {
            await foreach (var _ in _reloads.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                await ReloadAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ReloadAsync()
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(_path, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail($"cannot read '{_path}': {ex.Message}");
            return;
        }
        var hash = Upstream.LoadBalancing.XxHash64.Hash(bytes);
        if (hash == _lastHash) return;
        _lastHash = hash;
        var response = Parse(bytes, out var error);
        if (response is null)
        {
            Fail(error!);
            return;
        }
        if (response.TypeUrl.Length > 0 && response.TypeUrl != _typeUrl)
        {
            Fail($"'{_path}': type_url '{response.TypeUrl}' does not match the subscription's '{_typeUrl}'");
            return;
        }
        string? rejected;
        try
        {
            rejected = await _apply(_typeUrl, response.VersionInfo, response.Resources).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            rejected = "internal error applying the update: " + ex.Message;
        }
        if (rejected is null) _logger.LogInformation("filesystem xDS: '{Path}' version '{Version}' applied", _path, response.VersionInfo);
        else _logger.LogWarning("filesystem xDS: '{Path}' version '{Version}' rejected: {Error}", _path, response.VersionInfo, rejected);
    }

    private void Fail(string message)
    {
        _logger.LogWarning("filesystem xDS: {Error}", message);
        _failed(_typeUrl, _sourceKey);
    }

    /// <summary>Envoy's loadFromFile: <c>.pb</c> is binary, anything else YAML (which JSON is a subset of).</summary>
    private DiscoveryResponse? Parse(byte[] bytes, out string? error)
    {
        error = null;
        if (_path.EndsWith(".pb", StringComparison.Ordinal))
        {
            try
            {
                return DiscoveryResponse.Parser.ParseFrom(bytes);
            }
            catch (InvalidProtocolBufferException ex)
            {
                error = $"cannot decode '{_path}' as a binary DiscoveryResponse: {ex.Message}";
                return null;
            }
        }
        if (_path.EndsWith(".pb_text", StringComparison.Ordinal))
        {
            error = $"'{_path}': text-format protos (.pb_text) are not supported; use YAML, JSON or binary (.pb)";
            return null;
        }
        var errors = new ConfigErrors();
        DiscoveryResponse? response = null;
        try
        {
            response = new ProtoYamlLoader().Load<DiscoveryResponse>(System.Text.Encoding.UTF8.GetString(bytes), errors, _path);
        }
        catch (Exception ex)
        {
            errors.Add("", ex.Message);
        }
        if (errors.HasErrors || response is null)
        {
            error = $"cannot load '{_path}': {string.Join("; ", errors.Errors)}";
            return null;
        }
        return response;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _watcher?.Dispose();
        if (_poll is not null) await _poll.DisposeAsync().ConfigureAwait(false);
        _reloads.Writer.TryComplete();
        if (_loop is not null) await _loop.ConfigureAwait(false);
    }
}
