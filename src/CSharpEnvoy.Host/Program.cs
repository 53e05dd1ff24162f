using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.DataPlane.Admin;
using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.DataPlane.Server;
using CSharpEnvoy.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// csenvoy: Envoy's command line, Envoy's config, a C# data plane.

// Runtime settings read once, on first use, so set before anything runs; a value already in the environment wins.
// Socket completions run inline on the epoll thread. With Kestrel's inline scheduling this keeps a proxied request
// on one thread; CSENVOY_INLINE_SCHEDULING=0 opts out.
if (Environment.GetEnvironmentVariable("CSENVOY_INLINE_SCHEDULING") != "0")
    SetDefault("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
// The shared ArrayPool keeps 32 arrays of a size per core. Every HTTP/2 stream in flight holds some across awaits
// (YARP's 64 KB body-copy buffer while the upstream connection's write loop sends it, SocketsHttpHandler's header
// buffer, Kestrel's stream pipes), so with hundreds of streams most rents missed the pool and allocated and zeroed a
// fresh array: over half the CPU per gRPC request (docs/performance.md, "h2c and gRPC"). The pool creates arrays
// only when that many are in use at once, and keeps them until a full collection trims unused ones: the price is
// memory after an HTTP/2 peak (~100 MB more at 320 gRPC streams in flight; 128 keeps ~35 MB less for ~10% more CPU).
SetDefault("DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION", "256");
var parsed = CommandLine.Parse(args);
if (parsed.Error is not null)
{
    Console.Error.WriteLine($"csenvoy: {parsed.Error}");
    Console.Error.WriteLine(CommandLine.Usage);
    return 1;
}
if (parsed.ShowHelp)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}
if (parsed.ShowVersion)
{
    Console.WriteLine($"csenvoy  version: {EnvoyServer.Version}/RELEASE/dotnet-{Environment.Version}");
    return 0;
}
var options = parsed.Options!;
// Envoy's --concurrency: the worker threads, here the event dispatchers; fixed before the first socket makes them.
if (parsed.Concurrency is { } workers) CSharpEnvoy.DataPlane.Event.Dispatcher.Configure(workers);
if (parsed.FileFlushInterval is { } flush) CSharpEnvoy.DataPlane.AccessLog.AccessLogWriter.ConfigureFlushInterval(flush);

// Envoy's --log-path: the log, and what would go to the console, is appended to the file instead.
if (parsed.LogPath is { } logPath)
{
    try
    {
        var file = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)) { AutoFlush = true };
        var writer = TextWriter.Synchronized(file);
        Console.SetOut(writer);
        Console.SetError(writer);
    }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
    {
        Console.Error.WriteLine($"csenvoy: cannot open --log-path '{logPath}': {ex.Message}");
        return 1;
    }
}

using var loggers = LoggerFactory.Create(b =>
{
    // Envoy's --log-format: lines in its spdlog pattern, else csenvoy's own single-line format.
    if (parsed.LogFormat is { } format)
    {
        b.Services.AddSingleton<Microsoft.Extensions.Logging.Console.ConsoleFormatter>(new LogFormatConsoleFormatter(format, parsed.LogFormatEscaped));
        b.AddConsole(o => o.FormatterName = LogFormatConsoleFormatter.Name);
    }
    else b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "[yyyy-MM-dd HH:mm:ss.fff] "; });
    b.SetMinimumLevel(CommandLine.ToLogLevel(options.LogLevel))
        // Kestrel and YARP log per connection/request at info; that is the proxy's hot path, so only their problems show.
        // Kestrel's "HTTP/2 is not enabled" warning does not apply: csenvoy detects h2c itself (see ListenerHost).
        .AddFilter("Microsoft", LogLevel.Warning)
        .AddFilter("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Error)
        .AddFilter("Yarp", LogLevel.Warning);
    // csenvoy's own categories are filtered by the server's logger levels (--log-level, then admin /logging).
    foreach (var name in LogLevels.Names) b.AddFilter(name, LogLevel.Trace);
    b.AddFilter("xds", LogLevel.Trace);
});
var log = loggers.CreateLogger("main");

if (options.Mode == "validate")
{
    var errors = new ConfigErrors();
    var model = ServerBuilder.LoadBootstrapForValidation(options, errors);
    foreach (var w in errors.Warnings) Console.Error.WriteLine($"warning: {w}");
    if (model is null)
    {
        Console.Error.WriteLine($"error initializing configuration '{options.ConfigPath ?? "--config-yaml"}':");
        foreach (var e in errors.Errors) Console.Error.WriteLine($"  {e}");
        return 1;
    }
    Console.WriteLine($"configuration '{options.ConfigPath ?? "--config-yaml"}' OK");
    return 0;
}

EnvoyServer server;
try
{
    server = ServerBuilder.Build(options, loggers);
}
catch (ConfigException ex)
{
    Console.Error.WriteLine($"error initializing configuration '{options.ConfigPath ?? "--config-yaml"}':");
    foreach (var e in ex.Errors.Errors) Console.Error.WriteLine($"  {e}");
    return 1;
}

try
{
    await server.StartAsync();
}
catch (ListenerBindException ex)
{
    Console.Error.WriteLine($"csenvoy: {ex.Message}");
    await server.DisposeAsync();
    return 1;
}

log.LogInformation("csenvoy {Version} started; admin at {Admin}", EnvoyServer.Version, server.AdminAddress ?? "(none)");
if (parsed.AdminAddressPath is { } addressPath)
{
    // Written whole (a temporary file renamed over it), so a reader polling the file never sees half an address.
    try
    {
        var temporary = addressPath + ".tmp";
        File.WriteAllText(temporary, server.AdminAddress ?? "");
        File.Move(temporary, addressPath, overwrite: true);
    }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
    {
        Console.Error.WriteLine($"csenvoy: cannot write --admin-address-path '{addressPath}': {ex.Message}");
        await server.DisposeAsync();
        return 1;
    }
}
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; server.RequestShutdown(); });
using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; server.RequestShutdown(); });
await server.Stopped;
log.LogInformation("shutting down");
await server.DisposeAsync();
return 0;

static void SetDefault(string variable, string value)
{
    if (Environment.GetEnvironmentVariable(variable) is null) Environment.SetEnvironmentVariable(variable, value);
}
