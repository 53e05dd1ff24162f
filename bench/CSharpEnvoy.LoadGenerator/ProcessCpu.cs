namespace CSharpEnvoy.LoadGenerator;

/// <summary>CPU time of another process, read from /proc so the window matches the measured run exactly.</summary>
internal static class ProcessCpu
{
    public static bool Exists(int pid) => File.Exists($"/proc/{pid}/stat");

    /// <summary>utime + stime of <paramref name="pid"/> in clock ticks (proc(5): fields 14 and 15).</summary>
    public static long Ticks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11]) + long.Parse(fields[12]);
    }
}
