using Microsoft.Win32.SafeHandles;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>
/// Random (version 4) UUIDs for x-request-id and <c>%UNIQUE_ID%</c>, as Envoy's <c>RandomGeneratorImpl::uuid</c>
/// makes them: random bytes from the kernel drawn in blocks per thread. <see cref="Guid.NewGuid"/> reads
/// /dev/urandom once per id, which was one system call in seven on a proxied request; a 2 KB block is one read per
/// 128 ids. The bytes come from /dev/urandom itself, as Guid's do: RandomNumberGenerator would load OpenSSL (about
/// 5 MB of resident memory) into a proxy that may have no TLS at all.
/// </summary>
internal static class Uuid
{
    private const int BlockSize = 2048;

    private static readonly SafeFileHandle? s_urandom = OpenUrandom();

    [ThreadStatic] private static byte[]? t_block;
    [ThreadStatic] private static int t_next;

    /// <summary>A new random UUID in its lowercase 8-4-4-4-12 form.</summary>
    public static string NewV4()
    {
        var block = t_block;
        var next = t_next;
        if (block is null || next > BlockSize - 16)
        {
            block = t_block ??= new byte[BlockSize];
            Refill(block);
            next = 0;
        }
        t_next = next + 16;
        Span<byte> b = stackalloc byte[16];
        block.AsSpan(next, 16).CopyTo(b);
        // RFC 9562 section 5.4: version 4 in the high nibble of octet 6, variant 10 in the top bits of octet 8. Guid's
        // span constructor reads its first three fields little-endian, so octet 6 of the text form is b[7].
        b[7] = (byte)((b[7] & 0x0F) | 0x40);
        b[8] = (byte)((b[8] & 0x3F) | 0x80);
        return new Guid(b).ToString();
    }

    private static void Refill(byte[] block)
    {
        if (s_urandom is { } urandom)
        {
            var filled = 0;
            try
            {
                while (filled < block.Length)
                {
                    var n = RandomAccess.Read(urandom, block.AsSpan(filled), filled);
                    if (n <= 0) break;
                    filled += n;
                }
            }
            catch (IOException)
            {
            }
            if (filled == block.Length) return;
        }
        // No /dev/urandom (or it failed): Guid's own random bytes, one id's worth at a time.
        for (var i = 0; i < block.Length; i += 16) Guid.NewGuid().TryWriteBytes(block.AsSpan(i));
    }

    private static SafeFileHandle? OpenUrandom()
    {
        try
        {
            return File.OpenHandle("/dev/urandom", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or PlatformNotSupportedException)
        {
            return null;
        }
    }
}
