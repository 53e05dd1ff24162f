using System.Globalization;

namespace CSharpEnvoy.DataPlane.Tracing;

internal enum SpanKind { Server, Client }

/// <summary>
/// One span of a trace: ids (a 64-bit trace id keeps <see cref="TraceIdHigh"/> 0), times in Unix nanoseconds and
/// string tags. Built on the request path, then handed whole to the tracer's exporter, which reads it off the path.
/// </summary>
internal sealed class Span
{
    public ulong TraceIdHigh { get; init; }
    public ulong TraceIdLow { get; init; }
    public ulong SpanId { get; init; }
    /// <summary>0 for a root span.</summary>
    public ulong ParentSpanId { get; init; }
    public bool Sampled { get; init; }
    /// <summary>Zipkin's shared span context: this server span reuses the caller's span id.</summary>
    public bool Shared { get; init; }
    /// <summary>Whether the trace id is written with 32 hex digits (W3C, or Zipkin's trace_id_128bit).</summary>
    public bool TraceId128 { get; init; }
    public string? TraceState { get; init; }
    public required string Name { get; set; }
    public SpanKind Kind { get; init; }
    public long StartUnixNano { get; init; }
    public long EndUnixNano { get; set; }
    public List<KeyValuePair<string, string>> Tags { get; } = new(20);

    /// <summary>Sets a tag, replacing an earlier value of the same name (Envoy's setTag).</summary>
    public void SetTag(string name, string value)
    {
        var tags = Tags;
        for (var i = 0; i < tags.Count; i++)
        {
            if (tags[i].Key != name) continue;
            tags[i] = new(name, value);
            return;
        }
        tags.Add(new(name, value));
    }

    public string? GetTag(string name)
    {
        foreach (var t in Tags) if (t.Key == name) return t.Value;
        return null;
    }

    /// <summary>A CLIENT span under this one, in the same trace.</summary>
    public Span SpawnChild(string name, long startUnixNano) => new()
    {
        TraceIdHigh = TraceIdHigh, TraceIdLow = TraceIdLow, TraceId128 = TraceId128, SpanId = NewId(), ParentSpanId = SpanId,
        Sampled = Sampled, TraceState = TraceState, Name = name, Kind = SpanKind.Client, StartUnixNano = startUnixNano,
    };

    public string TraceIdHex => TraceId128 ? TraceIdHigh.ToString("x16", CultureInfo.InvariantCulture) + TraceIdLow.ToString("x16", CultureInfo.InvariantCulture)
        : TraceIdLow.ToString("x16", CultureInfo.InvariantCulture);

    public static string Hex(ulong id) => id.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>A random non-zero 64-bit id.</summary>
    public static ulong NewId()
    {
        ulong id;
        do id = (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue); while (id == 0);
        return id;
    }

    /// <summary>Parses 16 hex digits (or 32 into two halves); false for anything else or all zeros.</summary>
    public static bool TryParseId(ReadOnlySpan<char> hex, out ulong high, out ulong low)
    {
        high = low = 0;
        if (hex.Length == 32)
        {
            if (!ulong.TryParse(hex[..16], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out high)) return false;
            hex = hex[16..];
        }
        if (hex.Length != 16 || !ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out low)) return false;
        return high != 0 || low != 0;
    }

    public static long NowUnixNano(TimeProvider time) => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;
}
