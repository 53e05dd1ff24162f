using BenchmarkDotNet.Running;

// Micro benchmarks: `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- --filter '*'`
// xDS at scale (one pass, wall clock and heap): `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- xds [warm] [alloc]`
if (args is ["xds", ..])
{
    await CSharpEnvoy.Benchmarks.XdsPushBenchmark.RunAsync(warm: args.Contains("warm"), allocations: args.Contains("alloc"));
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
