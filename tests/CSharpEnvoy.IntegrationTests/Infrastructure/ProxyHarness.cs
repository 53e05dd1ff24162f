using System.Net;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.DataPlane.Server;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>
/// The real csenvoy server, in process, started from a YAML bootstrap. Listeners and admin should use port 0; the
/// bound ports are read back from the server.
/// </summary>
public sealed class ProxyHarness : IAsyncDisposable
{
    private readonly EnvoyServer _server;

    private ProxyHarness(EnvoyServer server) => _server = server;

    internal EnvoyServer Server => _server;

    public static Task<ProxyHarness> StartAsync(string yaml, string? serviceZone = null, TimeProvider? time = null) =>
        StartAsync(yaml, serviceZone, time, null);

    /// <summary>As above, with the load balancers' (and health checkers') random source fixed, for exact distributions.</summary>
    /// <remarks>Drains are immediate here (every HTTP/1 response of a drain asks to close, <c>--drain-strategy
    /// immediate</c>), so tests of what a drain does need not wait out the drain time; gradual drains have their own.</remarks>
    internal static async Task<ProxyHarness> StartAsync(string yaml, string? serviceZone, TimeProvider? time, CSharpEnvoy.DataPlane.Upstream.LoadBalancing.LbRandom? random,
        CSharpEnvoy.DataPlane.Listener.DrainStrategy drainStrategy = CSharpEnvoy.DataPlane.Listener.DrainStrategy.Immediate)
    {
        var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));
        var server = await ServerBuilder.StartAsync(new ServerOptions
        {
            ConfigYaml = yaml, ServiceZone = serviceZone, TimeProvider = time ?? TimeProvider.System, Random = random, DrainStrategy = drainStrategy,
        }, loggers);
        return new ProxyHarness(server);
    }

    /// <summary>Loads and validates without starting; returns every error.</summary>
    internal static ConfigErrors Validate(string yaml)
    {
        var errors = new ConfigErrors();
        ServerBuilder.LoadBootstrap(new ServerOptions { ConfigYaml = yaml }, errors);
        return errors;
    }

    /// <summary>A listener's bound address by name, or by position as "#0", "#1" (unnamed listeners get a UUID).</summary>
    public string ListenerAddress(string name) =>
        name.StartsWith('#') ? _server.Listeners[int.Parse(name[1..])].BoundAddress.ToString() : _server.ListenerAddresses[name];

    public Uri ListenerUri(string name) => new($"http://{ListenerAddress(name)}");

    public Uri AdminUri => new($"http://{_server.AdminAddress}");

    /// <summary>An HTTP/1.1 client (or h2c with <paramref name="http2"/>) aimed at a listener.</summary>
    public HttpClient Client(string listener, bool http2 = false)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false };
        return new HttpClient(handler)
        {
            BaseAddress = ListenerUri(listener),
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public HttpClient AdminClient() => new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = AdminUri, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Reads one stat from /stats?format=json (0 when absent).</summary>
    public async Task<long> StatAsync(string name)
    {
        using var admin = AdminClient();
        var text = await admin.GetStringAsync("/stats");
        foreach (var line in text.Split('\n'))
            if (line.StartsWith(name + ": ", StringComparison.Ordinal)) return long.Parse(line[(name.Length + 2)..]);
        return 0;
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();
}
