namespace CSharpEnvoy.DataPlane.Xds;

/// <summary>
/// Spreads the independent per-resource work of a large xDS response (decoding, validating and translating each
/// resource, building each new cluster) over the cores. A control plane's first push to a mesh sidecar is thousands of
/// clusters and assignments at once; small updates, the steady state, stay on the calling thread.
/// </summary>
internal static class ParallelApply
{
    /// <summary>Below this many items the work runs inline: a thread hop costs more than it saves.</summary>
    public const int Threshold = 256;

    private static readonly ParallelOptions s_options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary>Runs <paramref name="body"/> for 0 ≤ i &lt; <paramref name="count"/>: in parallel for large counts, each
    /// index once. The body must only write its own index's result.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count < Threshold || Environment.ProcessorCount == 1)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        // Ranges rather than single indexes: one delegate call per chunk of work, not per resource.
        var chunk = Math.Max(64, count / (Environment.ProcessorCount * 4));
        Parallel.For(0, (count + chunk - 1) / chunk, s_options, c =>
        {
            var end = Math.Min(count, (c + 1) * chunk);
            for (var i = c * chunk; i < end; i++) body(i);
        });
    }
}
