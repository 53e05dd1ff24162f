using System.Text;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

public sealed class XxHash64Tests
{
    /// <summary>Published XXH64 reference values (empty input, short inputs, a 39-byte input that takes the 32-byte
    /// stripe loop, and a seeded one).</summary>
    [Theory]
    [InlineData("", 0UL, 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0UL, 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0UL, 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0UL, 0xFBCEA83C8A378BF1UL)]
    [InlineData("xxhash", 20141025UL, 0xB559B98D844E0635UL)]
    public void Hash_MatchesReferenceVectors(string input, ulong seed, ulong expected)
    {
        Assert.Equal(expected, XxHash64.Hash(Encoding.UTF8.GetBytes(input), seed));
        Assert.Equal(expected, XxHash64.HashUtf8(input, seed));
    }

    [Fact]
    public void HashUtf8_LongInput_EqualsByteHash()
    {
        var s = new string('x', 5000) + "é";
        Assert.Equal(XxHash64.Hash(Encoding.UTF8.GetBytes(s)), XxHash64.HashUtf8(s));
    }
}
