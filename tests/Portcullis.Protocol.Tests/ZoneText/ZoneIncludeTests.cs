using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

public class ZoneIncludeTests
{
    private static string[] ReadFile(string path, ZoneReaderOptions? options = null)
    {
        using var reader = ZoneReader.Open(path, Origin, options);
        return reader.ReadRecords().Select(Line).ToArray();
    }

    private static ZoneFormatException FileError(string path, ZoneReaderOptions? options = null)
    {
        using var reader = ZoneReader.Open(path, Origin, options);
        return Assert.Throws<ZoneFormatException>(() => reader.ReadRecords().ToList());
    }

    [Fact]
    public void Include_is_relative_to_the_including_file_and_the_origin_is_restored_after()
    {
        using var dir = new TempDirectory();
        dir.Write("zones/hosts.inc", "h1 A 192.0.2.1\n  AAAA 2001:db8::1\n");
        dir.Write("zones/sub/more.inc", "$ORIGIN inner\nm A 192.0.2.9\n");
        var main = dir.Write("zones/main.zone", """
            $TTL 60
            www A 192.0.2.80
            $INCLUDE hosts.inc
            after A 192.0.2.2
            $INCLUDE sub/more.inc lab
            last A 192.0.2.3
            """);
        Assert.Equal(
        [
            "www.example.test. 60 IN A 192.0.2.80",
            "h1.example.test. 60 IN A 192.0.2.1",
            "h1.example.test. 60 IN AAAA 2001:db8::1",
            "after.example.test. 60 IN A 192.0.2.2",
            "m.inner.lab.example.test. 60 IN A 192.0.2.9",
            "last.example.test. 60 IN A 192.0.2.3",
        ], ReadFile(main));
    }

    [Fact]
    public void An_included_file_inherits_the_owner_and_the_owner_is_restored_after()
    {
        using var dir = new TempDirectory();
        dir.Write("inc.zone", " TXT \"in include\"\nx TXT \"x\"\n");
        var main = dir.Write("main.zone", "$TTL 1\nwww A 192.0.2.1\n$INCLUDE inc.zone\n A 192.0.2.2\n");
        Assert.Equal(
        [
            "www.example.test. 1 IN A 192.0.2.1",
            "www.example.test. 1 IN TXT \"in include\"",
            "x.example.test. 1 IN TXT \"x\"",
            "www.example.test. 1 IN A 192.0.2.2",
        ], ReadFile(main));
    }

    [Fact]
    public void Ttl_directive_in_an_included_file_carries_on_as_in_BIND()
    {
        using var dir = new TempDirectory();
        dir.Write("inc.zone", "$TTL 99\n");
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE \"inc.zone\"\nwww A 192.0.2.1\n");
        Assert.Equal(["www.example.test. 99 IN A 192.0.2.1"], ReadFile(main));
    }

    [Fact]
    public void Errors_in_an_included_file_name_that_file()
    {
        using var dir = new TempDirectory();
        dir.Write("sub/bad.inc", "ok A 192.0.2.1\nbad XYZ 1\n");
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE sub/bad.inc\n");
        var e = FileError(main);
        Assert.Equal(Path.Combine(Path.GetDirectoryName(main)!, "sub/bad.inc"), e.File);
        Assert.Equal((2, 5), (e.Line, e.Column));
    }

    [Fact]
    public void A_missing_include_file_is_an_error_at_the_directive()
    {
        using var dir = new TempDirectory();
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE nothere.inc\n");
        var e = FileError(main);
        Assert.Equal((main, 2, 10), (e.File, e.Line, e.Column));
        Assert.StartsWith("cannot open $INCLUDE file 'nothere.inc'", e.Problem);
    }

    [Fact]
    public void Includes_from_text_are_relative_to_the_base_directory()
    {
        using var dir = new TempDirectory();
        dir.Write("inc.zone", "www A 192.0.2.1\n");
        Assert.Equal(["www.example.test. 1 IN A 192.0.2.1"],
            Lines("$TTL 1\n$INCLUDE inc.zone\n", new ZoneReaderOptions { BaseDirectory = dir.Path }));
    }

    [Fact]
    public void Include_depth_is_bounded()
    {
        using var dir = new TempDirectory();
        for (int i = 0; i < 12; i++) dir.Write($"level{i}.zone", $"l{i} A 192.0.2.{i}\n$INCLUDE level{i + 1}.zone\n");
        dir.Write("level12.zone", "bottom A 192.0.2.99\n");
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE level0.zone\n");
        var e = FileError(main, new ZoneReaderOptions { MaxIncludeDepth = 8 });
        Assert.Contains("nested more than 8 deep", e.Problem);
        Assert.EndsWith("level7.zone", e.File);
        // With a deeper bound the same files read.
        Assert.Equal(13, ReadFile(main, new ZoneReaderOptions { MaxIncludeDepth = 20 }).Length);
    }

    [Fact]
    public void An_include_loop_is_an_error_not_a_hang()
    {
        using var dir = new TempDirectory();
        dir.Write("a.zone", "a A 192.0.2.1\n$INCLUDE b.zone\n");
        dir.Write("b.zone", "b A 192.0.2.2\n$INCLUDE ./a.zone\n");
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE a.zone\n");
        var e = FileError(main);
        Assert.Contains("$INCLUDE loop", e.Problem);
        Assert.EndsWith("b.zone", e.File);
        Assert.Equal((2, 10), (e.Line, e.Column));
    }

    [Fact]
    public void A_file_including_itself_is_a_loop()
    {
        using var dir = new TempDirectory();
        var main = dir.Write("main.zone", "$TTL 1\n$INCLUDE main.zone\n");
        Assert.Contains("$INCLUDE loop", FileError(main).Problem);
    }
}
