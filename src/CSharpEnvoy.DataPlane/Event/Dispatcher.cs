using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CSharpEnvoy.DataPlane.Event;

/// <summary>
/// An epoll loop on a thread of its own, as Envoy's <c>Event::Dispatcher</c> is one per worker: sockets registered
/// here are edge-triggered, and their readers and writers resume on this thread, inline.
/// </summary>
/// <remarks>
/// Why not .NET's own socket engine: it tries every receive before it waits for the socket, so a receive that has to
/// wait costs a <c>recv</c> that finds nothing (EAGAIN), and one that waits with a zero-byte read a <c>recv(MSG_PEEK)</c>
/// as well. On a proxied HTTP/1.1 request both connections wait every time, and on a virtualised machine each of those
/// system calls costs about 2 µs. An <see cref="IoSocket"/> remembers instead when its last receive drained the
/// socket (fewer bytes than asked for, or EAGAIN) and then waits for the next edge without trying, as nginx does.
/// <para>One dispatcher per core; sockets are spread over them round-robin. Registration takes a lock (once per
/// connection); events are looked up lock-free by slot and generation, so an event for a socket closed meanwhile
/// finds nothing, or a newer socket with another generation, and is dropped.</para>
/// </remarks>
internal sealed unsafe class Dispatcher
{
    private const int MaxEvents = 256;

    /// <summary>On by default where epoll is (Linux x64/arm64); <c>CSENVOY_DISPATCHER=0</c> keeps .NET's engine.</summary>
    public static readonly bool Enabled = Epoll.IsSupported && Environment.GetEnvironmentVariable("CSENVOY_DISPATCHER") != "0";

    private static readonly Lock s_createGate = new();
    [ThreadStatic]
    private static Dispatcher? t_current;
    private static Dispatcher[]? s_all;
    private static int s_next;

    private readonly int _epfd;
    private readonly Lock _gate = new();
    private IoSocket?[] _slots = new IoSocket?[64];
    private readonly Stack<int> _free = new();
    private int _used;
    private uint _generation;

    private Dispatcher(int index)
    {
        Index = index;
        _epfd = Epoll.Create();
        var thread = new Thread(Run) { IsBackground = true, Name = "csenvoy-dispatcher-" + index };
        // Not the creating request's execution context: continuations here would all run under it.
        thread.UnsafeStart();
    }

    private static int s_count = Math.Max(1, Environment.ProcessorCount);

    /// <summary>How many dispatchers there are (or will be, once the first socket needs one): one per processor, or
    /// Envoy's <c>--concurrency</c> (see <see cref="Configure"/>).</summary>
    public static int Count => Volatile.Read(ref s_count);

    /// <summary>Sets the number of dispatchers as Envoy's <c>--concurrency</c> sets its workers (0 still runs one).
    /// Called before the first socket, which makes them; after that the number stays.</summary>
    public static void Configure(int count)
    {
        lock (s_createGate)
            if (s_all is null) Volatile.Write(ref s_count, Math.Max(1, count));
    }

    /// <summary>This dispatcher's number, 0 to <see cref="Count"/> - 1.</summary>
    public int Index { get; }

    /// <summary>The number of the dispatcher running the calling code; -1 on any other thread.</summary>
    public static int CurrentIndex => t_current is { } d ? d.Index : -1;

    /// <summary>Runs <paramref name="action"/> on the calling thread as if it were dispatcher <paramref name="index"/>'s
    /// (sockets it opens go there, <see cref="CurrentIndex"/> says so): for tests of per-dispatcher state.</summary>
    internal static T RunAs<T>(int index, Func<T> action)
    {
        var all = Volatile.Read(ref s_all) ?? CreateAll();
        var saved = t_current;
        t_current = all[index];
        try
        {
            return action();
        }
        finally
        {
            t_current = saved;
        }
    }

    /// <summary>The dispatcher the next socket goes to (created on first use, one per processor).</summary>
    public static Dispatcher Next()
    {
        var all = Volatile.Read(ref s_all) ?? CreateAll();
        return all[(int)((uint)Interlocked.Increment(ref s_next) % (uint)all.Length)];
    }

    /// <summary>The dispatcher a new socket goes to: this thread's when it is a dispatcher's (an upstream connection
    /// opened for a request that arrived there stays with it), else the next one.</summary>
    public static Dispatcher ForNewSocket() => t_current ?? Next();

    private static Dispatcher[] CreateAll()
    {
        lock (s_createGate)
        {
            if (s_all is { } existing) return existing;
            var all = new Dispatcher[Count];
            for (var i = 0; i < all.Length; i++) all[i] = new Dispatcher(i);
            Volatile.Write(ref s_all, all);
            return all;
        }
    }

    /// <summary>Adds the socket to the loop; throws when epoll refuses it.</summary>
    internal void Register(IoSocket socket, int fd)
    {
        int slot;
        uint generation;
        lock (_gate)
        {
            if (!_free.TryPop(out slot))
            {
                slot = _used++;
                if (slot == _slots.Length)
                {
                    var bigger = new IoSocket?[_slots.Length * 2];
                    _slots.CopyTo(bigger, 0);
                    Volatile.Write(ref _slots, bigger);
                }
            }
            generation = ++_generation;
            socket.Slot = slot;
            socket.Generation = generation;
            Volatile.Write(ref _slots[slot], socket);
        }
        var error = Epoll.Add(_epfd, fd, (ulong)generation << 32 | (uint)slot);
        if (error != 0)
        {
            Unregister(socket, fd: -1);
            throw new SocketException(error == 12 /* ENOMEM */ || error == 28 /* ENOSPC */ ? (int)SocketError.NoBufferSpaceAvailable : (int)SocketError.SocketError);
        }
    }

    /// <summary>Takes the socket out of the loop (before its descriptor is closed, so that the number can be reused).</summary>
    internal void Unregister(IoSocket socket, int fd)
    {
        if (fd >= 0) Epoll.Remove(_epfd, fd);
        lock (_gate)
        {
            var slots = _slots;
            if (ReferenceEquals(slots[socket.Slot], socket))
            {
                Volatile.Write(ref slots[socket.Slot], null);
                _free.Push(socket.Slot);
            }
        }
    }

    private void Run()
    {
        t_current = this;
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * Epoll.EventSize));
        while (true)
        {
            var n = Epoll.Wait(_epfd, events, MaxEvents, -1);
            if (n < 0)
            {
                if (n == -Epoll.EINTR) continue;
                Environment.FailFast("epoll_wait failed: errno " + (-n));
            }
            for (var i = 0; i < n; i++)
            {
                var data = Epoll.DataAt(events, i);
                var slot = (int)(uint)data;
                // Read per event: a socket registered after this batch began may sit in a bigger array.
                var slots = Volatile.Read(ref _slots);
                if ((uint)slot >= (uint)slots.Length) continue;
                var socket = Volatile.Read(ref slots[slot]);
                if (socket is null || socket.Generation != (uint)(data >> 32)) continue;
                try
                {
                    socket.OnEvents(Epoll.EventsAt(events, i));
                }
                catch (Exception)
                {
                    // A continuation's failure belongs to its own task; the loop goes on for every other socket.
                }
            }
        }
    }
}
