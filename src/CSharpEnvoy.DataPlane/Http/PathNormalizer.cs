using System.Text;
using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>What the connection manager does with a request after <see cref="PathNormalizer.Normalize"/>.</summary>
internal enum PathNormalizeAction { Continue, Reject, Redirect }

/// <summary>
/// Envoy's <c>ConnectionManagerUtility::maybeNormalizePath</c>, on the path before routing and filters (the query is
/// left alone): first <c>path_with_escaped_slashes_action</c> (<c>%2F</c> and <c>%5C</c>, either case), then
/// <c>normalize_path</c> (RFC 3986: percent-encoded unreserved characters decoded, other percent-encodings upper-cased,
/// characters a path may not hold percent-encoded as Chromium's canonicalizer does, dot segments removed), then
/// <c>merge_slashes</c>. Only runs when one of them is set.
/// </summary>
internal static class PathNormalizer
{
    public static PathNormalizeAction Normalize(string path, HttpConnectionManagerModel model, out string normalized)
    {
        normalized = path;
        var action = PathNormalizeAction.Continue;
        if (model.PathWithEscapedSlashesAction is not (PathWithEscapedSlashesAction.KeepUnchanged or PathWithEscapedSlashesAction.ImplementationSpecificDefault)
            && UnescapeSlashes(normalized) is { } unescaped)
        {
            if (model.PathWithEscapedSlashesAction == PathWithEscapedSlashesAction.RejectRequest) return PathNormalizeAction.Reject;
            if (model.PathWithEscapedSlashesAction == PathWithEscapedSlashesAction.UnescapeAndRedirect) action = PathNormalizeAction.Redirect;
            normalized = unescaped;
        }
        if (model.NormalizePath)
        {
            if (Canonicalize(normalized) is not { } canonical) return PathNormalizeAction.Reject;
            normalized = canonical;
        }
        if (model.MergeSlashes) normalized = MergeSlashes(normalized);
        return action;
    }

    /// <summary>The path with <c>%2F</c>/<c>%5C</c> (any case) decoded, or null when it has none.</summary>
    internal static string? UnescapeSlashes(string path)
    {
        if (path.IndexOf('%') < 0) return null;
        StringBuilder? sb = null;
        var copied = 0;
        for (var i = 0; i + 2 < path.Length; i++)
        {
            if (path[i] != '%') continue;
            var c = (path[i + 1], char.ToUpperInvariant(path[i + 2])) switch
            {
                ('2', 'F') => '/',
                ('5', 'C') => '\\',
                _ => '\0',
            };
            if (c == '\0') continue;
            sb ??= new StringBuilder(path.Length);
            sb.Append(path, copied, i - copied).Append(c);
            copied = i + 3;
            i += 2;
        }
        return sb?.Append(path, copied, path.Length - copied).ToString();
    }

    /// <summary>RFC 3986 normalization as Envoy's (Chromium's) path canonicalizer does it; null when the path cannot be
    /// normalized (it does not start with '/').</summary>
    internal static string? Canonicalize(string path)
    {
        if (path.Length == 0 || path[0] != '/') return null;
        var sb = new StringBuilder(path.Length + 8);
        for (var i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (c == '%' && i + 2 < path.Length && char.IsAsciiHexDigit(path[i + 1]) && char.IsAsciiHexDigit(path[i + 2]))
            {
                var b = (char)(HexValue(path[i + 1]) * 16 + HexValue(path[i + 2]));
                if (IsUnreserved(b)) sb.Append(b);
                else sb.Append('%').Append(char.ToUpperInvariant(path[i + 1])).Append(char.ToUpperInvariant(path[i + 2]));
                i += 2;
            }
            else if (c <= ' ' || c >= 0x7F || c is '"' or '<' or '>' or '`' or '{' or '}')
            {
                // Characters a path cannot carry as they are; the request target's bytes are one char each here.
                if (c > 0xFF) return null;
                sb.Append('%').Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else sb.Append(c);
        }
        return RemoveDotSegments(sb.ToString());
    }

    /// <summary>RFC 3986 section 5.2.4 on an absolute path: "." segments go, ".." removes the one before (never above
    /// the root); a trailing "." or ".." leaves the trailing slash.</summary>
    internal static string RemoveDotSegments(string path)
    {
        if (path.IndexOf('.') < 0) return path;
        var segments = path.Split('/');
        var output = new List<string>(segments.Length);
        for (var i = 1; i < segments.Length; i++)
        {
            var s = segments[i];
            var last = i == segments.Length - 1;
            if (s == ".")
            {
                if (last) output.Add("");
            }
            else if (s == "..")
            {
                if (output.Count > 0) output.RemoveAt(output.Count - 1);
                if (last) output.Add("");
            }
            else output.Add(s);
        }
        return "/" + string.Join('/', output);
    }

    internal static string MergeSlashes(string path)
    {
        if (!path.Contains("//", StringComparison.Ordinal)) return path;
        var sb = new StringBuilder(path.Length);
        foreach (var c in path)
            if (c != '/' || sb.Length == 0 || sb[^1] != '/') sb.Append(c);
        return sb.ToString();
    }

    private static bool IsUnreserved(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~';

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
