using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Translation;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.Config.Tests.Translation;

/// <summary>The EDS fast path gives exactly what the full path (parse, support check, translate) gives, and leaves
/// everything else to it.</summary>
public sealed class LoadAssignmentWireTranslatorTests
{
    /// <summary>The full path as the xDS client runs it: null endpoints when the bytes do not parse.</summary>
    private static (string Name, LoadAssignmentModel? Endpoints, ConfigErrors Errors) FullPath(byte[] wire)
    {
        var errors = new ConfigErrors();
        ClusterLoadAssignment proto;
        try
        {
            proto = ClusterLoadAssignment.Parser.ParseFrom(wire);
        }
        catch (InvalidProtocolBufferException e)
        {
            errors.Add("", e.Message);
            return ("", null, errors);
        }
        if (proto.ClusterName.Length == 0) errors.Add("", "a ClusterLoadAssignment needs a cluster_name");
        SupportChecker.Check(proto, proto.ClusterName, errors);
        return (proto.ClusterName, ClusterTranslator.TranslateLoadAssignment(proto, proto.ClusterName, errors, DiscoveryType.Eds), errors);
    }

    private static LbEndpoint Lbe(string address, uint port) => new()
    {
        Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = address, PortValue = port } } },
    };

    private static void AssertSameAsFullPath(byte[] wire)
    {
        var fast = LoadAssignmentWireTranslator.TryTranslate(wire, out var name);
        Assert.NotNull(fast);
        var (fullName, full, errors) = FullPath(wire);
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(fullName, name);
        Assert.Equal(full!, fast);
        Assert.Equal(full!.OverprovisioningFactor, fast.OverprovisioningFactor);
        Assert.Equal(full.WeightedPriorityHealth, fast.WeightedPriorityHealth);
    }

    [Fact]
    public void PlainAssignment_IsTranslatedFromTheWire_AsTheFullPathDoes()
    {
        var cla = new ClusterLoadAssignment { ClusterName = "backend" };
        var zoneA = new LocalityLbEndpoints { Locality = new Locality { Region = "r", Zone = "a" }, LoadBalancingWeight = 3 };
        zoneA.LbEndpoints.Add(Lbe("10.0.0.1", 8080));
        var weighted = Lbe("10.0.0.2", 8081);
        weighted.LoadBalancingWeight = 7;
        weighted.HealthStatus = HealthStatus.Degraded;
        weighted.Endpoint.Hostname = "b.example";
        zoneA.LbEndpoints.Add(weighted);
        var failover = new LocalityLbEndpoints { Priority = 2, Locality = new Locality() };
        var v6 = Lbe("::1", 9000);
        v6.Endpoint.Address.SocketAddress.Ipv4Compat = true;
        v6.HealthStatus = HealthStatus.Unhealthy;
        failover.LbEndpoints.Add(v6);
        cla.Endpoints.Add(zoneA);
        cla.Endpoints.Add(failover);
        cla.Endpoints.Add(new LocalityLbEndpoints());

        var wire = cla.ToByteArray();
        AssertSameAsFullPath(wire);
        var fast = LoadAssignmentWireTranslator.TryTranslate(wire, out _)!;
        Assert.Equal(3, fast.Count);
        Assert.Equal(new EndpointModel(new("10.0.0.2", 8081), "b.example", new LocalityModel("r", "a", ""), 7, EndpointHealthStatus.Degraded,
            false, 0, 3), fast[1]);
        Assert.Equal(2u, fast[2].Priority);
    }

    [Fact]
    public void LocalityAfterItsEndpoints_OnTheWire_StillAppliesToThem()
    {
        // Concatenated messages merge: here locality, weight and priority follow the lb_endpoints.
        var endpoints = new LocalityLbEndpoints();
        endpoints.LbEndpoints.Add(Lbe("10.0.0.1", 80));
        var rest = new LocalityLbEndpoints { Locality = new Locality { Zone = "z" }, Priority = 1, LoadBalancingWeight = 5 };
        var lle = endpoints.ToByteArray().Concat(rest.ToByteArray()).ToArray();
        var wire = new ClusterLoadAssignment { ClusterName = "c" }.ToByteArray()
            .Concat(new byte[] { 0x12, (byte)lle.Length }).Concat(lle).ToArray();

        AssertSameAsFullPath(wire);
        var ep = Assert.Single(LoadAssignmentWireTranslator.TryTranslate(wire, out _)!);
        Assert.Equal(("z", 1u, (uint?)5u), (ep.Locality.Zone, ep.Priority, ep.LocalityWeight));
    }

    public static TheoryData<string> NotPlain() =>
    [
        "port 0", "port 70000", "host name", "empty address", "endpoint weight 0", "locality weight 0", "priority 129", "udp",
        "named port", "pipe", "health check config", "endpoint name", "policy", "named endpoints",
        "additional addresses", "resolver name", "no cluster name", "no endpoint", "proximity",
    ];

    [Theory]
    [MemberData(nameof(NotPlain))]
    public void AnythingButThePlainCase_IsLeftToTheFullPath(string variant)
    {
        var cla = new ClusterLoadAssignment { ClusterName = "c" };
        var lle = new LocalityLbEndpoints();
        var lbe = Lbe("10.0.0.1", 80);
        var sa = lbe.Endpoint.Address.SocketAddress;
        switch (variant)
        {
            case "port 0": sa.PortValue = 0; break;
            case "port 70000": sa.PortValue = 70000; break;
            case "host name": sa.Address = "backend.example"; break;
            case "empty address": sa.Address = ""; break;
            case "endpoint weight 0": lbe.LoadBalancingWeight = 0; break;
            case "locality weight 0": lle.LoadBalancingWeight = 0; break;
            case "priority 129": lle.Priority = 129; break;
            case "udp": sa.Protocol = SocketAddress.Types.Protocol.Udp; break;
            case "named port": sa.NamedPort = "http"; break;
            case "pipe": lbe.Endpoint.Address = new Address { Pipe = new Pipe { Path = "/tmp/x.sock" } }; break;
            case "health check config": lbe.Endpoint.HealthCheckConfig = new Endpoint.Types.HealthCheckConfig { PortValue = 81 }; break;
            case "endpoint name": lbe.EndpointName = "e"; break;
            case "policy": cla.Policy = new ClusterLoadAssignment.Types.Policy { OverprovisioningFactor = 200 }; break;
            case "named endpoints": cla.NamedEndpoints.Add("n", lbe.Endpoint); break;
            case "additional addresses": lbe.Endpoint.AdditionalAddresses.Add(new Endpoint.Types.AdditionalAddress { Address = lbe.Endpoint.Address }); break;
            case "resolver name": sa.ResolverName = "r"; break;
            case "no cluster name": cla.ClusterName = ""; break;
            case "no endpoint": lbe.Endpoint = null; break;
            case "proximity": lle.Proximity = 1; break;
            default: throw new ArgumentException(variant);
        }
        lle.LbEndpoints.Add(lbe);
        cla.Endpoints.Add(lle);

        Assert.Null(LoadAssignmentWireTranslator.TryTranslate(cla.ToByteArray(), out _));
    }

    [Fact]
    public void Metadata_AsIstioSetsIt_StaysOnTheFastPath_AndBadMetadataIsLeftToTheFullPath()
    {
        var cla = new ClusterLoadAssignment { ClusterName = "outbound|80||reviews.default.svc.cluster.local" };
        var lle = new LocalityLbEndpoints { Locality = new Locality { Region = "r", Zone = "z" }, Metadata = new Metadata() };
        var lbe = Lbe("10.1.2.3", 9080);
        lbe.Metadata = new Metadata();
        lbe.Metadata.FilterMetadata.Add("istio", Struct.Parser.ParseJson("""{ "workload": "reviews-v1;default;reviews;v1;Kubernetes" }"""));
        lbe.Metadata.FilterMetadata.Add("envoy.transport_socket_match", Struct.Parser.ParseJson("""{ "tlsMode": "istio" }"""));
        lbe.Metadata.TypedFilterMetadata.Add("com.example.unknown", new Any { TypeUrl = "type.googleapis.com/com.example.Unknown", Value = ByteString.CopyFromUtf8("x") });
        lle.LbEndpoints.Add(lbe);
        cla.Endpoints.Add(lle);
        var wire = cla.ToByteArray();
        AssertSameAsFullPath(wire);

        // Metadata whose bytes do not parse: the full path reports it.
        var bad = new LbEndpoint { Endpoint = lbe.Endpoint }.ToByteArray().Concat(new byte[] { 0x1A, 2, 0x0A, 5 }).ToArray();
        var badWire = new byte[] { 0x0A, 1, (byte)'c', 0x12, (byte)(bad.Length + 2), 0x12, (byte)bad.Length }.Concat(bad).ToArray();
        Assert.Null(LoadAssignmentWireTranslator.TryTranslate(badWire, out _));
        Assert.True(FullPath(badWire).Errors.HasErrors);
    }

    [Fact]
    public void WireTheParserMergesOrRefuses_IsLeftToTheFullPath()
    {
        var cla = new ClusterLoadAssignment { ClusterName = "c" };
        var lle = new LocalityLbEndpoints();
        lle.LbEndpoints.Add(Lbe("10.0.0.1", 80));
        cla.Endpoints.Add(lle);
        var wire = cla.ToByteArray();
        Assert.NotNull(LoadAssignmentWireTranslator.TryTranslate(wire, out _));

        // Cut short anywhere: never read past the end.
        for (var n = 1; n < wire.Length; n++)
            if (LoadAssignmentWireTranslator.TryTranslate(wire.AsSpan(0, n), out _) is { } partial)
                Assert.Equal(FullPath(wire[..n]).Endpoints!, partial);
        // An unknown field, a second address (the parser merges the two), a name that is not UTF-8.
        Assert.Null(LoadAssignmentWireTranslator.TryTranslate([.. wire, 0x78, 0x01], out _));
        var address = new Address { SocketAddress = new SocketAddress { PortValue = 81 } }.ToByteArray();
        var endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = "10.0.0.1", PortValue = 80 } } }
            .ToByteArray().Concat(new byte[] { 0x0A, (byte)address.Length }).Concat(address).ToArray();
        var lbe = new byte[] { 0x0A, (byte)endpoint.Length }.Concat(endpoint).ToArray();
        var twoAddresses = new byte[] { 0x0A, 1, (byte)'c', 0x12, (byte)(lbe.Length + 2), 0x12, (byte)lbe.Length }.Concat(lbe).ToArray();
        Assert.Equal(81, Assert.Single(FullPath(twoAddresses).Endpoints!).Address.Port);
        Assert.Null(LoadAssignmentWireTranslator.TryTranslate(twoAddresses, out _));
        Assert.Null(LoadAssignmentWireTranslator.TryTranslate([0x0A, 2, 0xC3, 0x28], out _));
    }

    [Fact]
    public void CorruptedBytes_NeverThrow_AndWhatTheFastPathAcceptsTheFullPathAcceptsAlike()
    {
        var cla = new ClusterLoadAssignment { ClusterName = "c" };
        var lle = new LocalityLbEndpoints { Locality = new Locality { Zone = "z" }, Priority = 1, LoadBalancingWeight = 3 };
        var lbe = Lbe("10.0.0.1", 8080);
        lbe.LoadBalancingWeight = 2;
        lbe.Metadata = new Metadata();
        lbe.Metadata.FilterMetadata.Add("istio", Struct.Parser.ParseJson("""{ "workload": "w" }"""));
        lle.LbEndpoints.Add(lbe);
        lle.LbEndpoints.Add(Lbe("10.0.0.2", 8081));
        cla.Endpoints.Add(lle);
        var wire = cla.ToByteArray();
        var random = new Random(7);
        var accepted = 0;
        for (var round = 0; round < 5000; round++)
        {
            var bytes = (byte[])wire.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            if (LoadAssignmentWireTranslator.TryTranslate(bytes, out _) is null) continue;
            accepted++;
            AssertSameAsFullPath(bytes);
        }
        Assert.True(accepted > 0, "no corrupted variant was still a plain assignment");
    }

    [Fact]
    public void RandomAssignments_FastPathAgreesWithTheFullPath_OrStandsAside()
    {
        // Assignments mixing plain endpoints with every kind of exception: whenever the fast path answers, the full path
        // accepts the same bytes and builds the same endpoints.
        var random = new Random(20261123);
        int fast = 0, aside = 0;
        for (var round = 0; round < 2000; round++)
        {
            var cla = new ClusterLoadAssignment { ClusterName = "c" + round };
            for (var l = random.Next(0, 4); l > 0; l--)
            {
                var lle = new LocalityLbEndpoints();
                if (random.Next(3) == 0) lle.Locality = new Locality { Region = random.Next(2) == 0 ? "r" : "", Zone = "z" + random.Next(3) };
                if (random.Next(3) == 0) lle.Priority = (uint)(random.Next(50) == 0 ? 129 : random.Next(3));
                if (random.Next(3) == 0) lle.LoadBalancingWeight = (uint)(random.Next(40) == 0 ? 0 : random.Next(1, 100));
                for (var e = random.Next(0, 5); e > 0; e--)
                {
                    var lbe = Lbe(random.Next(10) == 0 ? "fe80::" + random.Next(100) : $"10.0.{random.Next(256)}.{random.Next(256)}",
                        (uint)(random.Next(60) == 0 ? 0 : random.Next(60) == 0 ? 65536 : random.Next(1, 65536)));
                    if (random.Next(4) == 0) lbe.LoadBalancingWeight = (uint)(random.Next(40) == 0 ? 0 : random.Next(1, 1000));
                    if (random.Next(4) == 0) lbe.HealthStatus = (HealthStatus)random.Next(6);
                    if (random.Next(5) == 0) lbe.Endpoint.Hostname = "h" + random.Next(10);
                    if (random.Next(50) == 0) lbe.Endpoint.Address.SocketAddress.Address = "not-an-ip";
                    if (random.Next(50) == 0) lbe.Endpoint.HealthCheckConfig = new Endpoint.Types.HealthCheckConfig { PortValue = 1 };
                    if (random.Next(50) == 0) lbe.Endpoint.Address.SocketAddress.Protocol = SocketAddress.Types.Protocol.Udp;
                    lle.LbEndpoints.Add(lbe);
                }
                cla.Endpoints.Add(lle);
            }
            var wire = cla.ToByteArray();
            if (LoadAssignmentWireTranslator.TryTranslate(wire, out _) is null)
            {
                aside++;
                continue;
            }
            fast++;
            AssertSameAsFullPath(wire);
        }
        Assert.True(fast > 500 && aside > 100, $"fast {fast}, left to the full path {aside}");
    }
}
