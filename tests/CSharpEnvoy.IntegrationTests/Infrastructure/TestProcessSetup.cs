using System.Runtime.CompilerServices;
using CSharpEnvoy.DataPlane.Event;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

internal static class TestProcessSetup
{
    /// <summary>At least two dispatchers in the test process, whatever the machine (as <c>--concurrency 2</c> would),
    /// so that what depends on a connection's dispatcher is exercised on one-processor machines too.</summary>
    [ModuleInitializer]
    internal static void Initialize() => Dispatcher.Configure(Math.Max(2, Environment.ProcessorCount));
}
