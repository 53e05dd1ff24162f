using System.Globalization;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.DataPlane.Http;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>Envoy's <c>AccessLog::Filter</c>s, built once from the model; <see cref="Evaluate"/> decides per request.</summary>
internal abstract class AccessLogFilter
{
    public abstract bool Evaluate(in AccessLogContext c);

    public static AccessLogFilter Create(AccessLogFilterModel model) => model switch
    {
        StatusCodeFilterModel s => new Comparison(s.Op, s.Value, duration: false),
        DurationFilterModel d => new Comparison(d.Op, d.Value, duration: true),
        NotHealthCheckFilterModel => new NotHealthCheck(),
        ResponseFlagFilterModel r => new ResponseFlag(r.Flags),
        HeaderFilterModel h => new Header(h.Header),
        RuntimeFilterModel r => new Runtime(r.Numerator, r.Denominator, r.UseIndependentRandomness),
        AndFilterModel a => new All(a.Filters.Select(Create).ToArray()),
        OrFilterModel o => new Any(o.Filters.Select(Create).ToArray()),
        _ => throw new ArgumentOutOfRangeException(nameof(model)),
    };

    /// <summary>status_code_filter and duration_filter: the response code (0 without a response), or the request's
    /// duration in milliseconds, against the comparison's default value.</summary>
    private sealed class Comparison(ComparisonOp op, uint value, bool duration) : AccessLogFilter
    {
        public override bool Evaluate(in AccessLogContext c)
        {
            var lhs = duration ? c.MillisSinceStart(c.EndTimestamp) : c.ResponseCode;
            return op switch
            {
                ComparisonOp.Ge => lhs >= value,
                ComparisonOp.Le => lhs <= value,
                ComparisonOp.Ne => lhs != value,
                _ => lhs == value,
            };
        }
    }

    /// <summary>not_health_check_filter: requests the health check filter did not identify as health checks.</summary>
    private sealed class NotHealthCheck : AccessLogFilter
    {
        public override bool Evaluate(in AccessLogContext c) => !c.Info.HealthCheck;
    }

    /// <summary>response_flag_filter: any of the listed flags is set; with no list, any flag at all.</summary>
    private sealed class ResponseFlag : AccessLogFilter
    {
        private readonly ResponseFlags _mask;
        private readonly bool _any;

        public ResponseFlag(IReadOnlyList<string> flags)
        {
            _any = flags.Count == 0;
            foreach (var f in flags) _mask |= StreamInfo.ParseResponseFlag(f);
        }

        public override bool Evaluate(in AccessLogContext c) => _any ? c.Info.Flags != ResponseFlags.None : (c.Info.Flags & _mask) != 0;
    }

    /// <summary>header_filter: Envoy's header matcher against the request headers.</summary>
    private sealed class Header(HeaderMatcherModel matcher) : AccessLogFilter
    {
        private readonly string _name = matcher.Name.ToLowerInvariant();

        public override bool Evaluate(in AccessLogContext c)
        {
            string? value;
            if (_name.Length > 0 && _name[0] == ':')
            {
                var request = c.Http.Request;
                value = _name switch
                {
                    ":method" => request.Method,
                    ":authority" => request.Host.Value,
                    ":path" => request.Path.Value + request.QueryString.Value,
                    ":scheme" => request.Scheme,
                    _ => null,
                };
            }
            else
            {
                var v = c.Http.Request.Headers[_name];
                // Envoy matches several values of a header as one comma-joined value.
                value = v.Count switch { 0 => null, 1 => v[0], _ => string.Join(',', v.ToArray()) };
            }
            return matcher.Match(value);
        }
    }

    /// <summary>runtime_filter: samples percent_sampled of requests. Like Envoy, the decision is taken from the
    /// x-request-id (so every proxy on the path logs the same requests) unless use_independent_randomness is set.</summary>
    private sealed class Runtime(uint numerator, uint denominator, bool independent) : AccessLogFilter
    {
        public override bool Evaluate(in AccessLogContext c)
        {
            ulong random;
            var id = c.Info.RequestId;
            if (!independent && id is { Length: >= 8 } && ulong.TryParse(id.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var fromId))
                random = fromId;
            else random = (ulong)Random.Shared.NextInt64(long.MaxValue);
            return random % denominator < numerator;
        }
    }

    private sealed class All(AccessLogFilter[] filters) : AccessLogFilter
    {
        public override bool Evaluate(in AccessLogContext c)
        {
            foreach (var f in filters) if (!f.Evaluate(c)) return false;
            return true;
        }
    }

    private sealed class Any(AccessLogFilter[] filters) : AccessLogFilter
    {
        public override bool Evaluate(in AccessLogContext c)
        {
            foreach (var f in filters) if (f.Evaluate(c)) return true;
            return false;
        }
    }
}
