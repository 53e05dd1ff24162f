using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Tracing;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Trace.V3;
using HcmTracing = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing;

namespace CSharpEnvoy.Config.Translation;

/// <summary>The connection manager's <c>tracing</c> → <see cref="TracingModel"/>, with the provider's typed config.</summary>
internal static class TracingTranslator
{
    public static TracingModel? Translate(HcmTracing? t, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        if (t is null) return null;
        if (t.Provider is null)
        {
            // Envoy: tracing without a provider traces nothing (there is no bootstrap-level tracer in v3).
            errors.Warn(path, "tracing has no provider; no spans are produced");
            return null;
        }
        var pPath = path + ".provider";
        var ext = ListenerTranslator.ResolveExtension(ExtensionCategory.Tracer, t.Provider.Name, t.Provider.TypedConfig, pPath, "tracer", errors);
        if (ext is null) return null;
        if (t.Provider.TypedConfig is null)
        {
            errors.Add(pPath, $"'{ext.Name}' needs a typed_config");
            return null;
        }
        ZipkinModel? zipkin = null;
        OpenTelemetryModel? otel = null;
        var cPath = pPath + ".typed_config";
        TracerKind kind;
        if (ext.Name == ExtensionRegistry.ZipkinTracer)
        {
            kind = TracerKind.Zipkin;
            var z = t.Provider.TypedConfig.Unpack<ZipkinConfig>();
            if (string.IsNullOrEmpty(z.CollectorCluster)) errors.Add(cPath + ".collector_cluster", "collector_cluster is required");
            else CheckCluster(ext.Name, z.CollectorCluster, cPath + ".collector_cluster", errors, clusterExists);
            if (string.IsNullOrEmpty(z.CollectorEndpoint)) errors.Add(cPath + ".collector_endpoint", "collector_endpoint is required");
            if (z.CollectorEndpointVersion != ZipkinConfig.Types.CollectorEndpointVersion.HttpJson)
                errors.Add(cPath + ".collector_endpoint_version",
                    $"collector_endpoint_version {ProtoEnum.Name(z.CollectorEndpointVersion)} is not supported; use HTTP_JSON (Zipkin v2 JSON)");
            zipkin = new ZipkinModel(z.CollectorCluster, z.CollectorEndpoint,
                string.IsNullOrEmpty(z.CollectorHostname) ? z.CollectorCluster : z.CollectorHostname, z.TraceId128Bit, z.SharedSpanContext ?? true);
        }
        else
        {
            kind = TracerKind.OpenTelemetry;
            var o = t.Provider.TypedConfig.Unpack<OpenTelemetryConfig>();
            string? cluster = null;
            if (o.GrpcService is { } g)
            {
                cluster = g.EnvoyGrpc?.ClusterName;
                if (string.IsNullOrEmpty(cluster)) errors.Add(cPath + ".grpc_service.envoy_grpc.cluster_name", "cluster_name is required");
                else CheckCluster(ext.Name, cluster, cPath + ".grpc_service.envoy_grpc.cluster_name", errors, clusterExists);
            }
            // No grpc_service: spans are propagated but not exported, as in Envoy.
            otel = new OpenTelemetryModel(cluster, string.IsNullOrEmpty(o.ServiceName) ? "unknown_service:envoy" : o.ServiceName);
        }

        var tags = new List<CustomTagModel>();
        for (var i = 0; i < t.CustomTags.Count; i++)
        {
            var c = t.CustomTags[i];
            var tp = $"{path}.custom_tags[{i}]";
            if (string.IsNullOrEmpty(c.Tag)) errors.Add(tp + ".tag", "tag is required");
            switch (c.TypeCase)
            {
                case Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.Literal:
                    tags.Add(new CustomTagModel(c.Tag, c.Literal.Value, null, ""));
                    break;
                case Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.RequestHeader:
                    if (string.IsNullOrEmpty(c.RequestHeader.Name)) errors.Add(tp + ".request_header.name", "name is required");
                    tags.Add(new CustomTagModel(c.Tag, null, c.RequestHeader.Name.ToLowerInvariant(), c.RequestHeader.DefaultValue));
                    break;
                case Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.Environment:
                    var env = Environment.GetEnvironmentVariable(c.Environment.Name);
                    tags.Add(new CustomTagModel(c.Tag, string.IsNullOrEmpty(env) ? c.Environment.DefaultValue : env, null, ""));
                    break;
                case Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.None:
                    errors.Add(tp, "a custom tag needs literal, environment or request_header");
                    break;
                // metadata and value are refused by the support checker with their path.
            }
        }

        return new TracingModel
        {
            Kind = kind,
            Zipkin = zipkin,
            OpenTelemetry = otel,
            ClientSampling = Percent(t.ClientSampling, path + ".client_sampling", errors),
            RandomSampling = Percent(t.RandomSampling, path + ".random_sampling", errors),
            OverallSampling = Percent(t.OverallSampling, path + ".overall_sampling", errors),
            MaxPathTagLength = (int)(t.MaxPathTagLength ?? 256),
            CustomTags = tags,
            SpawnUpstreamSpan = t.SpawnUpstreamSpan ?? false,
        };
    }

    private static void CheckCluster(string tracer, string cluster, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        if (clusterExists is not null && !clusterExists(cluster)) errors.Add(path, $"{tracer}: unknown cluster '{cluster}'");
    }

    private static double Percent(Envoy.Type.V3.Percent? p, string path, ConfigErrors errors)
    {
        if (p is null) return 100;
        if (p.Value is < 0 or > 100 || double.IsNaN(p.Value)) errors.Add(path + ".value", $"a percentage must be in [0, 100] (found {p.Value})");
        return Math.Clamp(p.Value, 0, 100);
    }
}
