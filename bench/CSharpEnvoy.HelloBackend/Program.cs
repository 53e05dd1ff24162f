using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

// usage: CSharpEnvoy.HelloBackend <http1-port> <h2c-port>
var h1 = int.Parse(args[0]);
var h2 = int.Parse(args[1]);
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k =>
{
    k.AddServerHeader = false;
    k.Listen(IPAddress.Loopback, h1, o => o.Protocols = HttpProtocols.Http1);
    k.Listen(IPAddress.Loopback, h2, o => o.Protocols = HttpProtocols.Http2);
    k.Limits.Http2.MaxStreamsPerConnection = 1024;
});
var app = builder.Build();
var hello = "hello"u8.ToArray();
var grpcReply = new byte[5]; // an uncompressed, empty protobuf message
app.Run(async ctx =>
{
    if (ctx.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true)
    {
        // gRPC unary: drain the request, answer one empty message and status OK in trailers.
        await ctx.Request.Body.CopyToAsync(Stream.Null);
        ctx.Response.ContentType = "application/grpc";
        ctx.Response.AppendTrailer("grpc-status", "0");
        await ctx.Response.Body.WriteAsync(grpcReply);
        return;
    }
    ctx.Response.ContentType = "text/plain";
    ctx.Response.ContentLength = hello.Length;
    await ctx.Response.Body.WriteAsync(hello, 0, hello.Length);
});
app.Run();
