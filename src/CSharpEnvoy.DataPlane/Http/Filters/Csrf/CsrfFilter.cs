using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.Csrf;

/// <summary>
/// Envoy's <c>envoy.filters.http.csrf</c>: origin verification. For a POST, PUT, DELETE or PATCH the source origin
/// (the host and port of <c>Origin</c>, else of <c>Referer</c>) must be the target origin (the request's host) or
/// match one of <c>additional_origins</c>; otherwise the request gets 403 <c>Invalid origin</c>
/// (<c>csrf_origin_mismatch</c>). The policy is the route's most specific <c>CsrfPolicy</c>, else the filter's;
/// <c>shadow_enabled</c> without <c>filter_enabled</c> only counts. Stats <c>csrf.missing_source_origin</c>,
/// <c>csrf.request_invalid</c> and <c>csrf.request_valid</c> under the connection manager's prefix.
/// </summary>
internal sealed class CsrfFilter(CsrfPolicyModel policy, HttpFilterNames names, StatsStore stats, string statPrefix) : IHttpDecoderFilter
{
    private readonly Counter _missingSourceOrigin = stats.Counter(statPrefix, "csrf.missing_source_origin");
    private readonly Counter _requestInvalid = stats.Counter(statPrefix, "csrf.request_invalid");
    private readonly Counter _requestValid = stats.Counter(statPrefix, "csrf.request_valid");

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var p = names.MostSpecific<CsrfPolicyModel>(info) ?? policy;
        var enabled = HttpFilterChain.Sample(p.FilterEnabled);
        var shadow = p.ShadowEnabled is { } se && HttpFilterChain.Sample(se);
        if (!enabled && !shadow) return new ValueTask<bool>(true);
        var request = context.Request;
        if (!IsModifyMethod(request.Method)) return new ValueTask<bool>(true);

        var valid = true;
        var source = HostAndPort(request.Headers.Origin.ToString());
        if (source.Length == 0) source = HostAndPort(request.Headers.Referer.ToString());
        if (source.Length == 0)
        {
            valid = false;
            _missingSourceOrigin.Inc();
        }
        if (!IsValid(p, source, HostAndPort(request.Headers.Host.ToString())))
        {
            valid = false;
            _requestInvalid.Inc();
        }
        if (valid)
        {
            _requestValid.Inc();
            return new ValueTask<bool>(true);
        }
        if (!enabled) return new ValueTask<bool>(true); // shadow only
        return HttpFilterChain.Replied(LocalReply.SendAsync(context, StatusCodes.Status403Forbidden, "Invalid origin", hcm.LocalReplyServerName, info, "csrf_origin_mismatch"));
    }

    private static bool IsModifyMethod(string method) =>
        HttpMethods.IsPost(method) || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method) || HttpMethods.IsPatch(method);

    private static bool IsValid(CsrfPolicyModel p, string source, string target)
    {
        if (source == target) return true;
        foreach (var m in p.AdditionalOrigins)
            if (m.Match(source)) return true;
        return false;
    }

    /// <summary>Envoy's <c>hostAndPort</c>: of an absolute http(s) URL its host and port as written; any other
    /// value as it is.</summary>
    internal static string HostAndPort(string value)
    {
        if (value.Length == 0) return value;
        var schemeEnd = value.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0) return value;
        var scheme = value.AsSpan(0, schemeEnd);
        if (!scheme.Equals("http", StringComparison.OrdinalIgnoreCase) && !scheme.Equals("https", StringComparison.OrdinalIgnoreCase)) return value;
        var start = schemeEnd + 3;
        var end = value.IndexOfAny(s_authorityEnd, start);
        var authority = end < 0 ? value[start..] : value[start..end];
        return authority.Length == 0 ? value : authority;
    }

    private static readonly char[] s_authorityEnd = ['/', '?', '#'];
}
