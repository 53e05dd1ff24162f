using System.Diagnostics;
using System.Text;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.AccessLog;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>
/// The connection manager's <c>local_reply_config</c>, compiled once: on every reply the proxy makes itself (local
/// replies and direct responses), the first mapper whose access log filter matches (seeing the reply's original
/// status) replaces its status, body and format and adds its headers; then the body is formatted
/// (<c>%LOCAL_REPLY_BODY%</c> is the body text) and given the format's content type, as Envoy's
/// <c>LocalReply::rewrite</c> does.
/// </summary>
internal sealed class LocalReplyRewriter
{
    private readonly Mapper[] _mappers;
    private readonly Format? _format;

    public LocalReplyRewriter(LocalReplyConfigModel model)
    {
        _mappers = new Mapper[model.Mappers.Length];
        for (var i = 0; i < _mappers.Length; i++)
        {
            var m = model.Mappers[i];
            _mappers[i] = new Mapper(AccessLogFilter.Create(m.Filter), m.StatusCode, m.Body,
                m.BodyFormatOverride is { } f ? new Format(new AccessLogFormatter(f.Format), f.ContentType) : null, m.Headers);
        }
        if (model.BodyFormat is { } bf) _format = new Format(new AccessLogFormatter(bf.Format), bf.ContentType);
    }

    /// <summary>Rewrites the reply about to be sent: <paramref name="status"/> and <paramref name="body"/> in place
    /// (the response's status is set to it), the mapper's headers added; the content type of a formatted body, or
    /// null to keep the caller's.</summary>
    public string? Rewrite(HttpContext context, UpstreamRequest info, ref int status, ref string body)
    {
        var response = context.Response;
        response.StatusCode = status;
        var format = _format;
        var log = new AccessLogContext(context, info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
        foreach (var m in _mappers)
        {
            if (!m.Filter.Evaluate(log)) continue;
            if (m.Body is not null) body = m.Body;
            HeaderMutator.Apply(response.Headers, m.Headers, context);
            if (m.StatusCode is int code) status = response.StatusCode = code;
            if (m.Format is not null) format = m.Format;
            break;
        }
        info.LocalReplyBody = body;
        if (format is null) return null;
        var sb = new StringBuilder(body.Length + 64);
        format.Formatter.Format(sb, new AccessLogContext(context, info, Stopwatch.GetTimestamp(), DateTime.UtcNow));
        body = sb.ToString();
        return format.ContentType;
    }

    private sealed record Mapper(AccessLogFilter Filter, int? StatusCode, string? Body, Format? Format, Config.Model.RouteConfiguration.HeaderMutationModel Headers);
    private sealed record Format(AccessLogFormatter Formatter, string ContentType);
}
