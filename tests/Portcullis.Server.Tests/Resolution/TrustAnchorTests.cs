using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Validation;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>Trust anchors as an operator gives them: Debian's root.key, a file of DS/DNSKEY lines, or the built-in IANA DS.</summary>
public sealed class TrustAnchorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-anchors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Debians_root_key_file_anchors_the_root_with_both_ksks()
    {
        // The file dns-root-data installs (a copy: the test does not depend on the package).
        var rootKey = Write("root.key", """
            . IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU= ; keytag 20326
            . IN DNSKEY 257 3 8 AwEAAa96jeuknZlaeSrvyAJj6ZHv28hhOKkx3rLGXVaC6rXTsDc449/cidltpkyGwCJNnOAlFNKF2jBosZBU5eeHspaQWOmOElZsjICMQMC3aeHbGiShvZsx4wMYSjH8e7Vrhbu6irwCzVBApESjbUdpWWmEnhathWu1jo+siFUiRAAxm9qyJNg/wOZqqzL/dL/q8PkcRU5oUKEpUge71M3ej2/7CPqpdVwuMoTvoB+ZOT4YeGyxMvHmbrxlFzGOHOijtzN+u1TQNatX2XBuzZNQ1K+s2CXkPIZo7s6JgZyvaBevYtxPvYLw4z9mR7K2vaF18UYH9Z9GNUUeayffKC73PYc= ; keytag 38696
            """);
        var anchors = TrustAnchors.Load([], defaultFile: rootKey);
        Assert.Equal(rootKey, anchors.Source);
        var (ds, keys) = anchors.For(DnsName.Root);
        Assert.Empty(ds);
        Assert.Equal([20326, 38696], keys.Select(k => (int)DnsKey.KeyTag(k.Data)).Order());
        // The built-in DS records designate exactly these keys.
        var builtIn = TrustAnchors.Load([], defaultFile: Path.Combine(_dir, "absent"));
        Assert.StartsWith("built-in", builtIn.Source);
        foreach (var d in builtIn.For(DnsName.Root).Ds)
            Assert.Contains(keys, k => DsDigest.Compare(d.Data, DnsName.Root, k.Data) == DsMatch.Match);
    }

    [Fact]
    public void Anchors_for_several_zones_closest_anchor_and_negative_anchors()
    {
        var file = Write("anchors", """
            ; a test hierarchy's anchors
            test.   3600 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
            corp.test. IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
            corp.test. IN DNSKEY 385 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
            www.test. IN A 192.0.2.1
            """);
        var anchors = TrustAnchors.Load([file], ["lab.corp.test"]);
        Assert.Equal(DnsName.Parse("corp.test."), anchors.ClosestAnchor(DnsName.Parse("a.b.Corp.test.")));
        Assert.Equal(DnsName.Parse("test."), anchors.ClosestAnchor(DnsName.Parse("other.test.")));
        Assert.Null(anchors.ClosestAnchor(DnsName.Parse("example.")));
        Assert.Single(anchors.For(DnsName.Parse("corp.test.")).Keys);   // the revoked one (flag 0x80) anchors nothing
        Assert.True(anchors.IsNegative(DnsName.Parse("host.lab.corp.test.")));
        Assert.False(anchors.IsNegative(DnsName.Parse("corp.test.")));
    }

    [Fact]
    public void A_broken_or_empty_anchor_file_is_an_error_naming_the_file_and_line()
    {
        var bad = Write("bad", ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n. IN DS 20326 eight 2 00\n");
        var e = Assert.Throws<ConfigException>(() => TrustAnchors.Load([bad]));
        Assert.Contains($"{bad}:2:", e.Message);
        var empty = Write("empty", "; nothing\nwww.test. IN A 192.0.2.1\n");
        Assert.Contains("no DS or DNSKEY records", Assert.Throws<ConfigException>(() => TrustAnchors.Load([empty])).Message);
        Assert.Contains("cannot read", Assert.Throws<ConfigException>(() => TrustAnchors.Load([Path.Combine(_dir, "missing")])).Message);
    }
}
