using BenchmarkDotNet.Running;

// Micro benchmarks: `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- --filter '*'`
// xDS at scale (one pass, wall clock and heap): `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- xds [warm] [alloc]`
// The same push over gRPC to a real csenvoy process: `... -- xds-e2e path/to/csenvoy` (the published binary or its .dll)
if (args is ["xds-e2e", var csenvoy])
{
    await CSharpEnvoy.Benchmarks.XdsEndToEndBenchmark.RunAsync(csenvoy);
    return;
}
if (args is ["xds", ..])
{
    await CSharpEnvoy.Benchmarks.XdsPushBenchmark.RunAsync(warm: args.Contains("warm"), allocations: args.Contains("alloc"));
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
