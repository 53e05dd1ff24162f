using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Google.Protobuf.Collections;
using ProtoRateLimit = Envoy.Config.Route.V3.RateLimit;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates route and virtual host <c>rate_limits</c> (descriptor actions shared by the local and the
/// global rate limit filters).</summary>
internal static class RateLimitTranslator
{
    public static RateLimitPolicyModel[] Translate(RepeatedField<ProtoRateLimit> limits, string path, ConfigErrors errors)
    {
        if (limits.Count == 0) return Array.Empty<RateLimitPolicyModel>();
        var result = new RateLimitPolicyModel[limits.Count];
        for (var i = 0; i < limits.Count; i++)
        {
            var l = limits[i];
            var lPath = $"{path}[{i}]";
            var stage = l.Stage ?? 0;
            // Envoy: "stage" is limited to the 10 stages the filters may be set to.
            if (stage > 10) errors.Add(lPath + ".stage", "stage must be at most 10");
            if (l.Actions.Count == 0) errors.Add(lPath + ".actions", "a rate limit needs at least one action");
            var actions = new List<RateLimitActionModel>(l.Actions.Count);
            for (var j = 0; j < l.Actions.Count; j++)
                if (Action(l.Actions[j], $"{lPath}.actions[{j}]", errors) is { } a) actions.Add(a);
            result[i] = new RateLimitPolicyModel(stage, actions.ToArray());
        }
        return result;
    }

    private static RateLimitActionModel? Action(ProtoRateLimit.Types.Action a, string path, ConfigErrors errors)
    {
        switch (a.ActionSpecifierCase)
        {
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.DestinationCluster:
                return new RateLimitActionModel(RateLimitActionKind.DestinationCluster, "destination_cluster");
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.RemoteAddress:
                return new RateLimitActionModel(RateLimitActionKind.RemoteAddress, "remote_address");
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.RequestHeaders:
                var rh = a.RequestHeaders;
                if (string.IsNullOrEmpty(rh.HeaderName)) errors.Add(path + ".request_headers.header_name", "header_name is required");
                if (string.IsNullOrEmpty(rh.DescriptorKey)) errors.Add(path + ".request_headers.descriptor_key", "descriptor_key is required");
                return new RateLimitActionModel(RateLimitActionKind.RequestHeaders, rh.DescriptorKey)
                {
                    HeaderName = rh.HeaderName.ToLowerInvariant(),
                    SkipIfAbsent = rh.SkipIfAbsent,
                };
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.GenericKey:
                var gk = a.GenericKey;
                if (string.IsNullOrEmpty(gk.DescriptorValue)) errors.Add(path + ".generic_key.descriptor_value", "descriptor_value is required");
                return new RateLimitActionModel(RateLimitActionKind.GenericKey, string.IsNullOrEmpty(gk.DescriptorKey) ? "generic_key" : gk.DescriptorKey)
                {
                    DescriptorValue = gk.DescriptorValue,
                };
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.HeaderValueMatch:
                var hv = a.HeaderValueMatch;
                var hPath = path + ".header_value_match";
                if (string.IsNullOrEmpty(hv.DescriptorValue)) errors.Add(hPath + ".descriptor_value", "descriptor_value is required");
                if (hv.Headers.Count == 0) errors.Add(hPath + ".headers", "at least one header matcher is required");
                var headers = new List<HeaderMatcherModel>(hv.Headers.Count);
                for (var i = 0; i < hv.Headers.Count; i++)
                    if (RouteTranslator.HeaderMatcher(hv.Headers[i], $"{hPath}.headers[{i}]", errors) is { } m) headers.Add(m);
                return new RateLimitActionModel(RateLimitActionKind.HeaderValueMatch, string.IsNullOrEmpty(hv.DescriptorKey) ? "header_match" : hv.DescriptorKey)
                {
                    DescriptorValue = hv.DescriptorValue,
                    DefaultValue = string.IsNullOrEmpty(hv.DefaultValue) ? null : hv.DefaultValue,
                    ExpectMatch = hv.ExpectMatch ?? true,
                    Headers = headers.ToArray(),
                };
            case ProtoRateLimit.Types.Action.ActionSpecifierOneofCase.None:
                errors.Add(path, "a rate limit action needs one of its kinds");
                return null;
            default:
                return null; // the other kinds are refused by the support checker with their path
        }
    }
}
