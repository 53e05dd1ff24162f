using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http.Filters;

/// <summary>A response trailers feature that keeps the upstream's trailers for a filter instead of sending them (the
/// gRPC bridges move them into headers or the body).</summary>
internal sealed class CapturedTrailers : IHttpResponseTrailersFeature
{
    public IHeaderDictionary Trailers { get; set; } = new HeaderDictionary();
}
