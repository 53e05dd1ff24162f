using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CSharpEnvoy.LoadGenerator;

/// <summary>
/// `--self-check`: the response parser on every way a response can be split across reads, the histogram's buckets and
/// percentiles, and a short run against a local server that answers with Content-Length, chunked, non-2xx and
/// closing responses. Prints each failure and exits non-zero on any.
/// </summary>
internal static class SelfCheck
{
    private static int s_failures;

    public static int Run()
    {
        ParserCases();
        HistogramCases();
        RunAgainstLocalServer();
        Console.Error.WriteLine(s_failures == 0 ? "self-check passed" : $"self-check: {s_failures} failure(s)");
        return s_failures == 0 ? 0 : 1;
    }

    private static void ParserCases()
    {
        const string ContentLength = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        const string Chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        const string NoContent = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
        const string Continue = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        const string Close = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
        foreach (var (name, text, status, close) in new[]
                 {
                     ("content-length", ContentLength, 200, false), ("chunked", Chunked, 201, false),
                     ("204 ignores content-length", NoContent, 204, false), ("100 continue skipped", Continue, 200, false),
                     ("connection close", Close, 503, true),
                 })
        {
            var bytes = Encoding.ASCII.GetBytes(text);
            for (var piece = 1; piece <= bytes.Length; piece++)
            {
                var parser = new HttpResponseParser();
                var outcome = Feed(parser, bytes, piece, out var leftover);
                Check(outcome == ParseStatus.Complete && leftover == 0 && parser.StatusCode == status && parser.ConnectionClose == close,
                    $"parser {name} in pieces of {piece}: {outcome}, {leftover} bytes left, status {parser.StatusCode}, close {parser.ConnectionClose}");
            }
        }

        var untilClose = new HttpResponseParser();
        var head = Feed(untilClose, "HTTP/1.0 200 OK\r\n\r\nbody until the end"u8.ToArray(), 7, out _);
        Check(head == ParseStatus.NeedMore && untilClose.ConnectionClose && untilClose.OnEndOfStream() == ParseStatus.Complete,
            "parser: a response without a length ends at the close");
        var cut = new HttpResponseParser();
        Feed(cut, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"u8.ToArray(), 64, out _);
        Check(cut.OnEndOfStream() == ParseStatus.Error, "parser: a close inside a Content-Length body is an error");

        foreach (var bad in new[]
                 {
                     "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
                 })
        {
            var outcome = Feed(new HttpResponseParser(), Encoding.ASCII.GetBytes(bad), 64, out _);
            Check(outcome == ParseStatus.Error, $"parser rejects {bad.ReplaceLineEndings("|")}: got {outcome}");
        }
    }

    // Feeds bytes in pieces the way the runner does (unconsumed bytes stay at the front of the buffer).
    private static ParseStatus Feed(HttpResponseParser parser, byte[] bytes, int piece, out int leftover)
    {
        var buffer = new byte[bytes.Length];
        int filled = 0, offered = 0;
        var status = ParseStatus.NeedMore;
        while (offered < bytes.Length)
        {
            var n = Math.Min(piece, bytes.Length - offered);
            bytes.AsSpan(offered, n).CopyTo(buffer.AsSpan(filled));
            offered += n;
            filled += n;
            status = parser.Parse(buffer.AsSpan(0, filled), out var consumed);
            buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
            filled -= consumed;
            if (status != ParseStatus.NeedMore)
            {
                break;
            }
        }
        leftover = filled + bytes.Length - offered;
        return status;
    }

    private static void HistogramCases()
    {
        for (long v = 0; v < 1L << 40; v = v < 4096 ? v + 1 : v + v / 997)
        {
            var index = LatencyHistogram.IndexOf(v);
            var high = LatencyHistogram.HighestEquivalent(index);
            var low = index == 0 ? 0 : LatencyHistogram.HighestEquivalent(index - 1) + 1;
            if (v < low || v > high || (v >= 2048 && (high - low + 1) * 1000 > v))
            {
                Check(false, $"histogram: {v} µs lands in [{low}, {high}]");
                break;
            }
        }
        var h = new LatencyHistogram();
        for (var v = 1; v <= 100_000; v++)
        {
            h.Record(v);
        }
        foreach (var (p, expected) in new[] { (50.0, 50_000L), (90.0, 90_000L), (99.0, 99_000L), (99.9, 99_900L), (100.0, 100_000L) })
        {
            var got = h.ValueAtPercentile(p);
            Check(got >= expected && got <= expected + expected / 1000, $"histogram p{p}: {got}, expected {expected} (+0.1%)");
        }
        Check(h.Max == 100_000 && h.Count == 100_000 && Math.Abs(h.Mean - 50_000.5) < 1e-6, "histogram count, max and mean");
        h.Clear();
        h.Record(7);
        Check(h.ValueAtPercentile(50) == 7 && h.ValueAtPercentile(99.9) == 7, "histogram: exact below 2,048 µs");
    }

    // 600 requests at 600/s over 4 connections against a server that rotates response shapes and closes sometimes.
    private static void RunAgainstLocalServer()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var served = 0;
        var server = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    var client = listener.AcceptSocket();
                    new Thread(() => Serve(client, ref served)) { IsBackground = true }.Start();
                }
            }
            catch (SocketException)
            {
                // the listener stopped
            }
        }) { IsBackground = true };
        server.Start();

        var request = "GET / HTTP/1.1\r\nHost: self\r\n\r\n"u8.ToArray();
        using var runner = new ConstantRateRunner(listener.LocalEndpoint, request, 4, TimeSpan.FromSeconds(5));
        runner.Open();
        var r = runner.Run(600, 1);
        listener.Stop();
        Check(r.Completed == 600 && r.Errors == 0 && r.Unsent == 0,
            $"run: {r.Completed} completed, {r.Errors} errors, {r.Unsent} unsent of 600");
        Check(r.Non2xx == 150, $"run: every 4th response is a 404, counted {r.Non2xx} of 150");
        Check(r.Reconnects > 0, "run: connections the server closed were reopened");
        Check(r.AchievedRate is > 550 and < 620, $"run: achieved {r.AchievedRate:F1}/s at 600/s (from due p50 {r.FromDue.ValueAtPercentile(50)} p99 {r.FromDue.ValueAtPercentile(99)} max {r.FromDue.Max} µs, send lag max {r.SendLag.Max} µs, {r.Seconds:F2} s)");
        Check(r.FromDue.Count == 600 && r.FromDue.ValueAtPercentile(50) >= r.FromSend.ValueAtPercentile(50),
            "run: latency from the due time is never below latency from the send time");
    }

    private static void Serve(Socket client, ref int served)
    {
        using var _ = client;
        client.NoDelay = true; // the split writes below would otherwise wait on delayed ACKs (~40 ms each)
        var buffer = new byte[4096];
        var filled = 0;
        while (true)
        {
            var end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                var n = client.Receive(buffer, filled, buffer.Length - filled, SocketFlags.None);
                if (n == 0)
                {
                    return;
                }
                filled += n;
                continue;
            }
            buffer.AsSpan(end + 4, filled - end - 4).CopyTo(buffer);
            filled -= end + 4;
            var i = Interlocked.Increment(ref served);
            string[] pieces = (i % 4) switch
            {
                0 => ["HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"],
                1 => ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe", "llo"],
                2 => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n", "2\r\nlo\r\n0\r\n\r\n"],
                _ => i % 20 == 3
                    ? ["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]
                    : ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            };
            foreach (var piece in pieces)
            {
                client.Send(Encoding.ASCII.GetBytes(piece));
            }
            if (pieces[0].Contains("close", StringComparison.Ordinal))
            {
                client.Shutdown(SocketShutdown.Both);
                return;
            }
        }
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            s_failures++;
            Console.Error.WriteLine("FAIL " + what);
        }
    }
}
