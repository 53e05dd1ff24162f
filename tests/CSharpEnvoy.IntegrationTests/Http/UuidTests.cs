using CSharpEnvoy.DataPlane.Http;

namespace CSharpEnvoy.IntegrationTests.Http;

public sealed class UuidTests
{
    [Fact]
    public void NewV4_AcrossBlockRefills_IsRandomVersion4AndUnique()
    {
        // 1,000 ids draw from eight 2 KB blocks: refills must not repeat bytes or lose the version and variant bits.
        var seen = new HashSet<string>();
        for (var i = 0; i < 1000; i++)
        {
            var id = Uuid.NewV4();
            Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id);
            Assert.Equal(4, Guid.Parse(id).Version);
            Assert.True(seen.Add(id), $"repeated id {id}");
        }
    }

    [Fact]
    public async Task NewV4_OnManyThreads_GivesDistinctIds()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Enumerable.Range(0, 300).Select(_ => Uuid.NewV4()).ToArray())));
        Assert.Equal(8 * 300, ids.SelectMany(a => a).Distinct().Count());
    }
}
