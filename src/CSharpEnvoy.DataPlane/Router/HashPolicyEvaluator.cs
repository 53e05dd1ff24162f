using System.Buffers;
using System.Globalization;
using System.Net;
using System.Numerics;
using System.Text;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>
/// Envoy's route hash policy (<c>Http::HashPolicyImpl</c>): each policy that yields a value is folded in as
/// hash = rotl(hash, 1) ^ value, and a terminal policy that has produced a hash stops the rest. Values are hashed
/// with xxHash64. Allocation-free except when a cookie is generated.
/// </summary>
internal static class HashPolicyEvaluator
{
    public static bool TryCompute(HashPolicyModel[] policies, HttpContext context, RequestView request, UpstreamRequest info, out ulong hash)
    {
        hash = 0;
        var has = false;
        for (var i = 0; i < policies.Length; i++)
        {
            var p = policies[i];
            ulong value;
            var ok = p.Kind switch
            {
                HashPolicyKind.Header => TryHeader(p.Name, context, request, out value),
                HashPolicyKind.Cookie => TryCookie(p, context, info, out value),
                HashPolicyKind.SourceIp => TrySourceIp(context, out value),
                _ => TryQueryParameter(p.Name, request.Query, out value),
            };
            if (ok)
            {
                // Rotating keeps two equal policies from cancelling out (Envoy's comment says the same).
                hash = has ? BitOperations.RotateLeft(hash, 1) ^ value : value;
                has = true;
            }
            if (p.Terminal && has) break;
        }
        return has;
    }

    private static bool TryHeader(string name, HttpContext context, RequestView request, out ulong value)
    {
        value = 0;
        if (name.Length > 0 && name[0] == ':')
        {
            var pseudo = name switch
            {
                ":authority" => context.Request.Host.Value,
                ":method" => context.Request.Method,
                ":path" => request.RawTarget,
                ":scheme" => request.Scheme,
                _ => null,
            };
            if (pseudo is null) return false;
            value = XxHash64.HashUtf8(pseudo);
            return true;
        }
        var values = context.Request.Headers[name];
        if (values.Count == 0) return false;
        value = values.Count == 1 ? XxHash64.HashUtf8(values[0]) : HashSortedConcatenation(values);
        return true;
    }

    /// <summary>Envoy sorts repeated header values (so their order does not matter) and hashes them as one stream.</summary>
    private static ulong HashSortedConcatenation(StringValues values)
    {
        var n = values.Count;
        Span<int> order = n <= 32 ? stackalloc int[n] : new int[n];
        var bytes = 0;
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
            bytes += Encoding.UTF8.GetMaxByteCount(values[i]?.Length ?? 0);
        }
        for (var i = 1; i < n; i++)
        {
            var x = order[i];
            var j = i - 1;
            while (j >= 0 && string.CompareOrdinal(values[order[j]], values[x]) > 0)
            {
                order[j + 1] = order[j];
                j--;
            }
            order[j + 1] = x;
        }
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 1));
        var len = 0;
        for (var i = 0; i < n; i++) len += Encoding.UTF8.GetBytes(values[order[i]] ?? "", rented.AsSpan(len));
        var h = XxHash64.Hash(rented.AsSpan(0, len));
        ArrayPool<byte>.Shared.Return(rented);
        return h;
    }

    private static bool TryCookie(HashPolicyModel p, HttpContext context, UpstreamRequest info, out ulong value)
    {
        var cookies = context.Request.Headers.Cookie;
        for (var i = 0; i < cookies.Count; i++)
        {
            if (FindCookie(cookies[i], p.Name, out var v) && v.Length > 0)
            {
                value = XxHash64.HashUtf8(v);
                return true;
            }
        }
        value = 0;
        if (p.CookieTtl is not { } ttl) return false;
        // Envoy generates the value from the downstream remote and local addresses, hex of their xxHash64, and
        // sets it on the upstream response.
        var generated = GenerateCookieValue(context);
        if (generated is null) return false;
        var setCookie = new StringBuilder(p.Name.Length + generated.Length + p.CookiePath.Length + p.CookieAttributes.Length + 40);
        setCookie.Append(p.Name).Append("=\"").Append(generated).Append('"');
        var seconds = (long)ttl.TotalSeconds;
        if (seconds != 0) setCookie.Append("; Max-Age=").Append(seconds.ToString(CultureInfo.InvariantCulture));
        if (p.CookiePath.Length > 0) setCookie.Append("; Path=").Append(p.CookiePath);
        setCookie.Append(p.CookieAttributes).Append("; HttpOnly");
        info.HashPolicySetCookie = setCookie.ToString();
        value = XxHash64.HashUtf8(generated);
        return true;
    }

    /// <summary>Envoy's cookie parsing: "k=v" pairs split by ';', leading spaces skipped, the name compared exactly,
    /// one pair of surrounding double quotes removed.</summary>
    private static bool FindCookie(string? header, string name, out ReadOnlySpan<char> value)
    {
        value = default;
        if (header is null) return false;
        var rest = header.AsSpan();
        while (rest.Length > 0)
        {
            var semi = rest.IndexOf(';');
            var pair = semi < 0 ? rest : rest[..semi];
            rest = semi < 0 ? default : rest[(semi + 1)..];
            pair = pair.TrimStart(' ');
            var eq = pair.IndexOf('=');
            if (eq < 0) continue;
            if (!pair[..eq].SequenceEqual(name)) continue;
            var v = pair[(eq + 1)..];
            if (v.Length >= 2 && v[0] == '"' && v[^1] == '"') v = v[1..^1];
            value = v;
            return true;
        }
        return false;
    }

    private static string? GenerateCookieValue(HttpContext context)
    {
        var c = context.Connection;
        if (c.RemoteIpAddress is null || c.LocalIpAddress is null) return null;
        var source = AddressString(c.RemoteIpAddress, c.RemotePort) + AddressString(c.LocalIpAddress, c.LocalPort);
        return XxHash64.HashUtf8(source).ToString("x16", CultureInfo.InvariantCulture);
    }

    private static string AddressString(IPAddress ip, int port) =>
        ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]:{port}" : $"{ip}:{port}";

    private static bool TrySourceIp(HttpContext context, out ulong value) => TryAddressHash(context.Connection.RemoteIpAddress, out value);

    /// <summary>Envoy's source_ip hash: the address's text (no port), hashed; false without an IP address.</summary>
    internal static bool TryAddressHash(IPAddress? ip, out ulong value)
    {
        value = 0;
        if (ip is null) return false;
        Span<char> text = stackalloc char[64];
        if (!ip.TryFormat(text, out var n) || n == 0) return false;
        value = XxHash64.HashUtf8(text[..n]);
        return true;
    }

    /// <summary>Envoy's query parsing for hash policies: '&amp;'-separated, not percent-decoded, first match wins, a
    /// name without '=' has the empty value.</summary>
    private static bool TryQueryParameter(string name, string query, out ulong value)
    {
        value = 0;
        var rest = query.AsSpan();
        while (rest.Length > 0)
        {
            var amp = rest.IndexOf('&');
            var pair = amp < 0 ? rest : rest[..amp];
            rest = amp < 0 ? default : rest[(amp + 1)..];
            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            if (!key.SequenceEqual(name)) continue;
            value = XxHash64.HashUtf8(eq < 0 ? ReadOnlySpan<char>.Empty : pair[(eq + 1)..]);
            return true;
        }
        return false;
    }
}
