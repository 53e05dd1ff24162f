using System.Diagnostics.Tracing;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// Which types a stretch of code allocates, from the runtime's allocation-tick events (one event per ~100 KB
/// allocated, naming the type that crossed the mark): a sampled picture, good enough to find the large allocators.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly Dictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private volatile bool _recording;

    public void Start()
    {
        lock (_bytes) _bytes.Clear();
        _recording = true;
    }

    public IReadOnlyList<(string Type, long Bytes)> Stop(int top)
    {
        _recording = false;
        lock (_bytes) return _bytes.OrderByDescending(kv => kv.Value).Take(top).Select(kv => (kv.Key, kv.Value)).ToList();
    }

    protected override void OnEventSourceCreated(EventSource source)
    {
        // GC keyword (0x1) at verbose level carries GCAllocationTick.
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_recording || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
        var type = "?";
        long amount = 0;
        for (var i = 0; i < e.PayloadNames!.Count; i++)
        {
            if (e.PayloadNames[i] == "TypeName") type = e.Payload[i] as string ?? "?";
            else if (e.PayloadNames[i] == "AllocationAmount64") amount = Convert.ToInt64(e.Payload[i]);
        }
        lock (_bytes) _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
    }
}
