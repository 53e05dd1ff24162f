using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Tests.Loading;

namespace CSharpEnvoy.Config.Tests.Translation;

/// <summary>Route and virtual host <c>hedge_policy</c>.</summary>
public sealed class HedgePolicyConfigTests
{
    private static string Bootstrap(string vhostHedge, string routeHedge) => $$"""
        static_resources:
          listeners:
          - name: l0
            address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  route_config:
                    virtual_hosts:
                    - name: vh
                      domains: ["*"]
                      {{vhostHedge}}
                      routes:
                      - match: { prefix: "/" }
                        route:
                          cluster: c
                          {{routeHedge}}
          clusters:
          - name: c
            connect_timeout: 1s
            load_assignment:
              cluster_name: c
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
        """;

    [Fact]
    public void HedgeOnPerTryTimeout_OnRouteAndVirtualHost()
    {
        var (model, errors) = BootstrapLoadingTests.Load(Bootstrap("hedge_policy: { hedge_on_per_try_timeout: true }",
            "hedge_policy: { hedge_on_per_try_timeout: false, initial_requests: 1, additional_request_chance: { numerator: 0 } }"));
        Assert.False(errors.HasErrors, errors.ToString());
        var vhost = model!.Listeners[0].FilterChains[0].HttpConnectionManager!.RouteConfig!.VirtualHostList[0];
        Assert.True(vhost.HedgeOnPerTryTimeout);
        Assert.False(vhost.Routes.GetRoute(0).Route!.HedgeOnPerTryTimeout);

        var (unset, _) = BootstrapLoadingTests.Load(Bootstrap("", ""));
        var vh = unset!.Listeners[0].FilterChains[0].HttpConnectionManager!.RouteConfig!.VirtualHostList[0];
        Assert.Null(vh.HedgeOnPerTryTimeout);
        Assert.Null(vh.Routes.GetRoute(0).Route!.HedgeOnPerTryTimeout);
    }

    [Fact]
    public void InitialRequestsAndAdditionalChance_OtherThanTheDefault_AreRefusedWithTheirPath()
    {
        var errors = BootstrapLoadingTests.Load(Bootstrap("hedge_policy: { initial_requests: 2 }",
            "hedge_policy: { additional_request_chance: { numerator: 10 } }")).Errors;
        const string vh = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0]";
        Assert.Contains(errors.Errors, e => e.Path == vh + ".hedge_policy.initial_requests" && e.Message.Contains("initial_requests 2 is not supported", StringComparison.Ordinal));
        Assert.Contains(errors.Errors, e => e.Path == vh + ".routes[0].route.hedge_policy.additional_request_chance");
    }
}
