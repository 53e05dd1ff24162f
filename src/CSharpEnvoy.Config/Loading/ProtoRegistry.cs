using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CSharpEnvoy.Config.Loading;

/// <summary>Every message type compiled from <c>protos/</c> plus the well-known types, by full name, so that
/// <c>typed_config</c> and xDS <c>Any</c> payloads resolve by their <c>@type</c> URL. A .proto file's descriptor is
/// built the first time a name in its package is looked up (with the files it imports), not all at start: building
/// descriptors (and their reflection accessors) is most of what a config load costs before the first listener opens,
/// and a bootstrap uses a part of the API.</summary>
internal sealed class ProtoRegistry
{
    public static ProtoRegistry Default { get; } = new(typeof(ProtoRegistry).Assembly);

    private readonly ConcurrentDictionary<string, MessageDescriptor> _byFullName = new(StringComparer.Ordinal);
    /// <summary>The protoc "&lt;File&gt;Reflection" classes' <c>Descriptor</c> properties by package, normalised
    /// (<see cref="PackageKey"/>); a package's entry is removed once its files are loaded. Guarded by itself.</summary>
    private readonly Dictionary<string, List<PropertyInfo>> _unloaded = new(StringComparer.Ordinal);
    private TypeRegistry? _typeRegistry;

    internal ProtoRegistry(Assembly assembly)
    {
        foreach (var f in new[]
        {
            Google.Protobuf.WellKnownTypes.AnyReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.DurationReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.StructReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.WrappersReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.TimestampReflection.Descriptor,
            Google.Protobuf.WellKnownTypes.EmptyReflection.Descriptor,
        })
            Add(f);
        foreach (var (ns, property) in ReflectionClasses(assembly))
        {
            var key = PackageKey(ns);
            if (!_unloaded.TryGetValue(key, out var list)) _unloaded[key] = list = [];
            list.Add(property);
        }
    }

    /// <summary>Packages whose files are not built yet.</summary>
    internal int UnloadedPackages
    {
        get
        {
            lock (_unloaded) return _unloaded.Count;
        }
    }

    /// <summary>For JSON with <c>Any</c> fields (the admin's config dump): every type, so every file is loaded.</summary>
    public TypeRegistry TypeRegistry
    {
        get
        {
            if (_typeRegistry is { } r) return r;
            LoadAll();
            return _typeRegistry = TypeRegistry.FromMessages(_byFullName.Values);
        }
    }

    public IEnumerable<MessageDescriptor> Messages
    {
        get
        {
            LoadAll();
            return _byFullName.Values;
        }
    }

    /// <summary>Resolves <c>type.googleapis.com/envoy.x.y.Z</c> (any host prefix) or a bare full name.</summary>
    public MessageDescriptor? Find(string typeUrlOrName)
    {
        var slash = typeUrlOrName.LastIndexOf('/');
        var name = slash >= 0 ? typeUrlOrName[(slash + 1)..] : typeUrlOrName;
        if (_byFullName.TryGetValue(name, out var d)) return d;
        // Not loaded yet: the package is a prefix of the name (nested messages add more parts), so try each.
        for (var dot = name.LastIndexOf('.'); dot > 0; dot = name.LastIndexOf('.', dot - 1))
            if (LoadPackage(PackageKey(name.AsSpan(0, dot)))) break;
        return _byFullName.GetValueOrDefault(name);
    }

    public static string TypeUrl(MessageDescriptor d) => "type.googleapis.com/" + d.FullName;

    /// <summary>A message declared in a <c>placeholders.proto</c> exists only so the fields that refer to it keep
    /// their wire types; using one in a config is an unsupported feature.</summary>
    public static bool IsPlaceholder(MessageDescriptor d) =>
        d.File.Name.EndsWith("placeholders.proto", StringComparison.Ordinal);

    /// <summary>A proto package and the C# namespace protoc makes of it compare equal this way
    /// (<c>http_connection_manager</c> ↔ <c>HttpConnectionManager</c>).</summary>
    private static string PackageKey(ReadOnlySpan<char> packageOrNamespace)
    {
        Span<char> buffer = stackalloc char[packageOrNamespace.Length];
        var n = 0;
        foreach (var c in packageOrNamespace)
            if (c != '_') buffer[n++] = char.ToLowerInvariant(c);
        return new string(buffer[..n]);
    }

    /// <summary>Loads the files of one package; false when there is no such package (or it was loaded before).</summary>
    private bool LoadPackage(string key)
    {
        List<PropertyInfo>? files;
        lock (_unloaded)
        {
            if (!_unloaded.Remove(key, out files)) return false;
            // Under the lock, so a concurrent lookup of the same package waits for its messages instead of missing.
            foreach (var property in files)
                if (DescriptorOf(property) is { } fd) Add(fd);
        }
        return true;
    }

    private void LoadAll()
    {
        string[] keys;
        lock (_unloaded) keys = [.. _unloaded.Keys];
        foreach (var key in keys) LoadPackage(key);
    }

    private void Add(FileDescriptor file)
    {
        foreach (var m in file.MessageTypes) AddRecursive(m);
    }

    private void AddRecursive(MessageDescriptor m)
    {
        _byFullName.TryAdd(m.FullName, m);
        foreach (var n in m.NestedTypes) AddRecursive(n);
    }

    // Trimming (Native AOT) keeps only the protoc "Reflection" classes the code names; the host roots this assembly
    // (TrimmerRootAssembly in CSharpEnvoy.Host.csproj) so every one of them, and its Descriptor, stays for GetTypes.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    [UnconditionalSuppressMessage("Trimming", "IL2065", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "CSharpEnvoy.Config is a trimmer root assembly.")]
    private static IEnumerable<(string Namespace, PropertyInfo Descriptor)> ReflectionClasses(Assembly assembly)
    {
        foreach (var type in assembly.GetTypes())
        {
            // protoc emits one static "<File>Reflection" class per .proto with a Descriptor property.
            if (!type.IsClass || !type.IsAbstract || !type.IsSealed || !type.Name.EndsWith("Reflection", StringComparison.Ordinal)) continue;
            var prop = type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static);
            if (prop?.PropertyType == typeof(FileDescriptor) && type.Namespace is { } ns) yield return (ns, prop);
        }
    }

    private static FileDescriptor? DescriptorOf(PropertyInfo property) => property.GetValue(null) as FileDescriptor;

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
