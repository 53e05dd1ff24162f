using Microsoft.Extensions.Primitives;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Comma-separated header values (Connection, Cache-Control, Transfer-Encoding, Vary ...) read as tokens.</summary>
internal static class HeaderTokens
{
    /// <summary>Whether a list has the token, compared case-insensitively with optional whitespace around it.</summary>
    public static bool Contains(string? value, string token)
    {
        if (value is null) return false;
        foreach (var range in value.AsSpan().Split(','))
            if (value.AsSpan(range).Trim(" \t").Equals(token, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>As <see cref="Contains(string?, string)"/>, over every line of the header.</summary>
    public static bool Contains(StringValues values, string token)
    {
        foreach (var line in values)
            if (Contains(line, token)) return true;
        return false;
    }
}
