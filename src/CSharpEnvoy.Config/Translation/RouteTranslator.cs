using System.Collections.Immutable;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Route;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf.Collections;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates a <c>RouteConfiguration</c> and compiles it into matchable tables.</summary>
internal static class RouteTranslator
{
    /// <param name="clusterExists">For <c>validate_clusters</c>; null when the cluster set is not known (it is then not checked).</param>
    /// <param name="validateByDefault">Envoy validates clusters of inline route configs by default, not of RDS ones.</param>
    public static RouteConfigurationModel Translate(RouteConfiguration rc, string path, ConfigErrors errors, Func<string, bool>? clusterExists, bool validateByDefault)
    {
        var validate = (rc.ValidateClusters ?? validateByDefault) ? clusterExists : null;
        var name = rc.Name;
        var builder = new VirtualHostTable<VirtualHostModel>.Builder(name, rc.IgnorePortInHostMatching);
        var vhosts = new List<VirtualHostModel>();
        var vhostNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < rc.VirtualHosts.Count; i++)
        {
            var vhPath = $"{ConfigErrors.Join(path, "virtual_hosts")}[{i}]";
            var vh = rc.VirtualHosts[i];
            if (string.IsNullOrEmpty(vh.Name)) errors.Add(vhPath + ".name", "virtual host name must not be empty");
            else if (!vhostNames.Add(vh.Name)) errors.Add(vhPath + ".name", $"virtual host name '{vh.Name}' is used twice in route configuration '{name}'");
            if (vh.Domains.Count == 0) errors.Add(vhPath + ".domains", "a virtual host needs at least one domain");
            var model = TranslateVirtualHost(vh, vhPath, errors, validate);
            vhosts.Add(model);
            builder.Add(model, vh.Domains, vh.Name);
        }
        VirtualHostTable<VirtualHostModel> table;
        if (builder.TryBuild(out var built, out var vhErrors)) table = built;
        else
        {
            foreach (var e in vhErrors) errors.Add(ConfigErrors.Join(path, "virtual_hosts"), e);
            table = VirtualHostTable<VirtualHostModel>.Empty;
        }
        return new RouteConfigurationModel
        {
            Name = name,
            VirtualHosts = table,
            VirtualHostList = vhosts,
            RequestHeaders = Mutation(rc.RequestHeadersToAdd, rc.RequestHeadersToRemove, path, "request", errors),
            ResponseHeaders = Mutation(rc.ResponseHeadersToAdd, rc.ResponseHeadersToRemove, path, "response", errors),
            MostSpecificHeaderMutationsWins = rc.MostSpecificHeaderMutationsWins,
            TypedPerFilterConfig = PerFilterConfigTranslator.Translate(rc.TypedPerFilterConfig, path, errors),
        };
    }

    private static VirtualHostModel TranslateVirtualHost(VirtualHost vh, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        var routes = new List<(RouteMatchModel, RouteModel)>();
        for (var i = 0; i < vh.Routes.Count; i++)
        {
            var rPath = $"{ConfigErrors.Join(path, "routes")}[{i}]";
            var r = TranslateRoute(vh.Routes[i], rPath, errors, clusterExists);
            if (r is not null) routes.Add((r.Match, r));
        }
        return new VirtualHostModel
        {
            Name = vh.Name,
            Domains = vh.Domains.ToArray(),
            Routes = new RouteTable<RouteModel>(routes),
            RequestHeaders = Mutation(vh.RequestHeadersToAdd, vh.RequestHeadersToRemove, path, "request", errors),
            ResponseHeaders = Mutation(vh.ResponseHeadersToAdd, vh.ResponseHeadersToRemove, path, "response", errors),
            RequireTls = (TlsRequirement)(int)vh.RequireTls,
            RetryPolicy = RouterPolicyTranslator.Retry(vh.RetryPolicy, path + ".retry_policy", errors),
            HedgeOnPerTryTimeout = RouterPolicyTranslator.Hedge(vh.HedgePolicy, path + ".hedge_policy", errors),
            IncludeRequestAttemptCount = vh.IncludeRequestAttemptCount,
            IncludeAttemptCountInResponse = vh.IncludeAttemptCountInResponse,
            PerRequestBufferLimitBytes = vh.PerRequestBufferLimitBytes,
            TypedPerFilterConfig = PerFilterConfigTranslator.Translate(vh.TypedPerFilterConfig, path, errors),
            RateLimits = RateLimitTranslator.Translate(vh.RateLimits, path + ".rate_limits", errors),
            VirtualClusters = VirtualClusters(vh.VirtualClusters, path + ".virtual_clusters", errors),
#pragma warning disable CS0612 // deprecated in the API, still honoured by Envoy's CORS filter
            Cors = vh.Cors is null ? null : Cors(vh.Cors, path + ".cors", errors),
#pragma warning restore CS0612
        };
    }

    /// <summary>The deprecated <c>cors</c> field of virtual hosts and routes (<c>envoy.config.route.v3.CorsPolicy</c>).</summary>
    private static Model.HttpFilters.CorsPolicyModel Cors(Envoy.Config.Route.V3.CorsPolicy c, string path, ConfigErrors errors) =>
        HttpFilterTranslator.CorsPolicy(c.AllowOriginStringMatch, c.AllowMethods, c.AllowHeaders, c.ExposeHeaders, c.MaxAge,
            c.AllowCredentials, c.FilterEnabled, c.ShadowEnabled, c.AllowPrivateNetworkAccess, c.ForwardNotMatchingPreflights, path, errors);

    /// <summary>A list of string matchers (<paramref name="path"/>[i] for each); a refused one is left out.</summary>
    internal static StringMatcherModel[] StringMatchers(IList<Envoy.Type.Matcher.V3.StringMatcher> list, string path, ConfigErrors errors)
    {
        var result = new List<StringMatcherModel>(list.Count);
        for (var i = 0; i < list.Count; i++)
            if (StringMatcher(list[i], $"{path}[{i}]", errors) is { } m) result.Add(m);
        return result.ToArray();
    }

    private static List<VirtualClusterModel> VirtualClusters(RepeatedField<VirtualCluster> vcs, string path, ConfigErrors errors)
    {
        var result = new List<VirtualClusterModel>();
        for (var i = 0; i < vcs.Count; i++)
        {
            var vc = vcs[i];
            var p = $"{path}[{i}]";
            if (string.IsNullOrEmpty(vc.Name)) errors.Add(p + ".name", "name is required");
            if (vc.Headers.Count == 0) errors.Add(p + ".headers", "a virtual cluster needs at least one header matcher");
            var headers = new List<Model.Matchers.HeaderMatcherModel>();
            for (var j = 0; j < vc.Headers.Count; j++)
                if (HeaderMatcher(vc.Headers[j], $"{p}.headers[{j}]", errors) is { } h) headers.Add(h);
            result.Add(new VirtualClusterModel(vc.Name, headers));
        }
        // Envoy adds the catch-all "other" whenever virtual clusters are configured.
        if (result.Count > 0) result.Add(VirtualClusterModel.Other());
        return result;
    }

    private static RouteModel? TranslateRoute(Envoy.Config.Route.V3.Route r, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        var match = TranslateMatch(r.Match, ConfigErrors.Join(path, "match"), errors, out var matchPrefix);
        RouteActionModel? action = null;
        RedirectActionModel? redirect = null;
        DirectResponseModel? direct = null;
        switch (r.ActionCase)
        {
            case Envoy.Config.Route.V3.Route.ActionOneofCase.Route_:
                action = TranslateAction(r.Route_, ConfigErrors.Join(path, "route"), errors, clusterExists, match);
                break;
            case Envoy.Config.Route.V3.Route.ActionOneofCase.Redirect:
                redirect = TranslateRedirect(r.Redirect, ConfigErrors.Join(path, "redirect"), errors, match);
                break;
            case Envoy.Config.Route.V3.Route.ActionOneofCase.DirectResponse:
                direct = TranslateDirectResponse(r.DirectResponse, ConfigErrors.Join(path, "direct_response"), errors);
                break;
            case Envoy.Config.Route.V3.Route.ActionOneofCase.None:
                errors.Add(path, "a route needs one of route, redirect or direct_response");
                break;
            default:
                break; // filter_action / non_forwarding_action are rejected by the support checker
        }
        if (match is null) return null;
        return new RouteModel
        {
            Name = r.Name,
            Match = match,
            MatchPrefix = matchPrefix,
            Route = action,
            Redirect = redirect,
            DirectResponse = direct,
            RequestHeaders = Mutation(r.RequestHeadersToAdd, r.RequestHeadersToRemove, path, "request", errors),
            ResponseHeaders = Mutation(r.ResponseHeadersToAdd, r.ResponseHeadersToRemove, path, "response", errors),
            PerRequestBufferLimitBytes = r.PerRequestBufferLimitBytes,
            TypedPerFilterConfig = PerFilterConfigTranslator.Translate(r.TypedPerFilterConfig, path, errors),
            DecoratorOperation = Decorator(r.Decorator, path, errors),
            DecoratorPropagate = r.Decorator?.Propagate ?? true,
        };
    }

    private static string? Decorator(Decorator? d, string path, ConfigErrors errors)
    {
        if (d is null) return null;
        if (d.Operation.Length == 0) errors.Add(path + ".decorator.operation", "operation must not be empty");
        return d.Operation;
    }

    private static RouteMatchModel? TranslateMatch(RouteMatch? m, string path, ConfigErrors errors, out string? matchPrefix)
    {
        matchPrefix = null;
        if (m is null)
        {
            errors.Add(path, "a route needs a match");
            return null;
        }
        var caseSensitive = m.CaseSensitive ?? true;
        RouteMatchModel? model;
        switch (m.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                model = RouteMatchModel.ForPrefix(m.Prefix, caseSensitive);
                matchPrefix = m.Prefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.Path:
                model = RouteMatchModel.ForPath(m.Path, caseSensitive);
                matchPrefix = m.Path;
                break;
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                if (!RouteMatchModel.IsValidPathSeparatedPrefix(m.PathSeparatedPrefix))
                {
                    errors.Add(path + ".path_separated_prefix", $"'{m.PathSeparatedPrefix}' is not a valid path_separated_prefix: it must start with '/', not end with '/', and contain no '?' or '#'");
                    return null;
                }
                model = RouteMatchModel.ForPathSeparatedPrefix(m.PathSeparatedPrefix, caseSensitive);
                matchPrefix = m.PathSeparatedPrefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                var regex = Regex(m.SafeRegex, path + ".safe_regex", errors);
                if (regex is null) return null;
                model = RouteMatchModel.ForSafeRegex(regex);
                break;
            case RouteMatch.PathSpecifierOneofCase.None:
                errors.Add(path, "a route match needs one of prefix, path, safe_regex or path_separated_prefix");
                return null;
            default:
                return null; // connect_matcher, path_match_policy: rejected by the support checker
        }
        var headers = ImmutableArray.CreateBuilder<HeaderMatcherModel>();
        for (var i = 0; i < m.Headers.Count; i++)
        {
            var h = HeaderMatcher(m.Headers[i], $"{path}.headers[{i}]", errors);
            if (h is not null) headers.Add(h);
        }
        var queries = ImmutableArray.CreateBuilder<QueryParameterMatcherModel>();
        for (var i = 0; i < m.QueryParameters.Count; i++)
        {
            var q = m.QueryParameters[i];
            var qPath = $"{path}.query_parameters[{i}]";
            if (string.IsNullOrEmpty(q.Name))
            {
                errors.Add(qPath + ".name", "query parameter name must not be empty");
                continue;
            }
            switch (q.QueryParameterMatchSpecifierCase)
            {
                case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.StringMatch:
                    var sm = StringMatcher(q.StringMatch, qPath + ".string_match", errors);
                    if (sm is not null) queries.Add(QueryParameterMatcherModel.ForStringMatch(q.Name, sm));
                    break;
                case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.PresentMatch:
                    queries.Add(QueryParameterMatcherModel.ForPresent(q.Name, q.PresentMatch));
                    break;
                default:
                    // Envoy: a parameter matcher with neither specifier only requires the parameter to be present.
                    queries.Add(QueryParameterMatcherModel.ForPresent(q.Name));
                    break;
            }
        }
        return model.PathRegex is not null
            ? new RouteMatchModel(model.PathRegex) { Headers = headers.ToImmutable(), QueryParameters = queries.ToImmutable(), Grpc = m.Grpc is not null }
            : new RouteMatchModel(model.PathKind, model.PathValue) { CaseSensitive = caseSensitive, Headers = headers.ToImmutable(), QueryParameters = queries.ToImmutable(), Grpc = m.Grpc is not null };
    }

    internal static HeaderMatcherModel? HeaderMatcher(Envoy.Config.Route.V3.HeaderMatcher h, string path, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(h.Name))
        {
            errors.Add(path + ".name", "header name must not be empty");
            return null;
        }
        var name = h.Name.ToLowerInvariant();
        var invert = h.InvertMatch;
        var missingAsEmpty = h.TreatMissingHeaderAsEmpty;
        switch (h.HeaderMatchSpecifierCase)
        {
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch:
                return HeaderMatcherModel.ForDeprecatedExact(name, h.ExactMatch, invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch:
                var re = Regex(h.SafeRegexMatch, path + ".safe_regex_match", errors);
                return re is null ? null : HeaderMatcherModel.ForStringMatch(name, StringMatcherModel.SafeRegex(re), invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch:
                if (h.RangeMatch.Start >= h.RangeMatch.End)
                {
                    errors.Add(path + ".range_match", $"range start ({h.RangeMatch.Start}) must be less than end ({h.RangeMatch.End})");
                    return null;
                }
                return HeaderMatcherModel.ForRange(name, h.RangeMatch.Start, h.RangeMatch.End, invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch:
                return HeaderMatcherModel.ForPresent(name, h.PresentMatch, invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch:
                return HeaderMatcherModel.ForStringMatch(name, StringMatcherModel.Prefix(h.PrefixMatch), invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch:
                return HeaderMatcherModel.ForStringMatch(name, StringMatcherModel.Suffix(h.SuffixMatch), invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch:
                return HeaderMatcherModel.ForStringMatch(name, StringMatcherModel.Contains(h.ContainsMatch), invert, missingAsEmpty);
            case Envoy.Config.Route.V3.HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch:
                var sm = StringMatcher(h.StringMatch, path + ".string_match", errors);
                return sm is null ? null : HeaderMatcherModel.ForStringMatch(name, sm, invert, missingAsEmpty);
            default:
                // No specifier: Envoy treats it as "header present".
                return HeaderMatcherModel.ForPresent(name, true, invert, missingAsEmpty);
        }
    }

    internal static StringMatcherModel? StringMatcher(Envoy.Type.Matcher.V3.StringMatcher m, string path, ConfigErrors errors)
    {
        switch (m.MatchPatternCase)
        {
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Exact: return StringMatcherModel.Exact(m.Exact, m.IgnoreCase);
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Prefix:
                if (m.Prefix.Length == 0) { errors.Add(path + ".prefix", "prefix must not be empty"); return null; }
                return StringMatcherModel.Prefix(m.Prefix, m.IgnoreCase);
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Suffix:
                if (m.Suffix.Length == 0) { errors.Add(path + ".suffix", "suffix must not be empty"); return null; }
                return StringMatcherModel.Suffix(m.Suffix, m.IgnoreCase);
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Contains:
                if (m.Contains.Length == 0) { errors.Add(path + ".contains", "contains must not be empty"); return null; }
                return StringMatcherModel.Contains(m.Contains, m.IgnoreCase);
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.SafeRegex:
                if (m.IgnoreCase) { errors.Add(path + ".ignore_case", "ignore_case has no effect on safe_regex; use (?i) in the pattern"); return null; }
                var re = Regex(m.SafeRegex, path + ".safe_regex", errors);
                return re is null ? null : StringMatcherModel.SafeRegex(re);
            case Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.None:
                errors.Add(path, "a string matcher needs one of exact, prefix, suffix, contains or safe_regex");
                return null;
            default:
                errors.Add(path, $"string matcher '{m.MatchPatternCase}' is not supported");
                return null;
        }
    }

    internal static RegexMatcherModel? Regex(Envoy.Type.Matcher.V3.RegexMatcher? m, string path, ConfigErrors errors)
    {
        if (m is null || string.IsNullOrEmpty(m.Regex))
        {
            errors.Add(path + ".regex", "regex must not be empty");
            return null;
        }
        if (RegexMatcherModel.TryCreate(m.Regex, out var model, out var error)) return model;
        errors.Add(path + ".regex", error);
        return null;
    }

    private static RouteActionModel? TranslateAction(RouteAction a, string path, ConfigErrors errors, Func<string, bool>? clusterExists, RouteMatchModel? match)
    {
        string? cluster = null, clusterHeader = null;
        List<WeightedClusterEntry>? weighted = null;
        ulong total = 0;
        switch (a.ClusterSpecifierCase)
        {
            case RouteAction.ClusterSpecifierOneofCase.Cluster:
                if (string.IsNullOrEmpty(a.Cluster)) errors.Add(path + ".cluster", "cluster name must not be empty");
                else if (clusterExists is not null && !clusterExists(a.Cluster))
                    errors.Add(path + ".cluster", $"route: unknown cluster '{a.Cluster}'");
                cluster = a.Cluster;
                break;
            case RouteAction.ClusterSpecifierOneofCase.ClusterHeader:
                if (string.IsNullOrEmpty(a.ClusterHeader)) errors.Add(path + ".cluster_header", "cluster_header must not be empty");
                clusterHeader = a.ClusterHeader.ToLowerInvariant();
                break;
            case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                var wc = a.WeightedClusters;
                var wPath = path + ".weighted_clusters";
                weighted = new List<WeightedClusterEntry>();
                if (wc.Clusters.Count == 0) errors.Add(wPath + ".clusters", "weighted_clusters needs at least one cluster");
                for (var i = 0; i < wc.Clusters.Count; i++)
                {
                    var c = wc.Clusters[i];
                    var cPath = $"{wPath}.clusters[{i}]";
                    if (string.IsNullOrEmpty(c.Name)) errors.Add(cPath + ".name", "cluster name must not be empty");
                    else if (clusterExists is not null && !clusterExists(c.Name)) errors.Add(cPath + ".name", $"route: unknown weighted cluster '{c.Name}'");
                    var w = c.Weight ?? 0;
                    total += w;
                    weighted.Add(new WeightedClusterEntry(c.Name, w, total,
                        Mutation(c.RequestHeadersToAdd, c.RequestHeadersToRemove, cPath, "request", errors),
                        Mutation(c.ResponseHeadersToAdd, c.ResponseHeadersToRemove, cPath, "response", errors)));
                }
                if (wc.TotalWeight is uint tw && tw != total)
                    errors.Add(wPath + ".total_weight", $"sum of weights in the weighted_cluster ({total}) should add up to total_weight ({tw})");
                if (total == 0 && wc.Clusters.Count > 0) errors.Add(wPath, "the sum of weights must be greater than 0");
                break;
            case RouteAction.ClusterSpecifierOneofCase.None:
                errors.Add(path, "one of cluster, cluster_header or weighted_clusters is required");
                break;
            default:
                break; // cluster specifier plugins: rejected by the support checker
        }

        RegexMatcherModel? rewritePattern = null;
        string? rewriteSubstitution = null;
        if (!string.IsNullOrEmpty(a.PrefixRewrite) && a.RegexRewrite is not null)
            errors.Add(path, "prefix_rewrite and regex_rewrite cannot both be set");
        if (!string.IsNullOrEmpty(a.PrefixRewrite) && match?.PathRegex is not null)
            errors.Add(path + ".prefix_rewrite", "prefix_rewrite cannot be used with a safe_regex match");
        if (a.RegexRewrite is { } rr)
        {
            rewritePattern = Regex(rr.Pattern, path + ".regex_rewrite.pattern", errors);
            rewriteSubstitution = rr.Substitution;
            if (rewritePattern is not null && !rewritePattern.TryValidateSubstitution(rr.Substitution, out var subError))
                errors.Add(path + ".regex_rewrite.substitution", subError);
        }

        var hostRewrite = HostRewriteKind.None;
        string? hostValue = null;
        switch (a.HostRewriteSpecifierCase)
        {
            case RouteAction.HostRewriteSpecifierOneofCase.HostRewriteLiteral:
                hostRewrite = HostRewriteKind.Literal;
                hostValue = a.HostRewriteLiteral;
                break;
            case RouteAction.HostRewriteSpecifierOneofCase.AutoHostRewrite:
                if (a.AutoHostRewrite == true) hostRewrite = HostRewriteKind.Auto;
                break;
            case RouteAction.HostRewriteSpecifierOneofCase.HostRewriteHeader:
                hostRewrite = HostRewriteKind.Header;
                hostValue = a.HostRewriteHeader.ToLowerInvariant();
                break;
        }

        var upgrades = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < a.UpgradeConfigs.Count; i++)
        {
            var u = a.UpgradeConfigs[i];
            if (string.IsNullOrEmpty(u.UpgradeType)) errors.Add($"{path}.upgrade_configs[{i}].upgrade_type", "upgrade_type is required");
            else if (!upgrades.TryAdd(u.UpgradeType.ToLowerInvariant(), u.Enabled ?? true))
                errors.Add($"{path}.upgrade_configs[{i}].upgrade_type", $"duplicate upgrade type '{u.UpgradeType}'");
        }

        return new RouteActionModel
        {
            Cluster = cluster,
            ClusterHeader = clusterHeader,
            WeightedClusters = weighted,
            TotalWeight = total,
            ClusterNotFoundResponseCode = a.ClusterNotFoundResponseCode switch
            {
                RouteAction.Types.ClusterNotFoundResponseCode.NotFound => 404,
                RouteAction.Types.ClusterNotFoundResponseCode.InternalServerError => 500,
                _ => 503,
            },
            PrefixRewrite = string.IsNullOrEmpty(a.PrefixRewrite) ? null : a.PrefixRewrite,
            RegexRewritePattern = rewritePattern,
            RegexRewriteSubstitution = rewriteSubstitution,
            HostRewrite = hostRewrite,
            HostRewriteValue = hostValue,
            Timeout = a.Timeout?.ToTimeSpan() ?? TimeSpan.FromSeconds(15),
            IdleTimeout = a.IdleTimeout?.ToTimeSpan(),
            HighPriority = a.Priority == Envoy.Config.Core.V3.RoutingPriority.High,
            UpgradeTypes = upgrades,
            HashPolicies = HashPolicyTranslator.Translate(a, path, errors),
            RetryPolicy = RouterPolicyTranslator.Retry(a.RetryPolicy, path + ".retry_policy", errors),
            HedgeOnPerTryTimeout = RouterPolicyTranslator.Hedge(a.HedgePolicy, path + ".hedge_policy", errors),
            MirrorPolicies = RouterPolicyTranslator.Mirrors(a.RequestMirrorPolicies, path + ".request_mirror_policies", errors, clusterExists),
            RateLimits = RateLimitTranslator.Translate(a.RateLimits, path + ".rate_limits", errors),
            MaxStreamDuration = RouterPolicyTranslator.MaxStreamDuration(a.MaxStreamDuration, path + ".max_stream_duration", errors),
#pragma warning disable CS0612 // deprecated in the API, still honoured by Envoy
            IncludeVirtualHostRateLimits = a.IncludeVhRateLimits ?? false,
            Cors = a.Cors is null ? null : Cors(a.Cors, path + ".cors", errors),
#pragma warning restore CS0612
        };
    }

    private static RedirectActionModel TranslateRedirect(RedirectAction r, string path, ConfigErrors errors, RouteMatchModel? match)
    {
        string? scheme = r.SchemeRewriteSpecifierCase switch
        {
            RedirectAction.SchemeRewriteSpecifierOneofCase.HttpsRedirect => r.HttpsRedirect ? "https" : null,
            RedirectAction.SchemeRewriteSpecifierOneofCase.SchemeRedirect => r.SchemeRedirect.ToLowerInvariant(),
            _ => null,
        };
        RegexMatcherModel? pattern = null;
        if (r.RegexRewrite is { } rr) pattern = Regex(rr.Pattern, path + ".regex_rewrite.pattern", errors);
        if (!string.IsNullOrEmpty(r.PrefixRewrite) && match?.PathRegex is not null)
            errors.Add(path + ".prefix_rewrite", "prefix_rewrite cannot be used with a safe_regex match");
        return new RedirectActionModel
        {
            Scheme = scheme,
            Host = string.IsNullOrEmpty(r.HostRedirect) ? null : r.HostRedirect,
            Port = r.PortRedirect == 0 ? null : (int)r.PortRedirect,
            Path = string.IsNullOrEmpty(r.PathRedirect) ? null : r.PathRedirect,
            PrefixRewrite = r.PathRewriteSpecifierCase == RedirectAction.PathRewriteSpecifierOneofCase.PrefixRewrite ? r.PrefixRewrite : null,
            RegexRewritePattern = pattern,
            RegexRewriteSubstitution = r.RegexRewrite?.Substitution,
            ResponseCode = r.ResponseCode switch
            {
                RedirectAction.Types.RedirectResponseCode.Found => 302,
                RedirectAction.Types.RedirectResponseCode.SeeOther => 303,
                RedirectAction.Types.RedirectResponseCode.TemporaryRedirect => 307,
                RedirectAction.Types.RedirectResponseCode.PermanentRedirect => 308,
                _ => 301,
            },
            StripQuery = r.StripQuery,
        };
    }

    private static DirectResponseModel? TranslateDirectResponse(DirectResponseAction d, string path, ConfigErrors errors)
    {
        if (d.Status is < 200 or >= 600)
        {
            errors.Add(path + ".status", $"status {d.Status} is out of range [200, 600)");
            return null;
        }
        byte[]? body = null;
        if (d.Body is { } ds) body = DataSourceBytes(ds, path + ".body", errors);
        if (body is { Length: > 4096 })
            errors.Add(path + ".body", $"response body size is {body.Length} bytes; maximum is 4096");
        return new DirectResponseModel((int)d.Status, body);
    }

    /// <summary>Reads an Envoy <c>DataSource</c> (file, inline bytes/string, environment variable).</summary>
    internal static byte[]? DataSourceBytes(DataSource ds, string path, ConfigErrors errors)
    {
        switch (ds.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString: return System.Text.Encoding.UTF8.GetBytes(ds.InlineString);
            case DataSource.SpecifierOneofCase.InlineBytes: return ds.InlineBytes.ToByteArray();
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllBytes(ds.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(path + ".filename", $"cannot read '{ds.Filename}': {ex.Message}");
                    return null;
                }
            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                var v = Environment.GetEnvironmentVariable(ds.EnvironmentVariable);
                if (v is null) errors.Add(path + ".environment_variable", $"environment variable '{ds.EnvironmentVariable}' is not set");
                return v is null ? null : System.Text.Encoding.UTF8.GetBytes(v);
            default:
                return null;
        }
    }

    internal static HeaderMutationModel Mutation(RepeatedField<HeaderValueOption> add, RepeatedField<string> remove, string path, string direction, ConfigErrors errors)
    {
        if (add.Count == 0 && remove.Count == 0) return HeaderMutationModel.Empty;
        var adds = new List<HeaderToAdd>(add.Count);
        for (var i = 0; i < add.Count; i++)
        {
            var o = add[i];
            var oPath = $"{path}.{direction}_headers_to_add[{i}]";
            if (o.Header is null || string.IsNullOrEmpty(o.Header.Key))
            {
                errors.Add(oPath + ".header.key", "header key must not be empty");
                continue;
            }
            var key = o.Header.Key.ToLowerInvariant();
            if (key[0] == ':' || key == "host")
            {
                errors.Add(oPath + ".header.key", $"'{o.Header.Key}' cannot be set by headers_to_add");
                continue;
            }
            var raw = o.Header.RawValue.Length > 0 ? o.Header.RawValue.ToStringUtf8() : o.Header.Value;
            var format = HeaderValueFormat.Parse(raw, out var formatError);
            if (format is null)
            {
                errors.Add(oPath + ".header.value", formatError!);
                continue;
            }
            HeaderAppendAction action;
            if (o.Append is bool append)
            {
                if (o.AppendAction != HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd)
                    errors.Add(oPath, "append and append_action cannot both be set");
                action = append ? HeaderAppendAction.AppendIfExistsOrAdd : HeaderAppendAction.OverwriteIfExistsOrAdd;
            }
            else action = (HeaderAppendAction)(int)o.AppendAction;
            adds.Add(new HeaderToAdd(key, format, action, o.KeepEmptyValue));
        }
        var removes = new List<string>(remove.Count);
        for (var i = 0; i < remove.Count; i++)
        {
            var name = remove[i].ToLowerInvariant();
            if (name.Length == 0 || name[0] == ':' || name == "host")
            {
                errors.Add($"{path}.{direction}_headers_to_remove[{i}]", $"'{remove[i]}' cannot be removed");
                continue;
            }
            removes.Add(name);
        }
        return new HeaderMutationModel(adds, removes);
    }
}
