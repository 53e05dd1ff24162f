using System.IO.Pipelines;
using System.Net;
using System.Text;
using CSharpEnvoy.DataPlane.Http.Codec;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.IntegrationTests.Http.Codec;

/// <summary>
/// The downstream HTTP/1.1 codec on its own, over in-memory pipes: what it serves itself, what it leaves to Kestrel
/// (unconsumed), and how it frames responses.
/// </summary>
public sealed class Http1ServerConnectionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task KeepAliveRequests_AreServedInOrder_WithoutKestrel()
    {
        var h = new Harness(async c =>
        {
            var r = c.Request;
            await c.Response.WriteAsync($"{r.Method} {r.Path}{r.QueryString} host={r.Headers.Host} a={r.Headers["x-a"]} proto={r.Protocol}");
        });
        await h.SendAndFinishAsync("GET /one?q=1 HTTP/1.1\r\nHost: example\r\nX-A: 1\r\nX-A: 2\r\n\r\n" + "DELETE /two HTTP/1.1\r\nhost: other\r\n\r\n");
        var output = await h.OutputAsync();

        Assert.False(h.HandedOff.Task.IsCompleted);
        var responses = output.Split("HTTP/1.1 200 OK\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, responses.Length);
        Assert.EndsWith("GET /one?q=1 host=example a=1,2 proto=HTTP/1.1\r\n0\r\n\r\n", responses[0]);
        Assert.EndsWith("DELETE /two host=other a= proto=HTTP/1.1\r\n0\r\n\r\n", responses[1]);
        Assert.Contains("Transfer-Encoding: chunked\r\n", responses[0]);
        Assert.Contains("Date: ", responses[0]);
    }

    [Fact]
    public async Task ARepeatedHead_ReusesTheStringsOfThePreviousOne()
    {
        var seen = new List<(string Path, string Host, string Agent, string Name)>();
        var h = new Harness(c =>
        {
            string name = "";
            foreach (var header in c.Request.Headers)
                if (header.Key.Equals("host", StringComparison.OrdinalIgnoreCase)) name = header.Key;
            seen.Add((c.Request.Path.Value!, c.Request.Headers.Host!, c.Request.Headers.UserAgent!, name));
            return Task.CompletedTask;
        });
        const string Request = "GET /same HTTP/1.1\r\nhost: h\r\nUser-Agent: test/1\r\n\r\n";
        await h.SendAndFinishAsync(Request + Request);
        await h.OutputAsync();

        Assert.Equal(2, seen.Count);
        Assert.Same(seen[0].Path, seen[1].Path);
        Assert.Same(seen[0].Host, seen[1].Host);
        Assert.Same(seen[0].Agent, seen[1].Agent);
        // A known header takes Kestrel's spelling, whatever the client's case.
        Assert.Equal("Host", seen[0].Name);
    }

    public static TheoryData<string> Unusual => new()
    {
        "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\u00e9\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nA",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    };

    [Theory]
    [MemberData(nameof(Unusual))]
    public async Task AnUnusualRequest_IsHandedToKestrel_WithNothingConsumed(string request)
    {
        var h = new Harness(_ => throw new InvalidOperationException("the codec must not serve this request"));
        await h.SendAndFinishAsync(request);
        Assert.Equal(request, await h.HandedOff.Task.WaitAsync(Bound));
        await h.Run.WaitAsync(Bound);
        Assert.Equal(0, h.Served);
    }

    [Fact]
    public async Task AHandOffAfterServedRequests_GivesKestrelTheRestOnly()
    {
        var h = new Harness(c => c.Response.WriteAsync("served"));
        const string Rest = "GET / HTTP/1.0\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";
        await h.SendAndFinishAsync("GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + Rest);
        Assert.Equal(Rest, await h.HandedOff.Task.WaitAsync(Bound));
        Assert.Equal(1, h.Served);
    }

    [Fact]
    public async Task AResponseEndedWithoutBody_HasContentLengthZero()
    {
        var h = new Harness(c =>
        {
            c.Response.StatusCode = 404;
            return Task.CompletedTask;
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", output);
        Assert.Contains("\r\nContent-Length: 0\r\n", output);
        Assert.DoesNotContain("Transfer-Encoding", output);
        Assert.EndsWith("\r\n\r\n", output);
    }

    [Fact]
    public async Task FieldsAndReasonPhrasesThatWouldBreakTheHead_AreNotWritten()
    {
        var h = new Harness(c =>
        {
            c.Response.StatusCode = 418;
            c.Features.Get<IHttpResponseFeature>()!.ReasonPhrase = "Teapot\r\nX-Injected: 1";
            c.Response.Headers["x-good"] = "yes";
            c.Response.Headers["x-bad-value"] = "a\r\nX-Injected: 2";
            c.Response.Headers["x-bad:name"] = "b";
            c.Response.Headers["x-bad\r\nX-Injected"] = "3";
            return Task.CompletedTask;
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.StartsWith("HTTP/1.1 418 I'm a teapot\r\n", output);
        Assert.Contains("\r\nx-good: yes\r\n", output);
        Assert.DoesNotContain("X-Injected", output);
        Assert.DoesNotContain("x-bad", output);
    }

    [Fact]
    public async Task ABodyWithoutContentLength_IsChunked_AndEndsWithTheLastChunk()
    {
        var h = new Harness(async c =>
        {
            await c.Response.Body.WriteAsync("ab"u8.ToArray());
            await c.Response.Body.WriteAsync("cdefghijklmnopqrs"u8.ToArray());
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.Contains("\r\nTransfer-Encoding: chunked\r\n", output);
        Assert.EndsWith("\r\n\r\n2\r\nab\r\n11\r\ncdefghijklmnopqrs\r\n0\r\n\r\n", output);
    }

    [Fact]
    public async Task HeadAndNoContentResponses_CarryNoBody()
    {
        var h = new Harness(async c =>
        {
            if (c.Request.Path == "/204")
            {
                c.Response.StatusCode = 204;
                return;
            }
            c.Response.ContentLength = 5;
            await c.Response.Body.WriteAsync("hello"u8.ToArray());
        });
        await h.SendAndFinishAsync("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n" + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        var responses = output.Split("HTTP/1.1 ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, responses.Length);
        Assert.StartsWith("200 OK\r\n", responses[0]);
        Assert.Contains("Content-Length: 5\r\n", responses[0]);
        Assert.EndsWith("\r\n\r\n", responses[0]); // the head only
        Assert.StartsWith("204 No Content\r\n", responses[1]);
        Assert.DoesNotContain("Content-Length", responses[1]);
        Assert.DoesNotContain("Transfer-Encoding", responses[1]);
        Assert.EndsWith("\r\n\r\nhello", responses[2]);
    }

    [Fact]
    public async Task ConnectionClose_IsAnswered_AndTheNextRequestIsNotRead()
    {
        var h = new Harness(c => c.Response.WriteAsync("x"));
        await h.SendAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n");
        await h.Run.WaitAsync(Bound); // ends without the client closing
        var output = await h.OutputAsync();
        Assert.Contains("\r\nConnection: close\r\n", output);
        Assert.Equal(1, h.Served);
        Assert.False(h.HandedOff.Task.IsCompleted);
    }

    [Fact]
    public async Task AResponseConnectionClose_EndsTheConnectionAfterIt()
    {
        var h = new Harness(c =>
        {
            c.Response.OnStarting(() =>
            {
                c.Response.Headers.Connection = "close";
                return Task.CompletedTask;
            });
            return c.Response.WriteAsync("x");
        });
        await h.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n");
        await h.Run.WaitAsync(Bound);
        var output = await h.OutputAsync();
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", output);
        Assert.Contains("\r\nConnection: close\r\n", output);
        Assert.Equal(1, h.Served);
    }

    [Fact]
    public async Task ARequestBody_IsReadByContentLength_AndTheNextRequestFollows()
    {
        var h = new Harness(async c =>
        {
            var body = await new StreamReader(c.Request.Body).ReadToEndAsync();
            var detection = c.Features.Get<IHttpRequestBodyDetectionFeature>()!;
            await c.Response.WriteAsync($"{c.Request.Path}:{body}:{detection.CanHaveBody}");
        });
        await h.SendAndFinishAsync("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.Contains("/a:hello:True", output);
        Assert.Contains("/b::False", output);
    }

    [Fact]
    public async Task AnUnreadBodyAlreadyHere_IsSkipped_AndTheNextRequestServed()
    {
        var h = new Harness(c => c.Response.WriteAsync("path=" + c.Request.Path));
        await h.SendAndFinishAsync("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.Contains("path=/a", output);
        Assert.Contains("path=/b", output);
        Assert.Equal(2, h.Served);
    }

    [Fact]
    public async Task AnUnreadBodyStillOnItsWay_ClosesTheConnectionAfterTheResponse()
    {
        var h = new Harness(c => c.Response.WriteAsync("early"));
        await h.SendAsync("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
        await h.Run.WaitAsync(Bound); // the client has not closed: the codec did
        Assert.EndsWith("early\r\n0\r\n\r\n", await h.OutputAsync());
    }

    [Fact]
    public async Task ATruncatedRequestBody_FailsTheRead()
    {
        var failure = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var h = new Harness(async c =>
        {
            try
            {
                await new StreamReader(c.Request.Body).ReadToEndAsync();
            }
            catch (Exception e)
            {
                failure.SetResult(e);
            }
        });
        await h.SendAndFinishAsync("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
        Assert.IsType<BadHttpRequestException>(await failure.Task.WaitAsync(Bound));
    }

    [Fact]
    public async Task AnAppThatThrowsBeforeResponding_Gets500WithNoBody()
    {
        var h = new Harness(c =>
        {
            c.Response.Headers["x-lost"] = "1";
            throw new InvalidOperationException("boom");
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var output = await h.OutputAsync();
        Assert.StartsWith("HTTP/1.1 500 Internal Server Error\r\n", output);
        Assert.Contains("Content-Length: 0\r\n", output);
        Assert.DoesNotContain("x-lost", output);
    }

    [Fact]
    public async Task TooFewBytesForTheContentLength_AbortsTheConnection()
    {
        var h = new Harness(async c =>
        {
            c.Response.ContentLength = 10;
            await c.Response.Body.WriteAsync("ab"u8.ToArray());
        });
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Connection.ConnectionClosed.Register(() => aborted.TrySetResult());
        await h.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        await aborted.Task.WaitAsync(Bound);
        await h.Run.WaitAsync(Bound);
        Assert.Equal(1, h.Served);
    }

    [Fact]
    public async Task OnStartingCallbacks_RunBeforeTheHead_LastRegisteredFirst()
    {
        var h = new Harness(c =>
        {
            c.Response.OnStarting(() =>
            {
                c.Response.Headers["x-order"] = c.Response.Headers["x-order"] + "first";
                return Task.CompletedTask;
            });
            c.Response.OnStarting(() =>
            {
                c.Response.Headers["x-order"] = "second,";
                return Task.CompletedTask;
            });
            return c.Response.WriteAsync("x");
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Contains("\r\nx-order: second,first\r\n", await h.OutputAsync());
    }

    [Fact]
    public async Task ConnectionFeature_ReportsTheTransportsAddresses()
    {
        string? seen = null;
        var h = new Harness(c =>
        {
            seen = $"{c.Connection.RemoteIpAddress}:{c.Connection.RemotePort} {c.Connection.LocalIpAddress}:{c.Connection.LocalPort} {c.Connection.Id}";
            return Task.CompletedTask;
        });
        await h.SendAndFinishAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        await h.OutputAsync();
        Assert.Equal("127.0.0.2:5555 127.0.0.1:80 c1", seen);
    }

    /// <summary>The codec over two in-memory pipes, with a stand-in for Kestrel that records what it is handed.</summary>
    private sealed class Harness : IHttpApplication<HttpContext>
    {
        private readonly Pipe _toServer = new();
        private readonly Pipe _fromServer = new();
        private readonly Func<HttpContext, Task> _app;
        private int _served;

        public Harness(Func<HttpContext, Task> app)
        {
            _app = app;
            Connection = new DefaultConnectionContext("c1", new DuplexPipe(_toServer.Reader, _fromServer.Writer), new DuplexPipe(_fromServer.Reader, _toServer.Writer))
            {
                RemoteEndPoint = new IPEndPoint(IPAddress.Parse("127.0.0.2"), 5555),
                LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 80),
            };
            Run = new Http1ServerConnection(Connection, this, KestrelAsync, Timeout.InfiniteTimeSpan).RunAsync();
        }

        public DefaultConnectionContext Connection { get; }
        public Task Run { get; }
        public int Served => Volatile.Read(ref _served);
        /// <summary>What "Kestrel" read from the connection after the hand-off, to the client's end.</summary>
        public TaskCompletionSource<string> HandedOff { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task SendAsync(string text)
        {
            await _toServer.Writer.WriteAsync(Encoding.Latin1.GetBytes(text));
        }

        /// <summary>Sends, then ends the client's side (its FIN).</summary>
        public async Task SendAndFinishAsync(string text)
        {
            await SendAsync(text);
            await _toServer.Writer.CompleteAsync();
        }

        /// <summary>Everything the codec wrote, once it is done with the connection.</summary>
        public async Task<string> OutputAsync()
        {
            await Run.WaitAsync(Bound);
            await _fromServer.Writer.CompleteAsync();
            var sb = new StringBuilder();
            while (true)
            {
                var result = await _fromServer.Reader.ReadAsync();
                foreach (var segment in result.Buffer) sb.Append(Encoding.Latin1.GetString(segment.Span));
                _fromServer.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) return sb.ToString();
            }
        }

        private async Task KestrelAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            while (true)
            {
                var result = await input.ReadAsync();
                if (result.IsCompleted)
                {
                    var sb = new StringBuilder();
                    foreach (var segment in result.Buffer) sb.Append(Encoding.Latin1.GetString(segment.Span));
                    input.AdvanceTo(result.Buffer.End);
                    HandedOff.SetResult(sb.ToString());
                    return;
                }
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }

        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context)
        {
            Interlocked.Increment(ref _served);
            return _app(context);
        }

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
