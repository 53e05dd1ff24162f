using System.Text;
using CSharpEnvoy.Host;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Host;

/// <summary>Envoy's <c>--log-format</c>: spdlog patterns for the application log lines.</summary>
public sealed class LogFormatTests
{
    private static readonly DateTimeOffset At = new DateTimeOffset(2026, 3, 5, 7, 8, 9, TimeSpan.Zero).AddTicks(1234567);

    private static string Format(string pattern, string message = "cluster added", LogLevel level = LogLevel.Warning)
    {
        var format = LogFormat.Parse(pattern, out var error);
        Assert.True(format is not null, error);
        var sb = new StringBuilder();
        format!.Write(sb, At, level, "upstream", message, thread: 17, pid: 4242);
        return sb.ToString();
    }

    [Theory]
    // Istio's agent passes this one.
    [InlineData("%Y-%m-%dT%T.%fZ\t%l\tenvoy %n\t%v", "2026-03-05T07:08:09.123456Z\twarning\tenvoy upstream\tcluster added")]
    [InlineData("[%Y-%m-%d %T.%e][%t][%l][%n] %v", "[2026-03-05 07:08:09.123][17][warning][upstream] cluster added")]
    [InlineData("%L %C%m%d %H:%M:%S.%F %z pid=%P %E 100%%", "W 260305 07:08:09.123456700 +00:00 pid=4242 1772694489 100%")]
    [InlineData("%^%l%$: %v", "warning: cluster added")]
    [InlineData("%D %R %I%p %a %b", "03/05/26 07:08 07AM Thu Mar")]
    public void Pattern_FormatsTheLine(string pattern, string expected) => Assert.Equal(expected, Format(pattern));

    /// <summary>Istio's agent puts Envoy's source location in its pattern; csenvoy has none, so the logger name and line
    /// 0 stand in and the line keeps its shape.</summary>
    [Theory]
    [InlineData("%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t", "2026-03-05T07:08:09.123456Z\twarning\tenvoy upstream upstream:0\tcluster added\tthread=17")]
    [InlineData("{\"level\":\"%l\",\"msg\":\"%j\",\"caller\":\"%g:%#\",\"thread\":%t}", "{\"level\":\"warning\",\"msg\":\"cluster added\",\"caller\":\"upstream:0\",\"thread\":17}")]
    [InlineData("[%@] %s %!", "[upstream:0] upstream upstream")]
    public void SourceLocationFlags_PrintTheLoggerAndLineZero(string pattern, string expected) => Assert.Equal(expected, Format(pattern));

    [Fact]
    public void EscapedMessageFlags_EscapeControlCharacters()
    {
        Assert.Equal("a\\nb\\t\"c\"", Format("%_", "a\nb\t\"c\""));
        Assert.Equal("a\\nb\\t\\\"c\\\"\\u0001", Format("%j", "a\nb\t\"c\"\u0001"));
    }

    /// <summary><c>--log-format-escaped</c>: absl::CEscape of the message, trailing whitespace left alone.</summary>
    [Theory]
    [InlineData("cluster added", "cluster added")]
    [InlineData("a\nb\r\tc", "a\\nb\\r\\tc")]
    [InlineData("say \"hi\" it's a\\b", "say \\\"hi\\\" it\\'s a\\\\b")]
    [InlineData("bell\u0007 del\u007f", "bell\\007 del\\177")]
    [InlineData("caf\u00e9 \U0001F600", "caf\\303\\251 \\360\\237\\230\\200")]
    [InlineData("two\nlines\n", "two\\nlines\n")]
    public void LogFormatEscaped_CEscapesTheMessage(string message, string expected) => Assert.Equal(expected, LogFormat.CEscape(message));

    [Theory]
    [InlineData("%o %v", "--log-format: flag '%o' is not supported by csenvoy")]
    [InlineData("%v %", "--log-format ends with a lone '%'")]
    public void FlagsCsenvoyCannotFill_AreRefused(string pattern, string message)
    {
        Assert.Null(LogFormat.Parse(pattern, out var error));
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task TheExecutable_WritesItsLogLinesInThePattern()
    {
        var path = CommandLineTests.WriteTemp("admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }\nstatic_resources: {}\n");
        try
        {
            var (process, admin) = await CsEnvoyProcess.StartWithAdminAsync(["-c", path, "--log-format", "<%l|%n> %v"]);
            await using var _ = process;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var quit = await http.PostAsync(admin + "/quitquitquit", null);
            Assert.Equal(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("<info|main> all clusters initialized; server live\n", process.Stdout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary><c>--log-path</c> appends the log to a file instead of the console; <c>--log-format-escaped</c> alone
    /// takes Envoy's default pattern. /server_info reports both.</summary>
    [Fact]
    public async Task LogPath_AppendsTheLogToTheFile_InEnvoysDefaultPatternWhenEscaped()
    {
        var path = CommandLineTests.WriteTemp("admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }\nstatic_resources: {}\n");
        var logPath = CommandLineTests.WriteTemp("an earlier line\n", ".log");
        try
        {
            var (process, admin) = await CsEnvoyProcess.StartWithAdminAsync(["-c", path, "--log-path", logPath, "--log-format-escaped"]);
            await using var _ = process;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var info = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(admin + "/server_info")).RootElement.GetProperty("command_line_options");
            Assert.Equal(logPath, info.GetProperty("log_path").GetString());
            Assert.True(info.GetProperty("log_format_escaped").GetBoolean());
            using var quit = await http.PostAsync(admin + "/quitquitquit", null);
            Assert.Equal(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));

            var log = await File.ReadAllTextAsync(logPath);
            Assert.StartsWith("an earlier line\n", log);
            Assert.Matches(@"\n\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[\d+\]\[info\]\[main\] \[main:0\] all clusters initialized; server live\n", log);
            Assert.DoesNotContain("server live", process.Stdout);
        }
        finally
        {
            File.Delete(path);
            File.Delete(logPath);
        }
    }
}
