namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's earliest-deadline-first scheduler (<c>edf_scheduler.h</c>): each entry's next deadline is the scheduler's
/// current time plus 1 / weight; the earliest deadline is picked, ties go to the entry added first. An array heap,
/// so picking and re-adding allocate nothing. Not thread-safe: used per thread or while building a table.
/// </summary>
internal sealed class EdfScheduler
{
    private struct Entry
    {
        public double Deadline;
        public long Order;
        public int Index;
    }

    private readonly Entry[] _heap;
    private int _count;
    private long _order;

    public EdfScheduler(int capacity) => _heap = new Entry[Math.Max(capacity, 1)];

    public double CurrentTime { get; private set; }
    public int Count => _count;

    /// <summary>Adds <paramref name="index"/> with deadline current time + 1 / <paramref name="weight"/>.</summary>
    public void Add(int index, double weight) => Push(CurrentTime + 1.0 / weight, index);

    /// <summary>Adds with an explicit deadline (the static schedule uses exact k / w deadlines).</summary>
    public void Push(double deadline, int index)
    {
        var e = new Entry { Deadline = deadline, Order = _order++, Index = index };
        var i = _count++;
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            if (!Less(e, _heap[parent])) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = e;
    }

    /// <summary>Removes the earliest entry and advances the current time to its deadline.</summary>
    public int Pop(out double deadline)
    {
        var top = _heap[0];
        var last = _heap[--_count];
        var i = 0;
        while (true)
        {
            var child = 2 * i + 1;
            if (child >= _count) break;
            if (child + 1 < _count && Less(_heap[child + 1], _heap[child])) child++;
            if (!Less(_heap[child], last)) break;
            _heap[i] = _heap[child];
            i = child;
        }
        if (_count > 0) _heap[i] = last;
        CurrentTime = top.Deadline;
        deadline = top.Deadline;
        return top.Index;
    }

    private static bool Less(in Entry a, in Entry b) => a.Deadline < b.Deadline || (a.Deadline == b.Deadline && a.Order < b.Order);

    /// <summary>
    /// One full EDF period for static weights, as host indexes: host i appears weights[i] times (after dividing by
    /// the weights' gcd), spread smoothly. A period longer than <paramref name="maxLength"/> is approximated by
    /// scaling the weights down (each host keeps at least one slot).
    /// </summary>
    public static int[] BuildSchedule(uint[] weights, int maxLength)
    {
        ulong g = 0;
        foreach (var w in weights) g = Gcd(g, w);
        var scaled = new ulong[weights.Length];
        ulong sum = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            scaled[i] = weights[i] / g;
            sum += scaled[i];
        }
        if (sum > (ulong)maxLength)
        {
            var factor = (double)maxLength / sum;
            sum = 0;
            for (var i = 0; i < scaled.Length; i++)
            {
                scaled[i] = Math.Max(1UL, (ulong)Math.Round(scaled[i] * factor));
                sum += scaled[i];
            }
        }
        var schedule = new int[sum];
        var picks = new ulong[weights.Length];
        var edf = new EdfScheduler(weights.Length);
        // Deadlines k / w computed from integers, so equal rationals compare equal and each period is exact.
        for (var i = 0; i < weights.Length; i++) edf.Push(1.0 / scaled[i], i);
        for (var t = 0; t < schedule.Length; t++)
        {
            var i = edf.Pop(out _);
            schedule[t] = i;
            picks[i]++;
            edf.Push((double)(picks[i] + 1) / scaled[i], i);
        }
        return schedule;
    }

    private static ulong Gcd(ulong a, ulong b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }
}
