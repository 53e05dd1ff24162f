using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Http;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// Which upstream connection carried a request (<c>%UPSTREAM_LOCAL_ADDRESS%</c>). SocketsHttpHandler pools connections and
/// does not say which one served a request, so the router names the request it is sending in
/// <see cref="Sending"/> and the connection stream, when the request's bytes are written on it, records its own local
/// address in that request's <see cref="StreamInfo"/>. An HTTP/1.1 request is written in the sender's flow, so this is
/// exact; HTTP/2 frames are written by the connection's own loop, so there the router falls back to the host's newest
/// connection (<see cref="Host.LastConnectionLocalAddress"/>). Only set while an access log prints the operator.
/// </summary>
internal static class UpstreamConnection
{
    public static readonly AsyncLocal<StreamInfo?> Sending = new();

    /// <summary>Envoy's address form: <c>ip:port</c>, <c>[ipv6]:port</c>; null for a pipe (unnamed local end).</summary>
    public static string? Format(EndPoint? local) => local switch
    {
        IPEndPoint ip when ip.AddressFamily == AddressFamily.InterNetworkV6 && !ip.Address.IsIPv4MappedToIPv6 => $"[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"{(ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address)}:{ip.Port}",
        _ => null,
    };
}
