using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// xxHash64 (XXH64), the hash Envoy uses for ring hash keys, maglev permutations and hash policies
/// (<c>HashUtil::xxHash64</c>, seed 0 unless stated). Written from the published algorithm description.
/// </summary>
internal static class XxHash64
{
    private const ulong P1 = 11400714785074694791UL;
    private const ulong P2 = 14029467366897019727UL;
    private const ulong P3 = 1609587929392839161UL;
    private const ulong P4 = 9650029242287828579UL;
    private const ulong P5 = 2870177450012600261UL;

    private const int StackLimit = 512;

    public static ulong Hash(ReadOnlySpan<byte> data, ulong seed = 0)
    {
        var len = data.Length;
        var p = 0;
        ulong h;
        if (len >= 32)
        {
            var v1 = seed + P1 + P2;
            var v2 = seed + P2;
            var v3 = seed;
            var v4 = seed - P1;
            var limit = len - 32;
            do
            {
                v1 = Round(v1, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(p)));
                v2 = Round(v2, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(p + 8)));
                v3 = Round(v3, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(p + 16)));
                v4 = Round(v4, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(p + 24)));
                p += 32;
            } while (p <= limit);
            h = BitOperations.RotateLeft(v1, 1) + BitOperations.RotateLeft(v2, 7) + BitOperations.RotateLeft(v3, 12) + BitOperations.RotateLeft(v4, 18);
            h = MergeRound(h, v1);
            h = MergeRound(h, v2);
            h = MergeRound(h, v3);
            h = MergeRound(h, v4);
        }
        else
        {
            h = seed + P5;
        }
        h += (ulong)len;
        while (p + 8 <= len)
        {
            h ^= Round(0, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(p)));
            h = BitOperations.RotateLeft(h, 27) * P1 + P4;
            p += 8;
        }
        if (p + 4 <= len)
        {
            h ^= BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(p)) * P1;
            h = BitOperations.RotateLeft(h, 23) * P2 + P3;
            p += 4;
        }
        while (p < len)
        {
            h ^= data[p] * P5;
            h = BitOperations.RotateLeft(h, 11) * P1;
            p++;
        }
        h ^= h >> 33;
        h *= P2;
        h ^= h >> 29;
        h *= P3;
        h ^= h >> 32;
        return h;
    }

    /// <summary>Hashes the UTF-8 bytes of <paramref name="text"/> (Envoy hashes strings as their bytes).</summary>
    public static ulong HashUtf8(ReadOnlySpan<char> text, ulong seed = 0)
    {
        var max = Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = null;
        var buffer = max <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(max));
        var n = Encoding.UTF8.GetBytes(text, buffer);
        var h = Hash(buffer[..n], seed);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong acc, ulong input)
    {
        acc += input * P2;
        acc = BitOperations.RotateLeft(acc, 31);
        return acc * P1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MergeRound(ulong acc, ulong val)
    {
        acc ^= Round(0, val);
        return acc * P1 + P4;
    }
}
