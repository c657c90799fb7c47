using Portcullis.Protocol.Dnssec;
using Portcullis.Server.Configuration;
using Portcullis.Server.Dnssec;
using Xunit;

namespace Portcullis.Server.Tests.Dnssec;

/// <summary>dnssec-policies and the zone's dnssec-signing, dnssec-policy and key-directory in the YAML configuration.</summary>
public sealed class SigningConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-signing-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string yaml)
    {
        var file = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(file, yaml);
        return file;
    }

    [Fact]
    public void A_named_policy_is_read_with_its_durations_and_the_key_directory_is_relative_to_the_config()
    {
        var config = ConfigLoader.Load(Write("""
            dnssec-policies:
              fast:
                algorithm: ed25519
                zsk-lifetime: 60d
                ksk-lifetime: 365d
                signature-validity: 7d
                signature-refresh: 2d
                signature-jitter: 6h
                nsec3: true
                dnskey-ttl: 600
            zones:
              - name: example.test
                file: example.test.zone
                dnssec-signing: true
                dnssec-policy: fast
                key-directory: keys/example
            """));
        var zone = config.Zones[0];
        Assert.Equal(Path.Combine(_dir, "keys", "example"), zone.KeyDirectory);
        var policy = PolicyConfig.For(config, zone);
        Assert.Equal(DnssecAlgorithm.Ed25519, policy.Algorithm);
        Assert.Equal(TimeSpan.FromDays(60), policy.ZskLifetime);
        Assert.Equal(TimeSpan.FromDays(365), policy.KskLifetime);
        Assert.Equal(TimeSpan.FromDays(7), policy.SignatureValidity);
        Assert.Equal(TimeSpan.FromHours(6), policy.SignatureJitter);
        Assert.True(policy.Nsec3);
        Assert.Equal(600u, policy.DnskeyTtl);
        // Without dnssec-policy: the defaults (ECDSAP256SHA256, KSK never rolled, ZSK every 30 days, NSEC).
        var defaults = PolicyConfig.For(config, new ZoneConfig { Name = "other.test", DnssecSigning = true });
        Assert.Equal(DnssecAlgorithm.EcdsaP256Sha256, defaults.Algorithm);
        Assert.Null(defaults.KskLifetime);
        Assert.Equal(TimeSpan.FromDays(30), defaults.ZskLifetime);
        Assert.False(defaults.Nsec3);
    }

    [Theory]
    [InlineData("algorithm: dsa", "algorithm 'dsa' is not one of")]
    [InlineData("signature-refresh: 14d", "signature-refresh plus signature-jitter must be below signature-validity")]
    [InlineData("zsk-lifetime: soon", "zsk-lifetime: 'soon' is not a duration")]
    [InlineData("nsec3-iterations: 500", "nsec3-iterations must be 0 to 100")]
    public void A_bad_policy_is_an_error_naming_the_file_line_and_field(string field, string message)
    {
        var file = Write($"""
            dnssec-policies:
              bad:
                {field}
            zones:
              - name: example.test
                file: example.test.zone
            """);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{file}:2:", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_zone_naming_a_policy_that_does_not_exist_is_an_error_at_its_line()
    {
        var file = Write("""
            zones:
              - name: example.test
                file: example.test.zone
                dnssec-signing: true
                dnssec-policy: missing
            """);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{file}:5:", e.Message);
        Assert.Contains("dnssec-policy 'missing' is not under dnssec-policies", e.Message);
    }
}
