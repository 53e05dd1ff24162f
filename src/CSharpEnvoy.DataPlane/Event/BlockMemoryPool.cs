using System.Buffers;
using System.Collections.Concurrent;

namespace CSharpEnvoy.DataPlane.Event;

/// <summary>
/// The pipes' memory for connections on our dispatchers: 4 KB pinned blocks, reused without allocating (as Kestrel's
/// own pool does; <c>MemoryPool&lt;byte&gt;.Shared</c> allocates a wrapper on every rent, twice per request). Blocks are
/// only in use while a connection has bytes buffered: an idle connection holds none.
/// </summary>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    public static readonly BlockMemoryPool Instance = new();

    private readonly ConcurrentQueue<Block> _free = new();

    public override int MaxBufferSize => BlockSize;

    /// <summary>A block; larger asks never come from a pipe (it rents those from the array pool itself).</summary>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize) return MemoryPool<byte>.Shared.Rent(minBufferSize);
        return _free.TryDequeue(out var block) ? block : new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        public Memory<byte> Memory { get; } = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public void Dispose() => pool._free.Enqueue(this);
    }
}
