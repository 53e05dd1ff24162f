using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>Envoy's <c>filesystem.*</c> access log file stats, shared by every log file of the server.</summary>
internal sealed class AccessLogFileStats(StatsStore store)
{
    public Counter WriteBuffered { get; } = store.Counter("filesystem.write_buffered");
    public Counter WriteCompleted { get; } = store.Counter("filesystem.write_completed");
    public Counter WriteFailed { get; } = store.Counter("filesystem.write_failed");
    public Counter FlushedByTimer { get; } = store.Counter("filesystem.flushed_by_timer");
    /// <summary>Not an Envoy stat: lines dropped because the writer fell more than the queue limit behind.</summary>
    public Counter WriteDropped { get; } = store.Counter("filesystem.write_dropped");
    public Gauge WriteTotalBuffered { get; } = store.Gauge("filesystem.write_total_buffered");
}

/// <summary>
/// One log destination (a file, stdout or stderr), shared by every logger that writes to it. Requests never wait:
/// a line is encoded into a pooled buffer and queued (lock-free); a background task writes the queue out and
/// flushes every <see cref="FlushInterval"/> (<c>--file-flush-interval-msec</c>; 1 s unless set) or as soon as 64 KiB are pending
/// (Envoy's flush size). Past <see cref="MaxPendingBytes"/> lines are dropped and counted rather than buffered.
/// </summary>
internal sealed class AccessLogWriter : IAsyncDisposable
{
    public static TimeSpan FlushInterval { get; private set; } = TimeSpan.FromSeconds(1);

    /// <summary>Envoy's <c>--file-flush-interval-msec</c>, set before any access log file is opened.</summary>
    public static void ConfigureFlushInterval(TimeSpan interval) => FlushInterval = interval > TimeSpan.Zero ? interval : TimeSpan.FromMilliseconds(1);

    private const long FlushSize = 64 * 1024;
    private const long MaxPendingBytes = 16 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly AccessLogFileStats _stats;
    private readonly ConcurrentQueue<(byte[] Buffer, int Length)> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _io = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _pendingBytes;
    private int _signalled;

    public AccessLogWriter(string name, Stream stream, AccessLogFileStats stats)
    {
        Name = name;
        _stream = stream;
        _stats = stats;
        _loop = Task.Run(RunAsync);
    }

    public string Name { get; }

    /// <summary>Queues one line. Called on the request path: no lock, no I/O.</summary>
    public void Write(StringBuilder line)
    {
        var chars = ArrayPool<char>.Shared.Rent(line.Length);
        line.CopyTo(0, chars, 0, line.Length);
        var bytes = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(line.Length));
        var n = Encoding.UTF8.GetBytes(chars, 0, line.Length, bytes, 0);
        ArrayPool<char>.Shared.Return(chars);
        var pending = Interlocked.Add(ref _pendingBytes, n);
        if (pending > MaxPendingBytes)
        {
            Interlocked.Add(ref _pendingBytes, -n);
            ArrayPool<byte>.Shared.Return(bytes);
            _stats.WriteDropped.Inc();
            return;
        }
        _queue.Enqueue((bytes, n));
        _stats.WriteBuffered.Inc();
        _stats.WriteTotalBuffered.Set(pending);
        if (pending >= FlushSize && Interlocked.Exchange(ref _signalled, 1) == 0) _wake.Release();
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            bool woken;
            try
            {
                woken = await _wake.WaitAsync(FlushInterval, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            Volatile.Write(ref _signalled, 0);
            if (!_queue.IsEmpty) await FlushAsync(byTimer: !woken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes out and flushes everything queued so far (also used by tests and at shutdown).</summary>
    public Task FlushAsync() => FlushAsync(byTimer: false);

    private async Task FlushAsync(bool byTimer)
    {
        await _io.WaitAsync().ConfigureAwait(false);
        try
        {
            var any = false;
            while (_queue.TryDequeue(out var item))
            {
                any = true;
                try
                {
                    _stream.Write(item.Buffer, 0, item.Length);
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or NotSupportedException)
                {
                    _stats.WriteFailed.Inc();
                }
                Interlocked.Add(ref _pendingBytes, -item.Length);
                ArrayPool<byte>.Shared.Return(item.Buffer);
            }
            if (!any) return;
            try
            {
                await _stream.FlushAsync().ConfigureAwait(false);
                _stats.WriteCompleted.Inc();
                if (byTimer) _stats.FlushedByTimer.Inc();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or NotSupportedException)
            {
                _stats.WriteFailed.Inc();
            }
            _stats.WriteTotalBuffered.Set(Volatile.Read(ref _pendingBytes));
        }
        finally
        {
            _io.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop.ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>The server's log destinations: one <see cref="AccessLogWriter"/> per file path (and one for each of
/// stdout and stderr), shared by all loggers that name it. Disposing flushes every one.</summary>
internal sealed class AccessLogManager(StatsStore stats) : IAsyncDisposable
{
    private readonly AccessLogFileStats _stats = new(stats);
    private readonly Dictionary<string, AccessLogWriter> _writers = new(StringComparer.Ordinal);

    /// <summary>The writer for a file path, "/dev/stdout" or "/dev/stderr" included. Opening a file can fail
    /// (IOException, UnauthorizedAccessException): Envoy fails the load then too.</summary>
    public AccessLogWriter GetWriter(string path)
    {
        lock (_writers)
        {
            var key = path switch { "/dev/stdout" => "stdout", "/dev/stderr" => "stderr", _ => System.IO.Path.GetFullPath(path) };
            if (_writers.TryGetValue(key, out var w)) return w;
            Stream stream = key switch
            {
                "stdout" => Console.OpenStandardOutput(),
                "stderr" => Console.OpenStandardError(),
                _ => new FileStream(key, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 64 * 1024),
            };
            w = new AccessLogWriter(key, stream, _stats);
            _writers.Add(key, w);
            return w;
        }
    }

    /// <summary>Writes out everything queued so far, on every destination.</summary>
    public async Task FlushAsync()
    {
        AccessLogWriter[] writers;
        lock (_writers) writers = _writers.Values.ToArray();
        foreach (var w in writers) await w.FlushAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        AccessLogWriter[] writers;
        lock (_writers)
        {
            writers = _writers.Values.ToArray();
            _writers.Clear();
        }
        foreach (var w in writers) await w.DisposeAsync().ConfigureAwait(false);
    }
}
