using System.Globalization;
using System.Text;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>
/// A <c>%START_TIME(...)%</c> format, compiled once: strftime specifiers as absl::FormatTime prints them in UTC, plus
/// Envoy's own <c>%s</c> (epoch seconds), <c>%f</c> / <c>%1f</c>..<c>%9f</c> (fraction digits, 9 by default) and
/// <c>%E#S</c> / <c>%E*S</c> (seconds with # or all fraction digits). With no format: Envoy's default,
/// <c>2024-01-02T03:04:05.678Z</c>.
/// </summary>
internal sealed class TimeFormat
{
    // A part is a literal (Spec == '\0') or a specifier with an optional digit count.
    private readonly (char Spec, int Digits, string? Literal)[] _parts;

    public static readonly TimeFormat Default = new("%Y-%m-%dT%H:%M:%E3SZ");

    public TimeFormat(string format)
    {
        var parts = new List<(char, int, string?)>();
        var lit = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                lit.Append(c);
                continue;
            }
            var n = format[i + 1];
            char spec;
            var digits = 0;
            var consumed = 1;
            if (n is >= '1' and <= '9' && i + 2 < format.Length && format[i + 2] == 'f')
            {
                spec = 'f';
                digits = n - '0';
                consumed = 2;
            }
            else if (n == 'E' && i + 3 < format.Length && format[i + 3] == 'S' && (char.IsAsciiDigit(format[i + 2]) || format[i + 2] == '*'))
            {
                spec = 'S';
                digits = format[i + 2] == '*' ? -1 : format[i + 2] - '0';
                consumed = 3;
            }
            else if (n == '%')
            {
                lit.Append('%');
                i++;
                continue;
            }
            else if ("YmdHMSyjaAbBhepIzZsfTDFRtC".Contains(n))
            {
                spec = n;
                if (n == 'f') digits = 9;
            }
            else
            {
                // Not a specifier csenvoy knows: kept as written.
                lit.Append(c);
                continue;
            }
            if (lit.Length > 0)
            {
                parts.Add(('\0', 0, lit.ToString()));
                lit.Clear();
            }
            parts.Add((spec, digits, null));
            i += consumed;
        }
        if (lit.Length > 0) parts.Add(('\0', 0, lit.ToString()));
        _parts = parts.ToArray();
    }

    public void Append(StringBuilder sb, DateTime utc)
    {
        foreach (var (spec, digits, literal) in _parts)
        {
            switch (spec)
            {
                case '\0': sb.Append(literal); break;
                case 'Y': Pad(sb, utc.Year, 4); break;
                case 'C': Pad(sb, utc.Year / 100, 2); break;
                case 'y': Pad(sb, utc.Year % 100, 2); break;
                case 'm': Pad(sb, utc.Month, 2); break;
                case 'd': Pad(sb, utc.Day, 2); break;
                case 'e': sb.Append(utc.Day < 10 ? " " : "").Append(utc.Day); break;
                case 'H': Pad(sb, utc.Hour, 2); break;
                case 'I': Pad(sb, utc.Hour % 12 == 0 ? 12 : utc.Hour % 12, 2); break;
                case 'p': sb.Append(utc.Hour < 12 ? "AM" : "PM"); break;
                case 'M': Pad(sb, utc.Minute, 2); break;
                case 'S':
                    Pad(sb, utc.Second, 2);
                    if (digits != 0) AppendFraction(sb, utc, digits, dot: true);
                    break;
                case 'j': Pad(sb, utc.DayOfYear, 3); break;
                case 'a': sb.Append(CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedDayName(utc.DayOfWeek)); break;
                case 'A': sb.Append(CultureInfo.InvariantCulture.DateTimeFormat.GetDayName(utc.DayOfWeek)); break;
                case 'b' or 'h': sb.Append(CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(utc.Month)); break;
                case 'B': sb.Append(CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(utc.Month)); break;
                case 'z': sb.Append("+0000"); break;
                case 'Z': sb.Append("UTC"); break;
                case 's': sb.Append((utc.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond); break;
                case 'f': AppendFraction(sb, utc, digits, dot: false); break;
                case 'T': Pad(sb, utc.Hour, 2); sb.Append(':'); Pad(sb, utc.Minute, 2); sb.Append(':'); Pad(sb, utc.Second, 2); break;
                case 'R': Pad(sb, utc.Hour, 2); sb.Append(':'); Pad(sb, utc.Minute, 2); break;
                case 'D': Pad(sb, utc.Month, 2); sb.Append('/'); Pad(sb, utc.Day, 2); sb.Append('/'); Pad(sb, utc.Year % 100, 2); break;
                case 'F': Pad(sb, utc.Year, 4); sb.Append('-'); Pad(sb, utc.Month, 2); sb.Append('-'); Pad(sb, utc.Day, 2); break;
                case 't': sb.Append('\t'); break;
            }
        }
    }

    /// <summary>Fraction of the second: <paramref name="digits"/> digits (9 max; .NET keeps 7, the rest are zeros),
    /// or with -1 (<c>%E*S</c>) as many as needed, none when it is zero.</summary>
    private static void AppendFraction(StringBuilder sb, DateTime utc, int digits, bool dot)
    {
        var nanos = utc.Ticks % TimeSpan.TicksPerSecond * 100;
        if (digits < 0)
        {
            if (nanos == 0) return;
            digits = 9;
            while (nanos % 10 == 0)
            {
                nanos /= 10;
                digits--;
            }
            if (dot) sb.Append('.');
            Pad(sb, nanos, digits);
            return;
        }
        if (dot) sb.Append('.');
        for (var i = digits; i < 9; i++) nanos /= 10;
        Pad(sb, nanos, digits);
    }

    private static void Pad(StringBuilder sb, long value, int width)
    {
        Span<char> buf = stackalloc char[20];
        value.TryFormat(buf, out var n, default, CultureInfo.InvariantCulture);
        for (var i = n; i < width; i++) sb.Append('0');
        sb.Append(buf[..n]);
    }
}
