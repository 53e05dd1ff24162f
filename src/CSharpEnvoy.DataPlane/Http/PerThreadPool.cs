namespace CSharpEnvoy.DataPlane.Http;

/// <summary>
/// Per-thread stacks of reusable per-request objects: no locks, and bounded, so a burst of concurrent requests leaves
/// at most <see cref="Capacity"/> objects per thread behind. With inline scheduling a request starts and usually ends on
/// its socket's I/O thread, so a few objects per thread serve every connection, and an idle connection holds none.
/// </summary>
internal static class PerThreadPool<T> where T : class
{
    internal const int Capacity = 16;

    [ThreadStatic] private static T?[]? t_items;
    [ThreadStatic] private static int t_count;

    /// <summary>An object returned on this thread, or null when there is none.</summary>
    public static T? Rent()
    {
        var items = t_items;
        if (items is null || t_count == 0) return null;
        var item = items[--t_count];
        items[t_count] = null;
        return item;
    }

    /// <summary>Keeps <paramref name="item"/> for the thread's next <see cref="Rent"/>; false when the pool is full
    /// (the caller then drops it).</summary>
    public static bool Return(T item)
    {
        var items = t_items ??= new T?[Capacity];
        if (t_count == items.Length) return false;
        items[t_count++] = item;
        return true;
    }
}
