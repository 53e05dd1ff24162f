using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.RouteConfiguration;

/// <summary>The <c>RateLimit.Action</c> kinds csenvoy implements.</summary>
internal enum RateLimitActionKind { DestinationCluster, RequestHeaders, RemoteAddress, GenericKey, HeaderValueMatch }

/// <summary>One validated <c>RateLimit.Action</c>: it appends one descriptor entry (<see cref="DescriptorKey"/>,
/// value) to the descriptor, or makes the whole descriptor not apply (Envoy's <c>populateDescriptor</c>).</summary>
internal sealed record RateLimitActionModel(RateLimitActionKind Kind, string DescriptorKey)
{
    /// <summary>generic_key and header_value_match: the entry's value.</summary>
    public string? DescriptorValue { get; init; }
    /// <summary>header_value_match: the value used when the headers do not match as expected (empty: no descriptor).</summary>
    public string? DefaultValue { get; init; }
    /// <summary>request_headers: the lower-case header whose value is the entry's value.</summary>
    public string? HeaderName { get; init; }
    /// <summary>request_headers: an absent header skips this entry instead of the whole descriptor.</summary>
    public bool SkipIfAbsent { get; init; }
    /// <summary>header_value_match: whether the descriptor applies when all headers match (true) or when they do not.</summary>
    public bool ExpectMatch { get; init; } = true;
    public HeaderMatcherModel[] Headers { get; init; } = Array.Empty<HeaderMatcherModel>();
}

/// <summary>One <c>RateLimit</c> entry of a route or virtual host: the stage it belongs to and the actions that build
/// one descriptor.</summary>
internal sealed record RateLimitPolicyModel(uint Stage, RateLimitActionModel[] Actions);
