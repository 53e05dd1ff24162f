using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Config.Tests.Model;

/// <summary>An in-memory request; headers repeat like on the wire and are joined with ',' on read.</summary>
internal sealed class TestRouteRequest : IRouteRequest
{
    private readonly List<KeyValuePair<string, string>> _headers = new();

    public TestRouteRequest(string pathAndQuery)
    {
        int q = pathAndQuery.IndexOf('?');
        Path = q < 0 ? pathAndQuery : pathAndQuery[..q];
        Query = q < 0 ? "" : pathAndQuery[(q + 1)..];
    }

    public string Path { get; }

    public string Query { get; }

    /// <summary>How many times the matcher read a header.</summary>
    public int HeaderReads { get; private set; }

    public TestRouteRequest With(string name, string value)
    {
        _headers.Add(new(name.ToLowerInvariant(), value));
        return this;
    }

    public string? GetHeader(string lowerName)
    {
        // The contract says names arrive lower-cased; catch a matcher that forgets.
        Assert.Equal(lowerName.ToLowerInvariant(), lowerName);
        HeaderReads++;
        string? result = null;
        foreach (KeyValuePair<string, string> h in _headers)
        {
            if (h.Key == lowerName)
            {
                result = result is null ? h.Value : result + "," + h.Value;
            }
        }

        return result;
    }
}
