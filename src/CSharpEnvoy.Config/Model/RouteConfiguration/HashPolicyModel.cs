namespace CSharpEnvoy.Config.Model.RouteConfiguration;

internal enum HashPolicyKind { Header, Cookie, SourceIp, QueryParameter }

/// <summary>One <c>RouteAction.hash_policy</c> entry. <see cref="Name"/> is the lower-case header name, the cookie
/// name or the query parameter name.</summary>
internal sealed record HashPolicyModel
{
    public required HashPolicyKind Kind { get; init; }
    public string Name { get; init; } = "";
    public bool Terminal { get; init; }
    /// <summary>Cookie only: set means "generate the cookie when absent" (zero: a session cookie).</summary>
    public TimeSpan? CookieTtl { get; init; }
    public string CookiePath { get; init; } = "";
    /// <summary>Cookie only: extra Set-Cookie attributes, already formatted ("; SameSite=Lax").</summary>
    public string CookieAttributes { get; init; } = "";
}
