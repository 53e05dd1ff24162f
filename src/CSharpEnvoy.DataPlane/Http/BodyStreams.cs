namespace CSharpEnvoy.DataPlane.Http;

/// <summary>A body read front to back: no length, no seeking, no writing. Subclasses supply the reads.</summary>
internal abstract class ReadOnlyBodyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A body written front to back: no length, no seeking, no reading. Subclasses supply the writes and flushes.</summary>
internal abstract class WriteOnlyBodyStream : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>A body kept in memory as it is written: every write, async or not, is the synchronous
/// <see cref="Write(ReadOnlySpan{byte})"/> subclasses supply, and there is nothing to flush.</summary>
internal abstract class InMemoryWriteStream : WriteOnlyBodyStream
{
    public abstract override void Write(ReadOnlySpan<byte> buffer);

    public sealed override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public sealed override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public sealed override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public sealed override void Flush() { }

    public sealed override Task FlushAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>A request body a filter could not take (bad base64, too large to buffer): the router answers it with a
/// local reply of <see cref="Status"/> (400 by default) carrying this message and details instead of treating it as a
/// downstream disconnect.</summary>
internal sealed class BadRequestBodyException(string message, string details, int status = 400) : IOException(message)
{
    public string Details { get; } = details;
    public int Status { get; } = status;
}
