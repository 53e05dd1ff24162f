using System.Text;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Envoy.Config.Route.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary><c>RouteAction.hash_policy</c> → <see cref="HashPolicyModel"/>s, with Envoy's validation rules.</summary>
internal static class HashPolicyTranslator
{
    public static HashPolicyModel[] Translate(RouteAction a, string path, ConfigErrors errors)
    {
        if (a.HashPolicy.Count == 0) return Array.Empty<HashPolicyModel>();
        var list = new List<HashPolicyModel>(a.HashPolicy.Count);
        for (var i = 0; i < a.HashPolicy.Count; i++)
        {
            var p = a.HashPolicy[i];
            var pPath = $"{path}.hash_policy[{i}]";
            switch (p.PolicySpecifierCase)
            {
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header:
                    if (string.IsNullOrEmpty(p.Header.HeaderName)) errors.Add(pPath + ".header.header_name", "header_name must not be empty");
                    list.Add(new HashPolicyModel { Kind = HashPolicyKind.Header, Name = p.Header.HeaderName.ToLowerInvariant(), Terminal = p.Terminal });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Cookie:
                    var c = p.Cookie;
                    if (string.IsNullOrEmpty(c.Name)) errors.Add(pPath + ".cookie.name", "cookie name must not be empty");
                    var attributes = new StringBuilder();
                    for (var j = 0; j < c.Attributes.Count; j++)
                    {
                        var attr = c.Attributes[j];
                        if (string.IsNullOrEmpty(attr.Name)) errors.Add($"{pPath}.cookie.attributes[{j}].name", "cookie attribute name must not be empty");
                        attributes.Append("; ").Append(attr.Name);
                        if (attr.Value.Length > 0) attributes.Append('=').Append(attr.Value);
                    }
                    list.Add(new HashPolicyModel
                    {
                        Kind = HashPolicyKind.Cookie,
                        Name = c.Name,
                        Terminal = p.Terminal,
                        // Envoy keeps whole seconds of the ttl.
                        CookieTtl = c.Ttl is null ? null : TimeSpan.FromSeconds(c.Ttl.Seconds),
                        CookiePath = c.Path,
                        CookieAttributes = attributes.ToString(),
                    });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.ConnectionProperties:
                    // Envoy adds no hash method when source_ip is false.
                    if (p.ConnectionProperties.SourceIp) list.Add(new HashPolicyModel { Kind = HashPolicyKind.SourceIp, Terminal = p.Terminal });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.QueryParameter:
                    if (string.IsNullOrEmpty(p.QueryParameter.Name)) errors.Add(pPath + ".query_parameter.name", "query parameter name must not be empty");
                    list.Add(new HashPolicyModel { Kind = HashPolicyKind.QueryParameter, Name = p.QueryParameter.Name, Terminal = p.Terminal });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.None:
                    errors.Add(pPath, "one of header, cookie, connection_properties or query_parameter is required");
                    break;
                default:
                    break; // filter_state: refused by the support checker
            }
        }
        return list.ToArray();
    }
}
