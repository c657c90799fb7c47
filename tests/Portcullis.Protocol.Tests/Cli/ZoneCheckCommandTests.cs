using System.Runtime.CompilerServices;
using Portcullis.Cli;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Cli;

/// <summary>`portcullis zone check`, run in-process: exit codes, the summary line and error lines.</summary>
public sealed class ZoneCheckCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "portcullis-cli-" + Guid.NewGuid().ToString("N"));

    public ZoneCheckCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string ExampleZone() => ExampleZoneFile.Path();

    private static string[] LinesOf(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void The_example_zone_checks_clean_with_a_one_line_summary()
    {
        var (code, stdout, stderr) = Run("zone", "check", ExampleZone(), "--origin", "example.test");
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        Assert.Equal(["zone example.test/IN: loaded serial 2024060101 (28 records, 14 names)"], LinesOf(stdout));
    }

    [Fact]
    public void Every_error_is_printed_with_its_position_and_the_exit_code_is_1()
    {
        var path = Write("bad.zone", """
            $TTL 1h
            @ SOA ns1 hostmaster 1 2h 30m 2w 5m
              NS ns1
            ns1 A 192.0.2.1
            www XYZ 192.0.2.2
            t TXT "unterminated
            c CNAME www
            c A 192.0.2.3
            out.example.net. A 192.0.2.4
            """);
        var (code, stdout, stderr) = Run("zone", "check", path, "--origin", "example.test.");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal(
        [
            $"{path}:5:5: expected a TTL, class or type, found 'XYZ'",
            $"{path}:6:7: unterminated quoted string: expected '\"' before the end of the line",
            $"{path}:8:1: 'c.example.test.' has a CNAME and other data (A); only RRSIG and NSEC may stand beside a CNAME (RFC 2181 §10.1)",
            $"{path}:9:1: out-of-zone data: 'out.example.net.' is not in zone 'example.test.'",
            "zone example.test/IN: not loaded due to 4 errors",
        ], LinesOf(stderr));
    }

    [Fact]
    public void A_zone_without_soa_or_ns_fails()
    {
        var path = Write("nosoa.zone", "$TTL 1\nwww A 192.0.2.1\n");
        var (code, _, stderr) = Run("zone", "check", path, "--origin", "example.test");
        Assert.Equal(1, code);
        Assert.Contains($"{path}:1:1: no SOA record at the zone apex 'example.test.'", LinesOf(stderr));
        Assert.Contains($"{path}:1:1: no NS records at the zone apex 'example.test.'", LinesOf(stderr));
    }

    [Fact]
    public void A_missing_file_fails_with_exit_code_1()
    {
        var path = Path.Combine(_dir, "missing.zone");
        var (code, _, stderr) = Run("zone", "check", path, "--origin", "example.test");
        Assert.Equal(1, code);
        Assert.StartsWith($"{path}: cannot open the zone file", stderr);
    }

    [Theory]
    [InlineData("zone check x.zone")]                          // no --origin
    [InlineData("zone check --origin example.test")]           // no FILE
    [InlineData("zone check x.zone --origin a..b")]            // bad origin
    [InlineData("zone check x.zone --origin x --frobnicate")]
    [InlineData("zone")]
    [InlineData("nonsense")]
    [InlineData("")]
    public void Usage_errors_exit_with_2(string commandLine)
    {
        var (code, stdout, stderr) = Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("portcullis: ", stderr);
    }

    [Fact]
    public void Help_exits_0_and_names_the_options()
    {
        var (code, stdout, _) = Run("zone", "check", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--origin", stdout);
        Assert.Contains("--print", stdout);
    }

    [Fact]
    public void Print_writes_the_zone_in_canonical_order_and_the_summary_to_stderr()
    {
        var path = Write("small.zone", """
            $ORIGIN example.test.
            $TTL 300
            www   A    192.0.2.80
            @     NS   ns1
            @     SOA  ns1 hostmaster ( 5 2h 30m 2w 5m )
            ns1   A    192.0.2.53
            Mail  A    192.0.2.25
            @     MX   10 Mail
            """);
        var (code, stdout, stderr) = Run("zone", "check", path, "--origin", "example.test", "--print");
        Assert.Equal(0, code);
        Assert.Equal(
        [
            "example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 5 7200 1800 1209600 300",
            "example.test.\t300\tIN\tNS\tns1.example.test.",
            "example.test.\t300\tIN\tMX\t10 Mail.example.test.",
            "Mail.example.test.\t300\tIN\tA\t192.0.2.25",
            "ns1.example.test.\t300\tIN\tA\t192.0.2.53",
            "www.example.test.\t300\tIN\tA\t192.0.2.80",
        ], LinesOf(stdout));
        Assert.Equal(["zone example.test/IN: loaded serial 5 (6 records, 4 names)"], LinesOf(stderr));
    }

    [Fact]
    public void Printed_zone_checks_again_to_the_same_records()
    {
        var (code, printed, _) = Run("zone", "check", ExampleZone(), "--origin", "example.test", "--print");
        Assert.Equal(0, code);
        var again = Write("again.zone", printed);
        var (code2, printedAgain, _) = Run("zone", "check", again, "--origin", "example.test", "--print");
        Assert.Equal(0, code2);
        Assert.Equal(printed, printedAgain);
    }

    [Fact]
    public void Warnings_go_to_stderr_without_failing()
    {
        var path = Write("oldstyle.zone", "@ SOA ns1 hostmaster 1 2 3 4 300\n NS ns1\nns1 A 192.0.2.1\n");
        var (code, stdout, stderr) = Run("zone", "check", path, "--origin", "example.test");
        Assert.Equal(0, code);
        Assert.Equal(["zone example.test/IN: loaded serial 1 (3 records, 2 names)"], LinesOf(stdout));
        Assert.Contains($"{path}:1:1: warning: no $TTL and no TTL on the SOA: using the SOA minimum 300", LinesOf(stderr));
    }

    [Fact]
    public void The_example_zone_has_what_the_server_default_needs()
    {
        using var reader = ZoneReader.Open(ExampleZone(), DnsName.Parse("example.test."));
        var types = reader.ReadRecords().Select(r => r.Type.ToString()).ToHashSet();
        foreach (var t in new[] { "SOA", "NS", "A", "AAAA", "MX", "CNAME", "TXT", "SRV", "CAA", "DNAME" })
            Assert.Contains(t, types);
    }
}
