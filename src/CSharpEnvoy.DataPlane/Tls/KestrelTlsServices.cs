using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// Kestrel's HTTPS middleware resolves Kestrel's internal services (its metrics) from the server's services, which
/// only <c>UseKestrelCore</c> registers, and that needs a web host builder. This applies its registrations to a plain
/// service collection, since csenvoy runs one KestrelServer per listener without a host.
/// </summary>
internal static class KestrelTlsServices
{
    public static IServiceCollection AddKestrelTlsServices(this IServiceCollection services)
    {
        services.AddMetrics(); // the host would add this; Kestrel's metrics need it
        new ServicesOnlyBuilder(services).UseKestrelCore();
        return services;
    }

    private sealed class ServicesOnlyBuilder(IServiceCollection services) : IWebHostBuilder
    {
#pragma warning disable ASPDEPR008 // part of the interface; never called
        public IWebHost Build() => throw new NotSupportedException();
#pragma warning restore ASPDEPR008
        public IWebHostBuilder ConfigureAppConfiguration(Action<WebHostBuilderContext, IConfigurationBuilder> configureDelegate) => this;

        public IWebHostBuilder ConfigureServices(Action<IServiceCollection> configureServices)
        {
            configureServices(services);
            return this;
        }

        public IWebHostBuilder ConfigureServices(Action<WebHostBuilderContext, IServiceCollection> configureServices)
        {
            configureServices(new WebHostBuilderContext { Configuration = new ConfigurationBuilder().Build() }, services);
            return this;
        }

        public string? GetSetting(string key) => null;
        public IWebHostBuilder UseSetting(string key, string? value) => this;
    }
}
