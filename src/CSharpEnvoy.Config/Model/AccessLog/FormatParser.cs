using System.Text;
using System.Text.RegularExpressions;

namespace CSharpEnvoy.Config.Model.AccessLog;

/// <summary>
/// Envoy's <c>SubstitutionFormatParser</c>: splits a format string into literals and command operators
/// <c>%COMMAND(SUBCOMMAND):LENGTH%</c> (<c>%%</c> is a literal '%'), and checks each operator against the ones csenvoy
/// implements and Envoy's syntax rules. Runs once per config; nothing is parsed per request.
/// </summary>
internal static class FormatParser
{
    [Flags]
    private enum Syntax { CommandOnly = 0, ParamsRequired = 1, ParamsOptional = 2, LengthAllowed = 4 }

    // Envoy's command grammar; the subcommand is the shortest run up to ")" so "%START_TIME(%s.%3f)%" parses.
    private static readonly Regex s_command = new(@"\G%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%", RegexOptions.CultureInvariant);

    private static readonly Dictionary<string, Syntax> s_commands = new(StringComparer.Ordinal)
    {
        ["START_TIME"] = Syntax.ParamsOptional,
        ["REQ"] = Syntax.ParamsRequired | Syntax.LengthAllowed,
        ["RESP"] = Syntax.ParamsRequired | Syntax.LengthAllowed,
        ["TRAILER"] = Syntax.ParamsRequired | Syntax.LengthAllowed,
        ["ENVIRONMENT"] = Syntax.ParamsRequired | Syntax.LengthAllowed,
        ["RESPONSE_CODE_DETAILS"] = Syntax.ParamsOptional,
        ["LOCAL_REPLY_BODY"] = Syntax.CommandOnly,
        ["GRPC_STATUS"] = Syntax.ParamsOptional,
        ["GRPC_STATUS_NUMBER"] = Syntax.CommandOnly,
        ["PROTOCOL"] = Syntax.CommandOnly,
        ["RESPONSE_CODE"] = Syntax.CommandOnly,
        ["RESPONSE_FLAGS"] = Syntax.CommandOnly,
        ["RESPONSE_FLAGS_LONG"] = Syntax.CommandOnly,
        ["BYTES_RECEIVED"] = Syntax.CommandOnly,
        ["BYTES_SENT"] = Syntax.CommandOnly,
        ["DURATION"] = Syntax.CommandOnly,
        ["REQUEST_DURATION"] = Syntax.CommandOnly,
        ["RESPONSE_DURATION"] = Syntax.CommandOnly,
        ["UPSTREAM_HOST"] = Syntax.CommandOnly,
        ["UPSTREAM_REMOTE_ADDRESS"] = Syntax.CommandOnly,
        ["UPSTREAM_CLUSTER"] = Syntax.CommandOnly,
        ["UPSTREAM_CLUSTER_RAW"] = Syntax.CommandOnly,
        ["UPSTREAM_LOCAL_ADDRESS"] = Syntax.CommandOnly,
        ["UPSTREAM_TRANSPORT_FAILURE_REASON"] = Syntax.CommandOnly,
        ["UPSTREAM_REQUEST_ATTEMPT_COUNT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_REMOTE_ADDRESS"] = Syntax.CommandOnly,
        ["DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_REMOTE_PORT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_DIRECT_REMOTE_ADDRESS"] = Syntax.CommandOnly,
        ["DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_LOCAL_ADDRESS"] = Syntax.CommandOnly,
        ["DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_LOCAL_PORT"] = Syntax.CommandOnly,
        ["DOWNSTREAM_PEER_URI_SAN"] = Syntax.CommandOnly,
        ["REQUESTED_SERVER_NAME"] = Syntax.CommandOnly,
        ["ROUTE_NAME"] = Syntax.CommandOnly,
        ["CONNECTION_ID"] = Syntax.CommandOnly,
        ["HOSTNAME"] = Syntax.CommandOnly,
        ["STREAM_ID"] = Syntax.CommandOnly,
        ["UNIQUE_ID"] = Syntax.CommandOnly,
    };

    /// <summary>The command operators csenvoy implements.</summary>
    public static IEnumerable<string> SupportedCommands => s_commands.Keys;

    /// <summary>The tokens of <paramref name="format"/>, or null with Envoy's reason in <paramref name="error"/>.</summary>
    public static IReadOnlyList<FormatToken>? Parse(string format, out string? error)
    {
        error = null;
        var tokens = new List<FormatToken>();
        var literal = new StringBuilder();
        for (var pos = 0; pos < format.Length;)
        {
            if (format[pos] != '%')
            {
                literal.Append(format[pos++]);
                continue;
            }
            if (pos + 1 < format.Length && format[pos + 1] == '%')
            {
                literal.Append('%');
                pos += 2;
                continue;
            }
            var m = s_command.Match(format, pos);
            if (!m.Success)
            {
                error = $"incorrect format string '{format}': no valid command operator at position {pos}";
                return null;
            }
            if (literal.Length > 0)
            {
                tokens.Add(new FormatToken(literal.ToString()));
                literal.Clear();
            }
            var command = m.Groups[1].Value;
            var arg = m.Groups[2].Value;
            int? maxLength = null;
            if (m.Groups[3].Success)
            {
                if (!int.TryParse(m.Groups[3].Value, out var len))
                {
                    error = $"length of %{command}% is too large";
                    return null;
                }
                maxLength = len;
            }
            error = Check(command, arg, maxLength);
            if (error is not null) return null;
            tokens.Add(new FormatToken(null, command, arg, maxLength));
            pos += m.Length;
        }
        if (literal.Length > 0 || format.Length == 0) tokens.Add(new FormatToken(literal.ToString()));
        return tokens;
    }

    /// <summary>Envoy's <c>CommandSyntaxChecker</c> plus each operator's own argument checks.</summary>
    private static string? Check(string command, string arg, int? maxLength)
    {
        if (!s_commands.TryGetValue(command, out var syntax))
            return $"unsupported command operator '%{command}%' (supported: see docs/compatibility.md)";
        if (syntax == Syntax.CommandOnly && (arg.Length > 0 || maxLength is not null))
            return $"{command} does not take any parameters or length";
        if ((syntax & Syntax.ParamsRequired) != 0 && arg.Length == 0)
            return $"{command} requires parameters";
        if ((syntax & Syntax.LengthAllowed) == 0 && maxLength is not null)
            return $"{command} does not allow length to be specified.";
        switch (command)
        {
            case "REQ" or "RESP" or "TRAILER":
                var parts = arg.Split('?');
                if (parts.Length > 2) return $"More than 1 alternative header specified in token: {arg}";
                if (arg.AsSpan().IndexOfAny('\0', '\r', '\n') >= 0) return "Invalid header configuration. Format string contains null or newline.";
                break;
            case "GRPC_STATUS":
                if (arg is not ("" or "CAMEL_STRING" or "SNAKE_STRING" or "NUMBER"))
                    return "GrpcStatusFormatter only supports CAMEL_STRING, SNAKE_STRING or NUMBER.";
                break;
            case "START_TIME":
                // A time may end up in a header: Envoy refuses a newline specifier.
                if (Regex.IsMatch(arg, "%[-_0^#]*[1-9]*(E|O)?n", RegexOptions.CultureInvariant))
                    return "Invalid header configuration. Format string contains newline.";
                break;
        }
        return null;
    }
}
