namespace CSharpEnvoy.Config.Model.Matchers;

/// <summary>
/// ASCII-only case folding. Envoy lower-cases with absl's ASCII helpers, so non-ASCII characters
/// must compare exactly; .NET's OrdinalIgnoreCase would fold them too.
/// </summary>
internal static class AsciiText
{
    public static char ToLower(char c) => (uint)(c - 'A') <= 'Z' - 'A' ? (char)(c | 0x20) : c;

    public static bool HasUpper(ReadOnlySpan<char> s)
    {
        // A plain loop: MemoryExtensions.ContainsAnyInRange was measured allocating per call here.
        foreach (char c in s)
        {
            if ((uint)(c - 'A') <= 'Z' - 'A')
            {
                return true;
            }
        }

        return false;
    }

    public static string ToLower(string s)
    {
        if (!HasUpper(s))
        {
            return s;
        }

        return string.Create(s.Length, s, static (dst, src) => ToLower(src, dst));
    }

    public static void ToLower(ReadOnlySpan<char> src, Span<char> dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = ToLower(src[i]);
        }
    }

    public static bool EqualsIgnoreCase(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (int i = 0; i < a.Length; i++)
        {
            char x = a[i];
            char y = b[i];
            if (x != y && ToLower(x) != ToLower(y))
            {
                return false;
            }
        }

        return true;
    }

    public static bool StartsWithIgnoreCase(ReadOnlySpan<char> s, ReadOnlySpan<char> prefix) =>
        s.Length >= prefix.Length && EqualsIgnoreCase(s[..prefix.Length], prefix);

    public static bool EndsWithIgnoreCase(ReadOnlySpan<char> s, ReadOnlySpan<char> suffix) =>
        s.Length >= suffix.Length && EqualsIgnoreCase(s[(s.Length - suffix.Length)..], suffix);

    public static bool ContainsIgnoreCase(ReadOnlySpan<char> s, ReadOnlySpan<char> value)
    {
        // Patterns come from config and are short, so a naive scan is fine.
        int last = s.Length - value.Length;
        for (int i = 0; i <= last; i++)
        {
            if (EqualsIgnoreCase(s.Slice(i, value.Length), value))
            {
                return true;
            }
        }

        return false;
    }
}
