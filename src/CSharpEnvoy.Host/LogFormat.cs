using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace CSharpEnvoy.Host;

/// <summary>
/// Envoy's <c>--log-format</c>: an spdlog pattern for the application log lines, e.g. Istio's
/// <c>%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v</c>. Parsed once at startup. csenvoy's log calls have no C++ source
/// file and line: the source flags print the logger name and line 0, so patterns made for Envoy keep their shape. A flag
/// spdlog has and csenvoy cannot fill (elapsed time, thread names) is refused with its name.
/// </summary>
internal sealed class LogFormat
{
    /// <summary>Envoy's default pattern, used when <c>--log-format-escaped</c> comes without <c>--log-format</c>.</summary>
    public const string EnvoyDefaultPattern = "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v";

    private readonly (char Flag, string? Text)[] _parts;

    private LogFormat((char, string?)[] parts) => _parts = parts;

    /// <summary>The format, or null with <paramref name="error"/> set.</summary>
    public static LogFormat? Parse(string pattern, out string? error)
    {
        var parts = new List<(char, string?)>();
        var text = new StringBuilder();
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c != '%')
            {
                text.Append(c);
                continue;
            }
            if (++i == pattern.Length)
            {
                error = "--log-format ends with a lone '%'";
                return null;
            }
            var flag = pattern[i];
            if (flag == '%')
            {
                text.Append('%');
                continue;
            }
            if (flag is '^' or '$') continue; // colour range: no colours here
            if (!"YmdHMSTefFzlLnvtPECDR_jIpbBaAgs#@!".Contains(flag))
            {
                error = $"--log-format: flag '%{flag}' is not supported by csenvoy (see docs/compatibility.md)";
                return null;
            }
            if (text.Length > 0) parts.Add(('\0', text.ToString()));
            text.Clear();
            parts.Add((flag, null));
        }
        if (text.Length > 0) parts.Add(('\0', text.ToString()));
        error = null;
        return new LogFormat([.. parts]);
    }

    private static readonly string[] s_levels = ["trace", "debug", "info", "warning", "error", "critical", "off"];
    private static readonly string[] s_shortLevels = ["T", "D", "I", "W", "E", "C", "O"];

    /// <summary>One line (without its newline) for a message of <paramref name="logger"/> at <paramref name="level"/>.</summary>
    public void Write(StringBuilder sb, DateTimeOffset now, LogLevel level, string logger, string message, int thread, int pid)
    {
        var inv = CultureInfo.InvariantCulture;
        foreach (var (flag, text) in _parts)
        {
            switch (flag)
            {
                case '\0': sb.Append(text); break;
                case 'Y': sb.Append(now.Year.ToString("D4", inv)); break;
                case 'C': sb.Append((now.Year % 100).ToString("D2", inv)); break;
                case 'm': sb.Append(now.Month.ToString("D2", inv)); break;
                case 'd': sb.Append(now.Day.ToString("D2", inv)); break;
                case 'H': sb.Append(now.Hour.ToString("D2", inv)); break;
                case 'I': sb.Append((now.Hour % 12 == 0 ? 12 : now.Hour % 12).ToString("D2", inv)); break;
                case 'p': sb.Append(now.Hour < 12 ? "AM" : "PM"); break;
                case 'M': sb.Append(now.Minute.ToString("D2", inv)); break;
                case 'S': sb.Append(now.Second.ToString("D2", inv)); break;
                case 'T': sb.Append(now.ToString("HH:mm:ss", inv)); break;
                case 'R': sb.Append(now.ToString("HH:mm", inv)); break;
                case 'D': sb.Append(now.ToString("MM/dd/yy", inv)); break;
                case 'a': sb.Append(now.ToString("ddd", inv)); break;
                case 'A': sb.Append(now.ToString("dddd", inv)); break;
                case 'b': sb.Append(now.ToString("MMM", inv)); break;
                case 'B': sb.Append(now.ToString("MMMM", inv)); break;
                case 'e': sb.Append(now.Millisecond.ToString("D3", inv)); break;
                case 'f': sb.Append((now.Ticks % TimeSpan.TicksPerSecond / 10).ToString("D6", inv)); break;
                case 'F': sb.Append((now.Ticks % TimeSpan.TicksPerSecond * 100).ToString("D9", inv)); break;
                case 'E': sb.Append(now.ToUnixTimeSeconds().ToString(inv)); break;
                case 'z': sb.Append(now.ToString("zzz", inv)); break;
                case 'l': sb.Append(s_levels[Math.Clamp((int)level, 0, 6)]); break;
                case 'L': sb.Append(s_shortLevels[Math.Clamp((int)level, 0, 6)]); break;
                case 'n' or 'g' or 's' or '!': sb.Append(logger); break;
                case '#': sb.Append('0'); break;
                case '@': sb.Append(logger).Append(":0"); break;
                case 't': sb.Append(thread.ToString(inv)); break;
                case 'P': sb.Append(pid.ToString(inv)); break;
                case 'v': sb.Append(message); break;
                case '_': AppendEscaped(sb, message); break;
                case 'j': CSharpEnvoy.Config.Model.AccessLog.JsonText.AppendEscaped(sb, message); break;
            }
        }
    }

    /// <summary>Envoy's <c>--log-format-escaped</c>: the message with C-style escapes (as <c>absl::CEscape</c>:
    /// <c>\n \r \t \" \' \\</c>, other bytes outside printable ASCII as three octal digits of their UTF-8), except
    /// its trailing whitespace, so that one message stays one line.</summary>
    public static string CEscape(string message)
    {
        var end = message.Length;
        while (end > 0 && char.IsWhiteSpace(message[end - 1])) end--;
        var needs = false;
        for (var i = 0; i < end && !needs; i++) needs = message[i] is < ' ' or > '~' or '"' or '\'' or '\\';
        if (!needs) return message;
        var sb = new StringBuilder(message.Length + 16);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < end; i++)
        {
            var c = message[i];
            switch (c)
            {
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
                case '\t': sb.Append("\\t"); continue;
                case '"': sb.Append("\\\""); continue;
                case '\'': sb.Append("\\'"); continue;
                case '\\': sb.Append("\\\\"); continue;
            }
            if (c is >= ' ' and <= '~')
            {
                sb.Append(c);
                continue;
            }
            var length = char.IsHighSurrogate(c) && i + 1 < end && char.IsLowSurrogate(message[i + 1])
                ? Encoding.UTF8.GetBytes(message.AsSpan(i++, 2), utf8)
                : Encoding.UTF8.GetBytes(message.AsSpan(i, 1), utf8);
            foreach (var b in utf8[..length]) sb.Append('\\').Append(Convert.ToString(b, 8).PadLeft(3, '0'));
        }
        return sb.Append(message, end, message.Length - end).ToString();
    }

    /// <summary>%_: C-style escapes for control characters and backslashes.</summary>
    private static void AppendEscaped(StringBuilder sb, string s)
    {
        foreach (var c in s)
        {
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\\': sb.Append("\\\\"); break;
                default:
                    if (c < 0x20) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
    }
}

/// <summary>The console formatter that writes lines in a <see cref="LogFormat"/>; the logger name is csenvoy's
/// category (Envoy's logger names for csenvoy's own: <c>main</c>, <c>upstream</c>, ...).</summary>
internal sealed class LogFormatConsoleFormatter(LogFormat format, bool escaped = false) : ConsoleFormatter(Name)
{
    public new const string Name = "envoy";

    public override void Write<TState>(in LogEntry<TState> entry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = entry.Formatter(entry.State, entry.Exception);
        if (entry.Exception is { } e) message = message + " " + e;
        if (escaped) message = LogFormat.CEscape(message);
        var sb = new StringBuilder(64 + message.Length);
        format.Write(sb, DateTimeOffset.Now, entry.LogLevel, entry.Category, message, Environment.CurrentManagedThreadId, Environment.ProcessId);
        sb.Append('\n');
        textWriter.Write(sb.ToString());
    }
}
