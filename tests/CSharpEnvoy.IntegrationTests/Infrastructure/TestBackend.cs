using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>A real Kestrel backend on 127.0.0.1 with an ephemeral port.</summary>
public sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestBackend(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public IServiceProvider Services => _app.Services;

    /// <summary>Starts a backend whose every request is handled by <paramref name="handler"/>.</summary>
    public static Task<TestBackend> StartAsync(RequestDelegate handler, HttpProtocols protocols = HttpProtocols.Http1) =>
        StartAppAsync(app => app.Run(handler), protocols);

    /// <summary>Starts a backend with a custom pipeline (endpoints, gRPC services ...).</summary>
    public static async Task<TestBackend> StartAppAsync(Action<WebApplication> configure, HttpProtocols protocols = HttpProtocols.Http1,
        Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, lo => lo.Protocols = protocols);
            k.Limits.MinRequestBodyDataRate = null;
        });
        services?.Invoke(builder.Services);
        var app = builder.Build();
        configure(app);
        await app.StartAsync();
        var address = app.Urls.First();
        return new TestBackend(app, new Uri(address).Port);
    }

    /// <summary>A backend answering every request with a JSON-ish echo of what it received (method, path, headers).</summary>
    public static Task<TestBackend> StartEchoAsync(string name = "backend", HttpProtocols protocols = HttpProtocols.Http1) =>
        StartAsync(async ctx =>
        {
            ctx.Response.Headers["x-backend"] = name;
            ctx.Response.Headers["x-echo-path"] = ctx.Request.Path.ToString() + ctx.Request.QueryString;
            ctx.Response.Headers["x-echo-host"] = ctx.Request.Host.ToString();
            ctx.Response.Headers["x-echo-protocol"] = ctx.Request.Protocol;
            foreach (var h in ctx.Request.Headers)
                ctx.Response.Headers["x-echo-req-" + h.Key.ToLowerInvariant()] = h.Value.ToString();
            var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body);
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"{name} {ctx.Request.Method} {ctx.Request.Path}{ctx.Request.QueryString} body={body.Length}");
        }, protocols);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
