using System.Diagnostics;
using System.Text;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>Runs the real csenvoy executable (built next to the tests, or the one <c>CSENVOY_EXE</c> names) as a child
/// process.</summary>
public sealed class CsEnvoyProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private CsEnvoyProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CSharpEnvoy.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("CSharpEnvoy.sln not found above " + AppContext.BaseDirectory);
    }

    public static CsEnvoyProcess Start(params string[] args)
    {
        // CSENVOY_EXE runs another build of csenvoy instead, e.g. the Native AOT binary (bench/load/aot_smoke.sh).
        var exe = Environment.GetEnvironmentVariable("CSENVOY_EXE");
        var psi = new ProcessStartInfo(string.IsNullOrEmpty(exe) ? "dotnet" : exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (string.IsNullOrEmpty(exe)) psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "csenvoy.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return new CsEnvoyProcess(Process.Start(psi)!);
    }

    /// <summary>Runs to completion (bounded) and returns exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        await using var p = Start(args);
        var code = await p.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (code, p.Stdout, p.Stderr);
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public bool HasExited => _process.HasExited;

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // flush the asynchronous output readers
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
