using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CSharpEnvoy.Config.Model.Matchers;

/// <summary>
/// Rewrites an RE2 pattern into .NET syntax with the same meaning, and rejects RE2-invalid
/// constructs that .NET would otherwise accept (so a config Envoy refuses is refused here too).
/// </summary>
internal static class Re2Syntax
{
    // RE2 refuses counted repetitions above this.
    private const int MaxRepeat = 1000;

    // RE2's Perl classes are ASCII-only; .NET's are Unicode, so spell them out.
    private const string DigitChars = "0-9";
    private const string WordChars = "0-9A-Za-z_";
    private const string SpaceChars = @"\t\n\f\r ";

    /// <param name="captureNames">One entry per capture group in RE2 (left-to-right) order; null for unnamed groups.</param>
    public static bool TryTranslate(
        string pattern,
        [NotNullWhen(true)] out string? translated,
        [NotNullWhen(true)] out List<string?>? captureNames,
        [NotNullWhen(false)] out string? error)
    {
        var t = new Translator(pattern);
        if (t.Run(out error))
        {
            translated = t.Output.ToString();
            captureNames = t.CaptureNames;
            return true;
        }

        translated = null;
        captureNames = null;
        return false;
    }

    private sealed class Translator(string pattern)
    {
        private readonly string _p = pattern;
        private readonly Stack<bool> _groupMultiline = new();
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private bool _multiline;
        private int _i;

        public StringBuilder Output { get; } = new(pattern.Length + 16);

        public List<string?> CaptureNames { get; } = new();

        public bool Run([NotNullWhen(false)] out string? error)
        {
            while (_i < _p.Length)
            {
                char c = _p[_i];
                string? failure = null;
                bool ok = c switch
                {
                    '\\' => Escape(inClass: false, out failure),
                    '[' => CharClass(out failure),
                    '(' => OpenGroup(out failure),
                    '{' => Repetition(out failure),
                    _ => Simple(c),
                };
                if (!ok)
                {
                    error = failure ?? "invalid regex";
                    return false;
                }
            }

            error = null;
            return true;
        }

        private bool Simple(char c)
        {
            switch (c)
            {
                case ')':
                    if (_groupMultiline.Count > 0)
                    {
                        _multiline = _groupMultiline.Pop();
                    }

                    Output.Append(')');
                    break;
                case '$':
                    // Without (?m), RE2's '$' is end of text only; .NET's also matches before a final '\n'.
                    Output.Append(_multiline ? "$" : @"\z");
                    break;
                default:
                    Output.Append(c);
                    break;
            }

            _i++;
            return true;
        }

        private bool OpenGroup([NotNullWhen(false)] out string? error)
        {
            error = null;
            if (!At(_i + 1, '?'))
            {
                CaptureNames.Add(null);
                return Push("(", 1);
            }

            if (At(_i + 2, 'P') && At(_i + 3, '<'))
            {
                return NamedGroup(_i + 4, out error);
            }

            if (At(_i + 2, '<') && !At(_i + 3, '=') && !At(_i + 3, '!'))
            {
                return NamedGroup(_i + 3, out error);
            }

            if (At(_i + 2, ':'))
            {
                return Push("(?:", 3);
            }

            // Flag group: (?flags) or (?flags:...). RE2 knows only i, m, s and U.
            int j = _i + 2;
            bool negate = false;
            bool multiline = _multiline;
            var flags = new StringBuilder();
            while (j < _p.Length && _p[j] != ')' && _p[j] != ':')
            {
                char f = _p[j];
                switch (f)
                {
                    case '-' when !negate:
                        negate = true;
                        break;
                    case 'i' or 's':
                        break;
                    case 'm':
                        multiline = !negate;
                        break;
                    case 'U':
                        error = "the ungreedy flag (?U) is not supported";
                        return false;
                    default:
                        error = $"invalid or unsupported Perl syntax: '{_p.Substring(_i, j - _i + 1)}' (RE2 has no lookaround, atomic groups, comments or flags other than i, m, s)";
                        return false;
                }

                flags.Append(f);
                j++;
            }

            if (j >= _p.Length)
            {
                error = "missing closing )";
                return false;
            }

            if (flags.Length == 0 || flags[^1] == '-')
            {
                error = $"invalid or unsupported Perl syntax: '{_p.Substring(_i, j - _i + 1)}'";
                return false;
            }

            if (_p[j] == ')')
            {
                // Applies to the rest of the enclosing group, as in .NET.
                _multiline = multiline;
                Output.Append("(?").Append(flags).Append(')');
                _i = j + 1;
                return true;
            }

            _groupMultiline.Push(_multiline);
            _multiline = multiline;
            Output.Append("(?").Append(flags).Append(':');
            _i = j + 1;
            return true;
        }

        private bool NamedGroup(int nameStart, [NotNullWhen(false)] out string? error)
        {
            int end = _p.IndexOf('>', nameStart);
            if (end < 0)
            {
                error = "invalid named capture group";
                return false;
            }

            string name = _p[nameStart..end];
            if (name.Length == 0 || !IsWordOnly(name) || char.IsAsciiDigit(name[0]))
            {
                error = $"invalid named capture group: '{name}'";
                return false;
            }

            if (!_names.Add(name))
            {
                error = $"duplicate capture group name: '{name}'";
                return false;
            }

            CaptureNames.Add(name);
            _groupMultiline.Push(_multiline);
            Output.Append("(?<").Append(name).Append('>');
            _i = end + 1;
            error = null;
            return true;
        }

        private bool Push(string text, int consumed)
        {
            _groupMultiline.Push(_multiline);
            Output.Append(text);
            _i += consumed;
            return true;
        }

        private bool Repetition([NotNullWhen(false)] out string? error)
        {
            error = null;
            int close = _p.IndexOf('}', _i);
            if (close > 0)
            {
                ReadOnlySpan<char> body = _p.AsSpan(_i + 1, close - _i - 1);
                int comma = body.IndexOf(',');
                ReadOnlySpan<char> min = comma < 0 ? body : body[..comma];
                ReadOnlySpan<char> max = comma < 0 ? default : body[(comma + 1)..];
                if (min.Length > 0 && IsDigits(min) && (max.Length == 0 || IsDigits(max)))
                {
                    if (!int.TryParse(min, NumberStyles.None, CultureInfo.InvariantCulture, out int lo) || lo > MaxRepeat
                        || (max.Length > 0 && (!int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out int hi) || hi > MaxRepeat || hi < lo)))
                    {
                        error = $"bad repetition operator: {_p.Substring(_i, close - _i + 1)}";
                        return false;
                    }
                }
            }

            // Not a valid repetition is a literal '{' in both RE2 and .NET.
            Output.Append('{');
            _i++;
            return true;
        }

        private bool CharClass([NotNullWhen(false)] out string? error)
        {
            Output.Append('[');
            _i++;
            if (At(_i, '^'))
            {
                Output.Append('^');
                _i++;
            }

            if (At(_i, ']'))
            {
                // A leading ']' is a literal in RE2.
                Output.Append(@"\]");
                _i++;
            }

            while (_i < _p.Length && _p[_i] != ']')
            {
                char c = _p[_i];
                if (c == '\\')
                {
                    if (!Escape(inClass: true, out error))
                    {
                        return false;
                    }
                }
                else if (c == '[' && At(_i + 1, ':'))
                {
                    if (!PosixClass(out error))
                    {
                        return false;
                    }
                }
                else if (c == '[')
                {
                    // .NET reads "-[" as class subtraction; RE2 sees a literal.
                    Output.Append(@"\[");
                    _i++;
                }
                else
                {
                    Output.Append(c);
                    _i++;
                }
            }

            if (_i >= _p.Length)
            {
                error = "missing closing ]";
                return false;
            }

            Output.Append(']');
            _i++;
            error = null;
            return true;
        }

        private bool PosixClass([NotNullWhen(false)] out string? error)
        {
            int end = _p.IndexOf(":]", _i + 2, StringComparison.Ordinal);
            if (end < 0)
            {
                // Not a POSIX class: a literal '[' followed by ':'.
                Output.Append(@"\[");
                _i++;
                error = null;
                return true;
            }

            string name = _p[(_i + 2)..end];
            string? chars = name switch
            {
                "alnum" => "0-9A-Za-z",
                "alpha" => "A-Za-z",
                "ascii" => @"\x00-\x7F",
                "blank" => @"\t ",
                "cntrl" => @"\x00-\x1F\x7F",
                "digit" => "0-9",
                "graph" => "!-~",
                "lower" => "a-z",
                "print" => " -~",
                "punct" => @"!-/:-@\[-`{-~",
                "space" => @"\t\n\v\f\r ",
                "upper" => "A-Z",
                "word" => "0-9A-Za-z_",
                "xdigit" => "0-9A-Fa-f",
                _ => null,
            };
            if (chars is null)
            {
                error = name.StartsWith('^')
                    ? $"negated POSIX class '[:{name}:]' is not supported"
                    : $"invalid character class range: [:{name}:]";
                return false;
            }

            Output.Append(chars);
            _i = end + 2;
            error = null;
            return true;
        }

        private bool Escape(bool inClass, [NotNullWhen(false)] out string? error)
        {
            error = null;
            if (_i + 1 >= _p.Length)
            {
                error = "trailing \\ at end of regex";
                return false;
            }

            char e = _p[_i + 1];
            switch (e)
            {
                case 'd':
                    Output.Append(inClass ? DigitChars : "[" + DigitChars + "]");
                    break;
                case 'w':
                    Output.Append(inClass ? WordChars : "[" + WordChars + "]");
                    break;
                case 's':
                    Output.Append(inClass ? SpaceChars : "[" + SpaceChars + "]");
                    break;
                case 'D' when !inClass:
                    Output.Append("[^" + DigitChars + "]");
                    break;
                case 'W' when !inClass:
                    Output.Append("[^" + WordChars + "]");
                    break;
                case 'S' when !inClass:
                    Output.Append("[^" + SpaceChars + "]");
                    break;
                case 'p' or 'P':
                    return UnicodeClass(e, out error);
                case 'x':
                    return Hex(inClass, out error);
                case 'Q' when !inClass:
                    return Quoted();
                case 'E' when !inClass:
                    // A stray \E is ignored by RE2.
                    break;
                case 'C':
                    error = "\\C (any byte) is not supported";
                    return false;
                case 'Z':
                    error = "invalid escape sequence: \\Z";
                    return false;
                case >= '1' and <= '9' when !inClass:
                    error = $"invalid escape sequence: \\{e} (RE2 has no backreferences)";
                    return false;
                default:
                    Output.Append('\\').Append(e);
                    break;
            }

            _i += 2;
            return true;
        }

        private bool UnicodeClass(char p, [NotNullWhen(false)] out string? error)
        {
            error = null;
            int start = _i + 2;
            if (start >= _p.Length)
            {
                error = "invalid character class range: \\" + p;
                return false;
            }

            string name;
            if (_p[start] == '{')
            {
                int close = _p.IndexOf('}', start);
                if (close < 0)
                {
                    error = "invalid character class range: " + _p[_i..];
                    return false;
                }

                name = _p[(start + 1)..close];
                _i = close + 1;
            }
            else
            {
                name = _p[start].ToString();
                _i = start + 1;
            }

            if (name.StartsWith('^'))
            {
                // \p{^X} is RE2's spelling of \P{X}.
                name = name[1..];
                p = p == 'p' ? 'P' : 'p';
            }

            Output.Append('\\').Append(p).Append('{').Append(name).Append('}');
            return true;
        }

        private bool Hex(bool inClass, [NotNullWhen(false)] out string? error)
        {
            error = null;
            if (!At(_i + 2, '{'))
            {
                // \xHH is the same in both.
                Output.Append(@"\x");
                _i += 2;
                return true;
            }

            int close = _p.IndexOf('}', _i + 3);
            if (close < 0
                || !int.TryParse(_p.AsSpan(_i + 3, close - _i - 3), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp)
                || cp > 0x10FFFF)
            {
                error = "invalid escape sequence: " + (close < 0 ? _p[_i..] : _p[_i..(close + 1)]);
                return false;
            }

            if (cp <= 0xFFFF)
            {
                Output.Append(@"\u").Append(cp.ToString("X4", CultureInfo.InvariantCulture));
            }
            else
            {
                string pair = char.ConvertFromUtf32(cp);
                string units = $@"\u{(int)pair[0]:X4}\u{(int)pair[1]:X4}";
                Output.Append(inClass ? units : "(?:" + units + ")");
            }

            _i = close + 1;
            return true;
        }

        private bool Quoted()
        {
            int start = _i + 2;
            int end = _p.IndexOf(@"\E", start, StringComparison.Ordinal);
            string literal = end < 0 ? _p[start..] : _p[start..end];
            Output.Append(Regex.Escape(literal));
            _i = end < 0 ? _p.Length : end + 2;
            return true;
        }

        private bool At(int index, char c) => index < _p.Length && _p[index] == c;

        private static bool IsDigits(ReadOnlySpan<char> s) => !s.ContainsAnyExceptInRange('0', '9');

        private static bool IsWordOnly(string s)
        {
            foreach (char c in s)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '_')
                {
                    return false;
                }
            }

            return true;
        }
    }
}
