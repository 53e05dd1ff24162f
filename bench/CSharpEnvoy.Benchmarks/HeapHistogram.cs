using Microsoft.Diagnostics.Runtime;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// What a running (JIT or ReadyToRun) csenvoy process holds: its live managed objects by type, found by walking the
/// heap from the GC roots of a suspended process (ClrMD), so garbage not yet collected is left out. Two snapshots, say
/// before and with 10,000 idle connections, subtracted and divided by the connections, give what one connection holds.
/// Run: <c>dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- heap &lt;pid&gt; &gt; before.tsv</c>, then
/// <c>-- heap-diff before.tsv after.tsv 10000</c>. Native AOT processes cannot be read this way.
/// </summary>
internal static class HeapHistogram
{
    public static void Snapshot(int pid)
    {
        using var target = DataTarget.AttachToProcess(pid, suspend: true);
        using var runtime = target.ClrVersions[0].CreateRuntime();
        var heap = runtime.Heap;
        var byType = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
        var seen = new HashSet<ulong>();
        var pending = new Stack<ulong>();
        foreach (var root in heap.EnumerateRoots())
            if (root.Object.Address != 0 && seen.Add(root.Object.Address)) pending.Push(root.Object.Address);
        while (pending.Count > 0)
        {
            var obj = heap.GetObject(pending.Pop());
            if (!obj.IsValid) continue;
            var name = obj.Type?.Name ?? "?";
            var (count, bytes) = byType.GetValueOrDefault(name);
            byType[name] = (count + 1, bytes + (long)obj.Size);
            foreach (var child in obj.EnumerateReferences(carefully: true))
                if (child.Address != 0 && seen.Add(child.Address)) pending.Push(child.Address);
        }
        foreach (var (name, (count, bytes)) in byType) Console.WriteLine($"{bytes}\t{count}\t{name}");
    }

    /// <summary>Types whose live bytes grew between two snapshots, per unit (connection), largest first.</summary>
    public static void Diff(string before, string after, int units, int top)
    {
        var a = Read(before);
        var b = Read(after);
        var rows = new List<(string Type, double Bytes, double Count)>();
        double totalBytes = 0, totalCount = 0;
        foreach (var (type, (count, bytes)) in b)
        {
            var (c0, b0) = a.GetValueOrDefault(type);
            var db = (bytes - b0) / (double)units;
            var dc = (count - c0) / (double)units;
            totalBytes += db;
            totalCount += dc;
            rows.Add((type, db, dc));
        }
        rows.Sort((x, y) => y.Bytes.CompareTo(x.Bytes));
        Console.WriteLine($"per unit: {totalBytes:F0} B in {totalCount:F1} objects");
        var owners = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var r in rows) owners[Owner(r.Type)] = owners.GetValueOrDefault(Owner(r.Type)) + r.Bytes;
        foreach (var (owner, bytes) in owners.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {bytes,6:F0} B  {owner}");
        Console.WriteLine();
        Console.WriteLine("| bytes | objects | type |");
        Console.WriteLine("|---|---|---|");
        for (var i = 0; i < Math.Min(top, rows.Count); i++)
            Console.WriteLine($"| {rows[i].Bytes:F0} | {rows[i].Count:F2} | `{rows[i].Type}` |");
    }

    /// <summary>Who made an object, by the first namespace its type name mentions (a state machine box names its
    /// method's type in its generic argument).</summary>
    private static string Owner(string type)
    {
        string[] owners = ["CSharpEnvoy", "Yarp", "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.Server.Kestrel", "System.IO.Pipelines", "System.Net.Sockets", "System.Net.Http"];
        var first = int.MaxValue;
        var owner = "other (System, generic)";
        foreach (var o in owners)
        {
            var at = type.IndexOf(o, StringComparison.Ordinal);
            if (at >= 0 && at < first) { first = at; owner = o; }
        }
        return owner;
    }

    private static Dictionary<string, (long Count, long Bytes)> Read(string path)
    {
        var map = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split('\t', 3);
            if (parts.Length == 3) map[parts[2]] = (long.Parse(parts[1]), long.Parse(parts[0]));
        }
        return map;
    }
}
