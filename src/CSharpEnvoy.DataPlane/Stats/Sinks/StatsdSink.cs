using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using CSharpEnvoy.Config.Model.Stats;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Stats.Sinks;

/// <summary>
/// Envoy's <c>envoy.stat_sinks.statsd</c> and <c>envoy.stat_sinks.dog_statsd</c> over UDP. Every
/// <c>stats_flush_interval</c> it sends each used counter's change since the last flush (<c>name:delta|c</c>) and each
/// used gauge (<c>name:value|g</c>); histogram values go out as timers (<c>name:ms|ms</c>) as they are recorded, through a
/// bounded queue so the request path never waits. DogStatsD sends tag-extracted names with <c>|#tag:value</c>.
/// Lines are packed into datagrams of at most <see cref="MaxDatagram"/> bytes.
/// </summary>
internal sealed class StatsdSink : IAsyncDisposable
{
    private const int DefaultDatagram = 1432; // fits a 1500-byte MTU with IP/UDP headers
    private readonly StatsStore _store;
    private readonly StatsSinkModel _model;
    private readonly TimeSpan _interval;
    private readonly ILogger _logger;
    private readonly Socket _socket;
    private readonly IPEndPoint _target;
    private readonly Dictionary<Counter, long> _lastCounterValues = new();
    private readonly Channel<(Histogram, double)> _timers = Channel.CreateBounded<(Histogram, double)>(
        new BoundedChannelOptions(65_536) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _flushLoop;
    private readonly Task _timerLoop;
    private readonly Counter _dropped;

    public StatsdSink(StatsStore store, StatsSinkModel model, TimeSpan interval, ILogger logger)
    {
        _store = store;
        _model = model;
        _interval = interval;
        _logger = logger;
        _target = new IPEndPoint(IPAddress.Parse(model.Address.Address), model.Address.Port);
        _socket = new Socket(_target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        MaxDatagram = model.MaxBytesPerDatagram > 0 ? model.MaxBytesPerDatagram : DefaultDatagram;
        _dropped = store.Counter("stats.statsd_timers_dropped");
        var previous = store.HistogramObserver;
        store.HistogramObserver = previous is null ? OnHistogram : previous + OnHistogram;
        _flushLoop = Task.Run(FlushLoopAsync);
        _timerLoop = Task.Run(TimerLoopAsync);
    }

    public int MaxDatagram { get; }

    private void OnHistogram(Histogram h, double ms)
    {
        if (!_timers.Writer.TryWrite((h, ms))) _dropped.Inc();
    }

    private async Task FlushLoopAsync()
    {
        using var timer = new PeriodicTimer(_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false)) Flush();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Sends counters (as deltas) and gauges once.</summary>
    internal void Flush()
    {
        var batch = new Batch(this);
        foreach (var c in _store.Counters)
        {
            if (!c.Used) continue;
            var value = c.Value;
            _lastCounterValues.TryGetValue(c, out var last);
            _lastCounterValues[c] = value;
            batch.Add(Line(c.Name, (value - last).ToString(CultureInfo.InvariantCulture), "c"));
        }
        foreach (var g in _store.Gauges)
            if (g.Used) batch.Add(Line(g.Name, g.Value.ToString(CultureInfo.InvariantCulture), "g"));
        batch.Send();
    }

    private async Task TimerLoopAsync()
    {
        var reader = _timers.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                var batch = new Batch(this);
                while (reader.TryRead(out var item))
                    batch.Add(Line(item.Item1.Name, item.Item2.ToString("0.###", CultureInfo.InvariantCulture), "ms"));
                batch.Send();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private string Line(string name, string value, string type)
    {
        if (!_model.DogStatsd) return $"{_model.Prefix}.{name}:{value}|{type}";
        var tagged = _store.Tags.Extract(name);
        if (tagged.Tags.Count == 0) return $"{_model.Prefix}.{tagged.Name}:{value}|{type}";
        var sb = new StringBuilder().Append(_model.Prefix).Append('.').Append(tagged.Name).Append(':').Append(value).Append('|').Append(type).Append("|#");
        for (var i = 0; i < tagged.Tags.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(tagged.Tags[i].Key).Append(':').Append(tagged.Tags[i].Value);
        }
        return sb.ToString();
    }

    private void SendDatagram(byte[] buffer, int length)
    {
        try
        {
            _socket.SendTo(buffer.AsSpan(0, length), SocketFlags.None, _target);
        }
        catch (SocketException ex)
        {
            // A sink that cannot send (nothing listening yet, ICMP unreachable) must not disturb the server.
            _logger.LogDebug("statsd send to {Target} failed: {Error}", _target, ex.Message);
        }
    }

    /// <summary>Packs newline-separated lines into datagrams up to the size limit.</summary>
    private struct Batch(StatsdSink sink)
    {
        private readonly byte[] _buffer = new byte[sink.MaxDatagram];
        private int _length;

        public void Add(string line)
        {
            var bytes = Encoding.UTF8.GetByteCount(line);
            if (bytes > _buffer.Length) return; // a single line over the limit cannot be sent
            if (_length > 0 && _length + 1 + bytes > _buffer.Length) Send();
            if (_length > 0) _buffer[_length++] = (byte)'\n';
            _length += Encoding.UTF8.GetBytes(line, 0, line.Length, _buffer, _length);
        }

        public void Send()
        {
            if (_length == 0) return;
            sink.SendDatagram(_buffer, _length);
            _length = 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _store.HistogramObserver -= OnHistogram;
        _stop.Cancel();
        try
        {
            await Task.WhenAll(_flushLoop, _timerLoop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Flush(); // the last interval's counters are not lost on shutdown
        _socket.Dispose();
    }
}
