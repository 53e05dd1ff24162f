using System.Net;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>
/// Applies <c>*_headers_to_remove</c> then <c>*_headers_to_add</c> of one level, with Envoy's append actions.
/// Levels are applied most specific first (weighted cluster, route, virtual host, route configuration), so with
/// "overwrite" the least specific level wins, unless <c>most_specific_header_mutations_wins</c> reverses the order of
/// route, virtual host and route configuration (the weighted cluster level always comes first, as in Envoy).
/// </summary>
internal static class HeaderMutator
{
    public static void Apply(IHeaderDictionary headers, HeaderMutationModel mutation, HttpContext context)
    {
        if (mutation.IsEmpty) return;
        var remove = mutation.Remove;
        for (var i = 0; i < remove.Count; i++) headers.Remove(remove[i]);
        var add = mutation.Add;
        if (add.Count == 0) return;
        // Envoy's HeaderParser::evaluateHeaders: every entry of a level is formatted and decided against the headers
        // as the level found them (after its removals); then all overwrites are set, then all appends added. So the
        // entries of one level do not see each other ([append a, overwrite b] gives "b, a").
        const byte Skip = 0, Overwrite = 1, Append = 2;
        Span<byte> decisions = add.Count <= 64 ? stackalloc byte[add.Count] : new byte[add.Count];
        string[]? formatted = null; // literal values need no keeping
        for (var i = 0; i < add.Count; i++)
        {
            var h = add[i];
            var value = h.Value.Literal ?? ((formatted ??= new string[add.Count])[i] = Format(h.Value, context));
            decisions[i] = Skip;
            if (value.Length == 0 && !h.KeepEmptyValue) continue;
            decisions[i] = h.Action switch
            {
                HeaderAppendAction.AppendIfExistsOrAdd => Append,
                HeaderAppendAction.AddIfAbsent => headers.ContainsKey(h.Name) ? Skip : Append,
                HeaderAppendAction.OverwriteIfExistsOrAdd => Overwrite,
                HeaderAppendAction.OverwriteIfExists => headers.ContainsKey(h.Name) ? Overwrite : Skip,
                _ => Skip,
            };
        }
        for (var i = 0; i < add.Count; i++)
            if (decisions[i] == Overwrite) headers[add[i].Name] = add[i].Value.Literal ?? formatted![i];
        // Not IHeaderDictionary.Append: it drops an empty value, which keep_empty_value asks to send.
        for (var i = 0; i < add.Count; i++)
            if (decisions[i] == Append) headers[add[i].Name] = StringValues.Concat(headers[add[i].Name], add[i].Value.Literal ?? formatted![i]);
    }

    /// <summary>Evaluates a header value with command operators (rare: literals skip this).</summary>
    public static string Format(HeaderValueFormat format, HttpContext context)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var s in format.Segments)
        {
            switch (s.Operator)
            {
                case HeaderValueOperator.Literal: sb.Append(s.Text); break;
                case HeaderValueOperator.DownstreamRemoteAddress: sb.Append(Endpoint(context.Connection.RemoteIpAddress, context.Connection.RemotePort)); break;
                case HeaderValueOperator.DownstreamRemoteAddressWithoutPort: sb.Append(context.Connection.RemoteIpAddress?.ToString()); break;
                case HeaderValueOperator.DownstreamLocalAddress: sb.Append(Endpoint(context.Connection.LocalIpAddress, context.Connection.LocalPort)); break;
                case HeaderValueOperator.DownstreamLocalAddressWithoutPort: sb.Append(context.Connection.LocalIpAddress?.ToString()); break;
                case HeaderValueOperator.Protocol: sb.Append(context.Request.Protocol); break;
                case HeaderValueOperator.Hostname: sb.Append(Environment.MachineName); break;
                case HeaderValueOperator.RequestHeader:
                    var v = context.Request.Headers[s.Text];
                    if (!StringValues.IsNullOrEmpty(v)) sb.Append(v.ToString());
                    break;
            }
        }
        return sb.ToString();
    }

    private static string Endpoint(IPAddress? ip, int port) =>
        ip is null ? "" : ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]:{port}" : $"{ip}:{port}";
}
