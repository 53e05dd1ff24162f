using System.Text;

namespace CSharpEnvoy.Config.Model.AccessLog;

/// <summary>JSON string escaping as Envoy's <c>Json::sanitize</c> does it: quotes, backslashes and control characters
/// are escaped; other text, non-ASCII included, is written as it is.</summary>
internal static class JsonText
{
    public static void AppendEscaped(StringBuilder sb, ReadOnlySpan<char> value)
    {
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c >= 0x20 && c != '"' && c != '\\') continue;
            sb.Append(value[start..i]);
            start = i + 1;
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default: sb.Append("\\u00").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)); break;
            }
        }
        sb.Append(value[start..]);
    }

    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        AppendEscaped(sb, value);
        return sb.Append('"').ToString();
    }
}
