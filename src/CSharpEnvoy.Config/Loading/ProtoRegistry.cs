using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CSharpEnvoy.Config.Loading;

/// <summary>Every message type compiled from <c>protos/</c> plus the well-known types, by full name, so that
/// <c>typed_config</c> and xDS <c>Any</c> payloads resolve by their <c>@type</c> URL.</summary>
internal sealed class ProtoRegistry
{
    public static ProtoRegistry Default { get; } = Build(typeof(ProtoRegistry).Assembly);

    private readonly Dictionary<string, MessageDescriptor> _byFullName;

    private ProtoRegistry(Dictionary<string, MessageDescriptor> byFullName)
    {
        _byFullName = byFullName;
        TypeRegistry = TypeRegistry.FromMessages(byFullName.Values);
    }

    public TypeRegistry TypeRegistry { get; }

    public IEnumerable<MessageDescriptor> Messages => _byFullName.Values;

    /// <summary>Resolves <c>type.googleapis.com/envoy.x.y.Z</c> (any host prefix) or a bare full name.</summary>
    public MessageDescriptor? Find(string typeUrlOrName)
    {
        var slash = typeUrlOrName.LastIndexOf('/');
        var name = slash >= 0 ? typeUrlOrName[(slash + 1)..] : typeUrlOrName;
        return _byFullName.GetValueOrDefault(name);
    }

    public static string TypeUrl(MessageDescriptor d) => "type.googleapis.com/" + d.FullName;

    /// <summary>A message declared in a <c>placeholders.proto</c> exists only so the fields that refer to it keep
    /// their wire types; using one in a config is an unsupported feature.</summary>
    public static bool IsPlaceholder(MessageDescriptor d) =>
        d.File.Name.EndsWith("placeholders.proto", StringComparison.Ordinal);

    // Trimming (Native AOT) keeps only the protoc "Reflection" classes the code names; the host roots this assembly
    // (TrimmerRootAssembly in CSharpEnvoy.Host.csproj) so every one of them, and its Descriptor, stays for GetTypes.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    [UnconditionalSuppressMessage("Trimming", "IL2065", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    private static ProtoRegistry Build(Assembly assembly)
    {
        var files = new List<FileDescriptor>
        {
            Google.Protobuf.WellKnownTypes.AnyReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.DurationReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.StructReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.WrappersReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.TimestampReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.EmptyReflection.Descriptor,
        };
        foreach (var type in assembly.GetTypes())
        {
            // protoc emits one static "<File>Reflection" class per .proto with a Descriptor property.
            if (!type.IsClass || !type.IsAbstract || !type.IsSealed || !type.Name.EndsWith("Reflection", StringComparison.Ordinal)) continue;
            var prop = type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static);
            if (prop?.PropertyType == typeof(FileDescriptor) && prop.GetValue(null) is FileDescriptor fd) files.Add(fd);
        }

        var all = new Dictionary<string, MessageDescriptor>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var m in f.MessageTypes) AddRecursive(all, m);
        return new ProtoRegistry(all);
    }

    private static void AddRecursive(Dictionary<string, MessageDescriptor> all, MessageDescriptor m)
    {
        all.TryAdd(m.FullName, m);
        foreach (var n in m.NestedTypes) AddRecursive(all, n);
    }

    /// <summary>Unpacks an Any through the registry; null with an error message when the type is unknown or the
    /// bytes are not that type.</summary>
    public IMessage? Unpack(Google.Protobuf.WellKnownTypes.Any any, out string? error)
    {
        var d = Find(any.TypeUrl);
        if (d is null)
        {
            error = $"unknown or unsupported type '{any.TypeUrl}'";
            return null;
        }
        try
        {
            error = null;
            return d.Parser.ParseFrom(any.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            error = $"cannot decode '{any.TypeUrl}': {ex.Message}";
            return null;
        }
    }
}
