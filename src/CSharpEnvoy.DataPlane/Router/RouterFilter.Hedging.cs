using System.Buffers;
using System.Diagnostics;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>
/// Envoy's request hedging on per-try timeout (router docs, "Request hedging"): a try whose per_try_timeout fires keeps
/// running and another try is sent, as a retry (it needs a retry left and waits the back-off). The first response that
/// is not retried wins; the other tries are reset. YARP's forwarder streams one try into the downstream response, so
/// hedged requests send their tries with the cluster's invoker directly and copy the winner downstream.
/// </summary>
internal sealed partial class RouterFilter
{
    /// <summary>One try of a hedged request, with the resources it holds until it ends.</summary>
    private sealed class HedgedTry
    {
        public required Host Host { get; init; }
        public required int Number { get; init; }
        public required CancellationTokenSource Cts { get; init; }
        public required HttpRequestMessage Request { get; init; }
        public required long StartTimestamp { get; init; }
        public Task<HttpResponseMessage> Send { get; set; } = null!;
        /// <summary>Completes when the per-try timeout fires; cancelled with the try.</summary>
        public Task PerTry { get; set; } = null!;
        public bool PerTryFired { get; set; }
        /// <summary>A retry was already taken for this try (its per-try timeout hedged): it is not retried again.</summary>
        public bool Retried { get; set; }
        public bool HoldsPending { get; set; }
        /// <summary>This try is a retry: it holds the max_retries circuit breaker until it ends.</summary>
        public bool HoldsRetry { get; init; }
        public bool Released { get; set; }
        /// <summary>The host's pool the try holds until it is released.</summary>
        public HandlerConnectionPool? Pool { get; set; }
    }

    /// <summary>Whether a request can be hedged: the per-try timeout of a retriable request that is not an upgrade.</summary>
    private static bool CanHedge(HttpContext context) =>
        context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true }
        && context.Features.Get<IHttpExtendedConnectFeature>() is not { IsExtendedConnect: true }
        && !HttpMethods.IsConnect(context.Request.Method);

    private async Task ForwardHedgedAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, Cluster cluster, Host firstHost,
        RetryState retry, ReadOnlyMemory<byte>? body, TimeSpan perTry, TimeSpan idle, ForwarderRequestConfig config,
        CancellationTokenSource? timeoutCts, bool includeAttemptCount, string? serverName)
    {
        var resources = info.Resources!;
        var stats = cluster.Stats;
        // Envoy's stream idle timeout: no byte either way for this long; re-armed as the response body flows.
        using var idleCts = new CancellationTokenSource();
        if (idle > TimeSpan.Zero) idleCts.CancelAfter(idle);
        using var stopCts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, idleCts.Token, timeoutCts?.Token ?? CancellationToken.None);
        var stop = stopCts.Token;
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stopRegistration = stop.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), stopped);
        var tries = new List<HedgedTry>(2);
        var waits = new List<Task>(4);
        Task? backoff = null;
        var number = 0;
        try
        {
            if (!await StartTryAsync(firstHost, holdsRetry: false).ConfigureAwait(false))
            {
                await OverflowAsync(context, info, cluster, hcm, serverName).ConfigureAwait(false);
                return;
            }
            while (true)
            {
                waits.Clear();
                waits.Add(stopped.Task);
                if (backoff is not null) waits.Add(backoff);
                foreach (var t in tries)
                {
                    waits.Add(t.Send);
                    if (!t.PerTryFired) waits.Add(t.PerTry);
                }
                var done = await Task.WhenAny(waits).ConfigureAwait(false);
                if (stop.IsCancellationRequested)
                {
                    await StopAsync().ConfigureAwait(false);
                    return;
                }
                if (done == backoff)
                {
                    backoff = null;
                    var next = retry.ChooseHost(cluster);
                    if (next is null)
                    {
                        resources.Retries.Release();
                        if (tries.Count > 0) continue;
                        await NoHealthyUpstreamAsync(context, info, cluster, serverName).ConfigureAwait(false);
                        return;
                    }
                    if (!await StartTryAsync(next, holdsRetry: true).ConfigureAwait(false))
                    {
                        resources.Retries.Release();
                        if (tries.Count > 0) continue;
                        await OverflowAsync(context, info, cluster, hcm, serverName).ConfigureAwait(false);
                        return;
                    }
                    continue;
                }
                var attempt = Find(tries, done);
                if (done == attempt.PerTry)
                {
                    // Envoy's onSoftPerTryTimeout: an outlier timeout, the try keeps running, and a retry if one is left.
                    attempt.PerTryFired = true;
                    cluster.ReportUpstreamResult(attempt.Host, context, false, ForwarderError.RequestTimedOut, timedOut: true);
                    if (backoff is null)
                    {
                        if (retry.TryTakeRetry(resources, out var exceeded))
                        {
                            attempt.Retried = true;
                            backoff = Task.Delay(retry.NextBackoff(), stop);
                        }
                        else info.Flags |= exceeded ? ResponseFlags.UpstreamRetryLimitExceeded : ResponseFlags.UpstreamOverflow;
                    }
                    continue;
                }

                tries.Remove(attempt);
                if (!attempt.Send.IsCompletedSuccessfully)
                {
                    Release(attempt);
                    var exception = attempt.Send.Exception?.GetBaseException();
                    context.Features.Set<IForwarderErrorFeature>(new ForwarderFailure(ForwarderError.Request, exception));
                    cluster.ReportUpstreamResult(attempt.Host, context, false, ForwarderError.Request, timedOut: false);
                    if (!attempt.Retried && backoff is null && ClassifyReset(context, ForwarderError.Request, perTryFired: false) is { } kind && retry.WouldRetry(kind))
                    {
                        if (retry.TryTakeRetry(resources, out var exceeded))
                        {
                            backoff = Task.Delay(retry.NextBackoff(), stop);
                            continue;
                        }
                        info.Flags |= exceeded ? ResponseFlags.UpstreamRetryLimitExceeded : ResponseFlags.UpstreamOverflow;
                    }
                    // Other tries may still answer: Envoy replies only when none is left.
                    if (tries.Count > 0 || backoff is not null) continue;
                    info.UpstreamHost = attempt.Host;
                    await OnForwardErrorAsync(context, info, cluster, ForwarderError.Request, timeoutCts, serverName, perTryFired: false).ConfigureAwait(false);
                    return;
                }

                var response = attempt.Send.Result;
                if (attempt.HoldsPending)
                {
                    attempt.HoldsPending = false;
                    resources.PendingRequests.Release();
                }
                if (retry.WouldRetry(response))
                {
                    var retried = false;
                    if (!attempt.Retried && backoff is null)
                    {
                        if (retry.TryTakeRetry(resources, out var exceeded))
                        {
                            backoff = Task.Delay(retry.NextBackoff(), stop);
                            retried = true;
                        }
                        else info.RetryLimitExceeded |= exceeded;
                    }
                    // A response that would be retried but cannot be waits for the other tries, as in Envoy.
                    if (retried || tries.Count > 0 || backoff is not null)
                    {
                        Discard(attempt, response);
                        continue;
                    }
                }
                if (info.RetryLimitExceeded) info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
                foreach (var loser in tries) Abandon(loser);
                tries.Clear();
                if (backoff is not null)
                {
                    backoff = null;
                    resources.Retries.Release();
                }
                await CopyResponseAsync(attempt, response).ConfigureAwait(false);
                return;
            }
        }
        finally
        {
            foreach (var t in tries) Abandon(t);
            if (backoff is not null) resources.Retries.Release();
        }

        async Task<bool> StartTryAsync(Host host, bool holdsRetry)
        {
            if (!TryAdmit(cluster, info)) return false;
            number++;
            info.AttemptCount = number;
            info.UpstreamHost = host;
            retry.RecordHost(host);
            stats.UpstreamRqTotal.Inc();
            stats.UpstreamRqActive.Inc();
            host.RequestStarted();
            if (includeAttemptCount) context.Request.Headers["x-envoy-attempt-count"] = number.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var request = new HttpRequestMessage
            {
                Method = HttpMethod.Parse(context.Request.Method),
                Version = config.Version!,
                VersionPolicy = config.VersionPolicy ?? HttpVersionPolicy.RequestVersionExact,
            };
            // The content first: the transformer puts content headers (content-type, content-length) on it.
            if (body is { } b) request.Content = new ReadOnlyMemoryContent(b);
            var t = new HedgedTry
            {
                Host = host,
                Number = number,
                Cts = CancellationTokenSource.CreateLinkedTokenSource(stop),
                Request = request,
                StartTimestamp = Stopwatch.GetTimestamp(),
                HoldsPending = info.HoldsPending,
                HoldsRetry = holdsRetry,
            };
            info.HoldsPending = false;
            await info.TransformRequestAsync(context, request, host.DestinationPrefix, stop).ConfigureAwait(false);
            t.Pool = cluster.AcquireHandlerPool(host);
            t.Send = SendTryAsync(t.Pool.Invoker, request, t.Cts.Token);
            t.PerTry = Task.Delay(perTry, t.Cts.Token);
            tries.Add(t);
            return true;
        }

        void Release(HedgedTry t)
        {
            if (t.Released) return;
            t.Released = true;
            if (t.Send is { IsCompleted: false }) stats.UpstreamRqTxReset.Inc(); // a try still waiting for its answer is reset
            t.Cts.Cancel();
            t.Pool?.Release();
            t.Host.RequestFinished();
            stats.UpstreamRqActive.Dec();
            resources.Requests.Release();
            if (t.HoldsPending)
            {
                t.HoldsPending = false;
                resources.PendingRequests.Release();
            }
            if (t.HoldsRetry) resources.Retries.Release();
        }

        // A losing try is reset at once (Envoy's resetOtherUpstreams); a response it may still produce is disposed.
        void Abandon(HedgedTry t)
        {
            Release(t);
            _ = t.Send.ContinueWith(static s =>
            {
                if (s.IsCompletedSuccessfully) s.Result.Dispose();
                else _ = s.Exception;
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        void Discard(HedgedTry t, HttpResponseMessage response)
        {
            var status = (int)response.StatusCode;
            stats.ResponseCode(status);
            cluster.ReportUpstreamResponse(t.Host, status, response.Headers.Contains("x-envoy-immediate-health-check-fail"));
            response.Dispose();
            Release(t);
        }

        Task StopAsync()
        {
            foreach (var t in tries)
            {
                if (!t.PerTryFired && timeoutCts is { IsCancellationRequested: true })
                    cluster.ReportUpstreamResult(t.Host, context, false, ForwarderError.RequestTimedOut, timedOut: true);
                Abandon(t);
            }
            tries.Clear();
            // The route timeout, the connection manager's timers, the downstream going away, or the idle timeout.
            var error = timeoutCts is { IsCancellationRequested: true } || context.RequestAborted.IsCancellationRequested
                ? ForwarderError.RequestCanceled : ForwarderError.RequestTimedOut;
            return OnForwardErrorAsync(context, info, cluster, error, timeoutCts, serverName, perTryFired: false);
        }

        async Task CopyResponseAsync(HedgedTry winner, HttpResponseMessage response)
        {
            using var _ = response;
            info.UpstreamHost = winner.Host;
            info.UpstreamStartTimestamp = winner.StartTimestamp;
            if (winner.Number > 1) resources.UpstreamRqRetrySuccess.Inc();
            var token = winner.Cts.Token;
            try
            {
                context.Response.StatusCode = (int)response.StatusCode;
                if (!HttpProtocol.IsHttp2(context.Request.Protocol) && response.ReasonPhrase != ReasonPhrases.GetReasonPhrase((int)response.StatusCode))
                    context.Features.Get<IHttpResponseFeature>()!.ReasonPhrase = response.ReasonPhrase;
                await info.ApplyResponseAsync(context, response, token).ConfigureAwait(false);
                cluster.ReportUpstreamResult(winner.Host, context, true, ForwarderError.None, timedOut: false);
                await context.Response.StartAsync(token).ConfigureAwait(false);
                var source = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
                try
                {
                    while (true)
                    {
                        int read;
                        try
                        {
                            read = await source.ReadAsync(buffer, token).ConfigureAwait(false);
                        }
                        catch (Exception) when (!stop.IsCancellationRequested)
                        {
                            // The upstream reset mid-response.
                            stats.UpstreamRqRxReset.Inc();
                            info.Flags |= ResponseFlags.UpstreamRemoteReset;
                            context.Abort();
                            return;
                        }
                        if (read == 0) break;
                        if (idle > TimeSpan.Zero) idleCts.CancelAfter(idle);
                        await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), token).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                await info.TransformResponseTrailersAsync(context, response, token).ConfigureAwait(false);
                stats.UpstreamRqTime.Record(Stopwatch.GetElapsedTime(winner.StartTimestamp).TotalMilliseconds);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                await OnForwardErrorAsync(context, info, cluster,
                    timeoutCts is { IsCancellationRequested: true } || context.RequestAborted.IsCancellationRequested ? ForwarderError.ResponseBodyCanceled : ForwarderError.RequestTimedOut,
                    timeoutCts, serverName, perTryFired: false).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Writing downstream failed: the client went away.
                info.Flags |= ResponseFlags.DownstreamConnectionTermination;
                info.ResponseCodeDetails = "downstream_remote_disconnect";
                context.Abort();
            }
            finally
            {
                Release(winner);
            }
        }
    }

    private static HedgedTry Find(List<HedgedTry> tries, Task done)
    {
        foreach (var t in tries)
            if (t.Send == done || t.PerTry == done) return t;
        throw new UnreachableException("a completed task belongs to a try");
    }

    private static async Task<HttpResponseMessage> SendTryAsync(HttpMessageInvoker invoker, HttpRequestMessage request, CancellationToken ct)
    {
        await Task.Yield(); // the caller records the try before it can complete
        return await invoker.SendAsync(request, ct).ConfigureAwait(false);
    }
}
