using System.Buffers;
using System.IO.Compression;
using CSharpEnvoy.Config.Model.HttpFilters;

namespace CSharpEnvoy.DataPlane.Http.Filters.Compressor;

/// <summary>The compressing and decompressing streams of the gzip and brotli libraries.</summary>
internal static class Codecs
{
    /// <summary>A stream that compresses what is written into <paramref name="output"/>; disposing it writes the end.</summary>
    public static Stream Compressor(CompressorLibraryModel library, Stream output) => library.Coding switch
    {
        ContentCoding.Gzip => new GZipStream(output, new ZLibCompressionOptions
        {
            CompressionLevel = library.Level,
            CompressionStrategy = (ZLibCompressionStrategy)library.Strategy,
        }, leaveOpen: true),
        ContentCoding.Brotli => new BrotliCompressStream(output, library.Level, library.Window, library.ChunkSize),
        _ => Zstd(library, output),
    };

    private static ZstdSharp.CompressionStream Zstd(CompressorLibraryModel library, Stream output)
    {
        var zstd = new ZstdSharp.CompressionStream(output, library.Level, library.ChunkSize, leaveOpen: true);
        if (library.Checksum) zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        if (library.Strategy != 0) zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_strategy, library.Strategy);
        if (library.Dictionary is { } dictionary) zstd.LoadDictionary(dictionary);
        return zstd;
    }

    /// <summary>A stream that reads <paramref name="input"/> decompressed.</summary>
    public static Stream Decompressor(DecompressorLibraryModel library, Stream input)
    {
        switch (library.Coding)
        {
            case ContentCoding.Gzip:
                return new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
            case ContentCoding.Brotli:
                return new BrotliStream(input, CompressionMode.Decompress, leaveOpen: true);
            default:
                // Like Envoy, a body cut short passes on what it decoded (no end-of-frame check).
                var zstd = new ZstdSharp.DecompressionStream(input, library.ChunkSize, checkEndOfStream: false, leaveOpen: true);
                if (library.Dictionary is { } dictionary) zstd.LoadDictionary(dictionary);
                return zstd;
        }
    }

    /// <summary>A gzip member of no data: header, an empty final deflate block, CRC-32 and length 0.</summary>
    public static ReadOnlyMemory<byte> EmptyGzip { get; } = new byte[]
    {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };

    /// <summary>Whether an exception is the decoder refusing its input (not the body underneath failing).</summary>
    public static bool IsBadInput(Exception e) => e is InvalidDataException or ZstdSharp.ZstdException;
}

/// <summary>Brotli compression with the library's quality and window (which <see cref="BrotliStream"/> does not take):
/// each flush ends a brotli flush block, as Envoy's per-frame <c>BROTLI_OPERATION_FLUSH</c>.</summary>
internal sealed class BrotliCompressStream : WriteOnlyBodyStream
{
    private readonly Stream _output;
    private BrotliEncoder _encoder;
    private byte[]? _buffer;

    public BrotliCompressStream(Stream output, int quality, int window, int chunkSize)
    {
        _output = output;
        _encoder = new BrotliEncoder(quality, window);
        _buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> source)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(BrotliCompressStream));
        while (true)
        {
            var status = _encoder.Compress(source, buffer, out var consumed, out var written, isFinalBlock: false);
            if (status == System.Buffers.OperationStatus.InvalidData) throw new InvalidDataException("brotli encoder failed");
            if (written > 0) _output.Write(buffer, 0, written);
            source = source[consumed..];
            if (status == System.Buffers.OperationStatus.Done && source.IsEmpty) return;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken ct = default)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(BrotliCompressStream));
        while (true)
        {
            var status = _encoder.Compress(source.Span, buffer, out var consumed, out var written, isFinalBlock: false);
            if (status == System.Buffers.OperationStatus.InvalidData) throw new InvalidDataException("brotli encoder failed");
            if (written > 0) await _output.WriteAsync(buffer.AsMemory(0, written), ct).ConfigureAwait(false);
            source = source[consumed..];
            if (status == System.Buffers.OperationStatus.Done && source.IsEmpty) return;
        }
    }

    public override void Flush()
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(BrotliCompressStream));
        System.Buffers.OperationStatus status;
        do
        {
            status = _encoder.Flush(buffer, out var written);
            if (written > 0) _output.Write(buffer, 0, written);
        } while (status == System.Buffers.OperationStatus.DestinationTooSmall);
        _output.Flush();
    }

    public override async Task FlushAsync(CancellationToken ct)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(BrotliCompressStream));
        System.Buffers.OperationStatus status;
        do
        {
            status = _encoder.Flush(buffer, out var written);
            if (written > 0) await _output.WriteAsync(buffer.AsMemory(0, written), ct).ConfigureAwait(false);
        } while (status == System.Buffers.OperationStatus.DestinationTooSmall);
        await _output.FlushAsync(ct).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (_buffer is { } buffer)
        {
            try
            {
                System.Buffers.OperationStatus status;
                do
                {
                    status = _encoder.Compress(ReadOnlySpan<byte>.Empty, buffer, out _, out var written, isFinalBlock: true);
                    if (written > 0) _output.Write(buffer, 0, written);
                } while (status == System.Buffers.OperationStatus.DestinationTooSmall);
            }
            finally
            {
                Release(buffer);
            }
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_buffer is { } buffer)
        {
            try
            {
                System.Buffers.OperationStatus status;
                do
                {
                    status = _encoder.Compress(ReadOnlySpan<byte>.Empty, buffer, out _, out var written, isFinalBlock: true);
                    if (written > 0) await _output.WriteAsync(buffer.AsMemory(0, written)).ConfigureAwait(false);
                } while (status == System.Buffers.OperationStatus.DestinationTooSmall);
            }
            finally
            {
                Release(buffer);
            }
        }
        GC.SuppressFinalize(this);
    }

    private void Release(byte[] buffer)
    {
        _buffer = null;
        _encoder.Dispose();
        ArrayPool<byte>.Shared.Return(buffer);
    }
}

/// <summary>Bytes written and not yet read back: where a request body's compressor writes, and its reader takes.</summary>
internal sealed class ByteQueue : InMemoryWriteStream
{
    private byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    public int Available => _end - _start;

    public override void Write(ReadOnlySpan<byte> source)
    {
        if (_end + source.Length > _buffer.Length)
        {
            var pending = _end - _start;
            if (pending + source.Length > _buffer.Length)
            {
                var bigger = new byte[Math.Max(_buffer.Length * 2, pending + source.Length)];
                _buffer.AsSpan(_start, pending).CopyTo(bigger);
                _buffer = bigger;
            }
            else _buffer.AsSpan(_start, pending).CopyTo(_buffer);
            _start = 0;
            _end = pending;
        }
        source.CopyTo(_buffer.AsSpan(_end));
        _end += source.Length;
    }

    /// <summary>Moves up to <paramref name="destination"/>'s length of the queued bytes into it.</summary>
    public int Take(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, n).CopyTo(destination);
        _start += n;
        if (_start == _end) _start = _end = 0;
        return n;
    }
}
