using System.Collections.Concurrent;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Ratelimit.V3;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary>What the test rate limit service answers, and what it was asked. One per server.</summary>
public sealed class RateLimitServiceState
{
    /// <summary>Decides the answer to each request; OK by default.</summary>
    public Func<RateLimitRequest, RateLimitResponse> Decide { get; set; } = _ => new RateLimitResponse { OverallCode = RateLimitResponse.Types.Code.Ok };

    public ConcurrentQueue<RateLimitRequest> Requests { get; } = new();
}

/// <summary>A real <c>envoy.service.ratelimit.v3.RateLimitService</c> over gRPC (h2c), for the global rate limit
/// filter's tests.</summary>
public sealed class TestRateLimitService(RateLimitServiceState state) : RateLimitService.RateLimitServiceBase
{
    public override Task<RateLimitResponse> ShouldRateLimit(RateLimitRequest request, ServerCallContext context)
    {
        state.Requests.Enqueue(request);
        return Task.FromResult(state.Decide(request));
    }

    /// <summary>Starts a rate limit service on 127.0.0.1 (ephemeral port).</summary>
    public static async Task<(TestBackend Server, RateLimitServiceState State)> StartAsync()
    {
        var state = new RateLimitServiceState();
        var server = await TestBackend.StartAppAsync(app => app.MapGrpcService<TestRateLimitService>(), HttpProtocols.Http2, services =>
        {
            services.AddGrpc();
            services.AddSingleton(state);
        });
        return (server, state);
    }

    /// <summary>An answer with the given overall code and one status per descriptor of <paramref name="request"/>.</summary>
    public static RateLimitResponse Answer(RateLimitRequest request, RateLimitResponse.Types.Code code, uint remaining = 0)
    {
        var response = new RateLimitResponse { OverallCode = code };
        foreach (var _ in request.Descriptors)
        {
            response.Statuses.Add(new RateLimitResponse.Types.DescriptorStatus
            {
                Code = code,
                CurrentLimit = new RateLimitResponse.Types.RateLimit { RequestsPerUnit = 10, Unit = RateLimitResponse.Types.RateLimit.Types.Unit.Minute, Name = "per-client" },
                LimitRemaining = remaining,
                DurationUntilReset = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(42)),
            });
        }
        return response;
    }
}
