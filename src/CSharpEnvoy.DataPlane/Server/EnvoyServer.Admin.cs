using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Server;

/// <summary>The server's side of the admin actions that change its state: health check fail/ok and listener drains.</summary>
internal sealed partial class EnvoyServer
{
    private int _drainStarted;

    /// <summary>Envoy's <c>failHealthcheck</c>: the health check filter answers 503, <c>server.live</c> drops to 0
    /// and the server reports DRAINING (/ready 503) until /healthcheck/ok.</summary>
    public void SetHealthCheckFailed(bool failed)
    {
        Health.HealthCheckFailed = failed;
        Stats.Gauge("server.live").Set(failed ? 0 : 1);
        Stats.Gauge("server.state").Set((int)State);
        _logger.LogInformation("health check {State} by admin", failed ? "failed" : "restored");
    }

    /// <summary>Admin /drain_listeners: stop accepting on every listener (or the INBOUND ones). With
    /// <paramref name="graceful"/> the drain sequence runs first, once: responses ask HTTP/1 clients to close, and
    /// the listeners stop after the drain time (--drain-time-s). Requests in flight finish either way.</summary>
    public void DrainListeners(bool inboundOnly, bool graceful)
    {
        var targets = new List<Listener.ListenerHost>();
        foreach (var l in _listeners) if (!inboundOnly || l.Model.Inbound) targets.Add(l);
        if (!graceful)
        {
            StopListening(targets);
            return;
        }
        // Envoy ignores a graceful drain request once the drain sequence has started.
        if (Interlocked.Exchange(ref _drainStarted, 1) == 1) return;
        var drain = StartDrain();
        foreach (var l in targets) l.StartDraining(drain);
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(Options.DrainTime, Options.TimeProvider, _drainCancel.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            StopListening(targets);
        });
    }

    private readonly CancellationTokenSource _drainCancel = new();

    private void StopListening(List<Listener.ListenerHost> targets)
    {
        foreach (var l in targets)
        {
            Stats.Counter("listener_manager.listener_stopped").Inc();
            _logger.LogInformation("listener '{Name}' stopped accepting connections", l.Model.Name);
            // Kestrel unbinds at once, then lets requests in flight finish for up to the drain time.
            _ = Task.Run(async () =>
            {
                using var cts = new CancellationTokenSource(Options.DrainTime);
                try
                {
                    await l.StopAsync(cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            });
        }
    }
}
