using BenchmarkDotNet.Running;

// Micro benchmarks: `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- --filter '*'`
// xDS at scale (one pass, wall clock and heap): `dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- xds [warm] [alloc]`
// Bytes allocated and gen0 collections per proxied HTTP/1.1 request (in process): `... -- rq-alloc [requests] [connections]`
// Live objects of a running csenvoy by type (ClrMD): `... -- heap <pid> > a.tsv`, `... -- heap-diff a.tsv b.tsv <connections>`
// The same push over gRPC to a real csenvoy process: `... -- xds-e2e path/to/csenvoy` (the published binary or its .dll)
if (args is ["xds-e2e", var csenvoy])
{
    await CSharpEnvoy.Benchmarks.XdsEndToEndBenchmark.RunAsync(csenvoy);
    return;
}
if (args is ["rq-alloc", ..])
{
    await CSharpEnvoy.Benchmarks.RequestAllocationBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 200_000, args.Length > 2 ? int.Parse(args[2]) : 16);
    return;
}
if (args is ["heap", var pid])
{
    CSharpEnvoy.Benchmarks.HeapHistogram.Snapshot(int.Parse(pid));
    return;
}
if (args is ["heap-diff", var before, var after, var units])
{
    CSharpEnvoy.Benchmarks.HeapHistogram.Diff(before, after, int.Parse(units), 80);
    return;
}
if (args is ["xds", ..])
{
    await CSharpEnvoy.Benchmarks.XdsPushBenchmark.RunAsync(warm: args.Contains("warm"), allocations: args.Contains("alloc"));
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
