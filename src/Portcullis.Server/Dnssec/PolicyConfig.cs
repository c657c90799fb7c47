using Portcullis.Protocol.Dnssec;
using Portcullis.Server.Configuration;

namespace Portcullis.Server.Dnssec;

/// <summary>The configuration's dnssec-policies entries as <see cref="DnssecPolicy"/> values.</summary>
public static class PolicyConfig
{
    /// <summary>The policy a zone names (or the defaults); FormatException names the field at fault.</summary>
    public static DnssecPolicy For(ServerConfig config, ZoneConfig zone)
    {
        if (zone.DnssecPolicy is null) return new DnssecPolicy();
        if (!config.DnssecPolicies.TryGetValue(zone.DnssecPolicy, out var c))
            throw new FormatException($"dnssec-policy '{zone.DnssecPolicy}' is not under dnssec-policies");
        return From(c);
    }

    public static DnssecPolicy From(DnssecPolicyConfig c)
    {
        if (!DnssecAlgorithms.TryParseSigning(c.Algorithm, out var algorithm))
            throw new FormatException($"algorithm '{c.Algorithm}' is not one of ecdsap256sha256, ecdsap384sha384, ed25519, rsasha256");
        if (c.DnskeyTtl is < 0 or > int.MaxValue) throw new FormatException("dnskey-ttl must be 0 to 2147483647");
        if (c.Nsec3Iterations is < 0 or > 100)
            throw new FormatException("nsec3-iterations must be 0 to 100 (RFC 9276 §3.1: 0; validators may treat more as insecure)");
        if (c.Nsec3SaltLength is < 0 or > 255) throw new FormatException("nsec3-salt-length must be 0 to 255");
        var policy = new DnssecPolicy
        {
            Algorithm = algorithm,
            CombinedKey = c.CombinedKey,
            KskLifetime = Lifetime("ksk-lifetime", c.KskLifetime),
            ZskLifetime = Lifetime("zsk-lifetime", c.ZskLifetime),
            DnskeyTtl = (uint)c.DnskeyTtl,
            PropagationDelay = Duration("propagation-delay", c.PropagationDelay),
            ParentDsTtl = Duration("parent-ds-ttl", c.ParentDsTtl),
            ParentPropagationDelay = Duration("parent-propagation-delay", c.ParentPropagationDelay),
            SignatureValidity = Duration("signature-validity", c.SignatureValidity),
            SignatureRefresh = Duration("signature-refresh", c.SignatureRefresh),
            SignatureJitter = Duration("signature-jitter", c.SignatureJitter),
            Nsec3 = c.Nsec3,
            Nsec3Iterations = (ushort)c.Nsec3Iterations,
            Nsec3SaltLength = c.Nsec3SaltLength,
            PublishCds = c.CdsCdnskeyPublish,
            Zonemd = c.Zonemd,
        };
        if (policy.SignatureValidity < TimeSpan.FromHours(1)) throw new FormatException("signature-validity must be at least 1h");
        if (policy.SignatureRefresh + policy.SignatureJitter >= policy.SignatureValidity)
            throw new FormatException("signature-refresh plus signature-jitter must be below signature-validity (signatures would be re-made at once)");
        return policy;
    }

    private static TimeSpan Duration(string field, string text)
    {
        try { return ServerConfig.ParseDuration(text); }
        catch (FormatException e) { throw new FormatException($"{field}: {e.Message}"); }
    }

    private static TimeSpan? Lifetime(string field, string text)
    {
        var value = Duration(field, text);
        return value == TimeSpan.Zero ? null : value;
    }
}
