using Google.Protobuf.Reflection;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Enum values as Envoy users write them ("MAGLEV", "ORIGINAL_DST"), not as C# spells them.</summary>
internal static class ProtoEnum
{
    public static string Name<T>(T value) where T : struct, Enum
    {
        var field = typeof(T).GetField(value.ToString());
        var attr = field is null ? null : (OriginalNameAttribute?)Attribute.GetCustomAttribute(field, typeof(OriginalNameAttribute));
        return attr?.Name ?? value.ToString();
    }
}
