namespace CSharpEnvoy.Config.Model.Xds;

/// <summary>The ADS transport: state of the world (<c>GRPC</c>) or incremental (<c>DELTA_GRPC</c>).</summary>
internal enum XdsApiType { StateOfTheWorld, Delta }

/// <summary>
/// The bootstrap's <c>dynamic_resources</c>: one aggregated (ADS) gRPC stream to the static cluster
/// <see cref="AdsCluster"/>, and whether listeners and clusters come from it.
/// </summary>
internal sealed record XdsModel(string AdsCluster, XdsApiType ApiType, bool Lds, bool Cds,
    TimeSpan LdsInitialFetchTimeout, TimeSpan CdsInitialFetchTimeout);
