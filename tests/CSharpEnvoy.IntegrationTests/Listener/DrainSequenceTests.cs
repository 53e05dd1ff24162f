using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Listener;

/// <summary>
/// Envoy's drain strategies decide per HTTP/1 response whether it asks the client to close: immediate always; gradual
/// with the share of the drain time gone as its probability, so none at the start, about half halfway, all at the end.
/// </summary>
public sealed class DrainSequenceTests
{
    private static int Closing(DrainSequence drain, int responses)
    {
        var n = 0;
        for (var i = 0; i < responses; i++) if (drain.CloseConnection()) n++;
        return n;
    }

    [Fact]
    public void Immediate_ClosesEveryResponse_FromTheStart()
    {
        var time = new ManualTimeProvider();
        var drain = new DrainSequence(DrainStrategy.Immediate, TimeSpan.FromSeconds(600), time);
        Assert.Equal(1000, Closing(drain, 1000));
    }

    [Fact]
    public void Gradual_ClosesNoneAtTheStart_AboutHalfHalfway_AndAllOnceTheDrainTimeIsOver()
    {
        var time = new ManualTimeProvider();
        var drain = new DrainSequence(DrainStrategy.Gradual, TimeSpan.FromSeconds(600), time);
        Assert.Equal(0, Closing(drain, 1000));

        time.Advance(TimeSpan.FromSeconds(300));
        // 4,000 draws at p = 0.5: the standard deviation is 32, so 1,700..2,300 is over nine of them either way.
        Assert.InRange(Closing(drain, 4000), 1700, 2300);

        time.Advance(TimeSpan.FromSeconds(300));
        Assert.Equal(1000, Closing(drain, 1000));
    }

    [Fact]
    public void Gradual_WithNoDrainTime_ClosesEveryResponse()
    {
        var drain = new DrainSequence(DrainStrategy.Gradual, TimeSpan.Zero, new ManualTimeProvider());
        Assert.Equal(100, Closing(drain, 100));
    }
}
