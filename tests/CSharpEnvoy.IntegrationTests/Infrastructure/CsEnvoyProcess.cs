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

    public static CsEnvoyProcess Start(params string[] args) => Start(null, args);

    /// <summary>Starts csenvoy with extra environment variables.</summary>
    public static CsEnvoyProcess Start(IReadOnlyDictionary<string, string>? environment, string[] args)
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
        if (environment is not null)
            foreach (var (name, value) in environment) psi.Environment[name] = value;
        return new CsEnvoyProcess(Process.Start(psi)!);
    }

    /// <summary>Starts csenvoy with <c>--admin-address-path</c> and waits (bounded) for the admin's address, so the
    /// bootstrap can give the admin <c>port_value: 0</c> instead of a port guessed free.</summary>
    public static Task<(CsEnvoyProcess Process, string Admin)> StartWithAdminAsync(params string[] args) => StartWithAdminAsync(null, args);

    public static async Task<(CsEnvoyProcess Process, string Admin)> StartWithAdminAsync(IReadOnlyDictionary<string, string>? environment, string[] args)
    {
        var file = Path.Combine(Path.GetTempPath(), $"csenvoy-admin-{Guid.NewGuid():N}");
        var p = Start(environment, [.. args, "--admin-address-path", file]);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!File.Exists(file))
            {
                if (p.HasExited) throw new InvalidOperationException($"csenvoy exited before its admin listened: {p.Stderr}");
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"csenvoy never wrote {file}: {p.Stderr}");
                await Task.Delay(20);
            }
            var admin = "http://" + File.ReadAllText(file).Trim();
            File.Delete(file);
            return (p, admin);
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>The bound address of a listener, from the admin's <c>/listeners</c> (<c>name::ip:port</c> lines), once it
    /// is there (bounded).</summary>
    public static async Task<string> ListenerAddressAsync(HttpClient admin, string adminBase, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            foreach (var line in (await admin.GetStringAsync(adminBase + "/listeners")).Split('\n'))
                if (line.StartsWith(name + "::", StringComparison.Ordinal)) return line[(name.Length + 2)..].Trim();
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"listener '{name}' never appeared in /listeners");
            await Task.Delay(20);
        }
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
    public int Id => _process.Id;

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
