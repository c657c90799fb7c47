using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// Whole responses validated as a resolver would (issue 11 groundwork): real signed answers from a
/// running server (NSEC and NSEC3) are secure — positive, CNAME, wildcard, NODATA, NXDOMAIN — and the
/// same responses tampered with, stripped of their proofs or checked after expiry are bogus with the
/// reason a client would see as an Extended DNS Error.
/// </summary>
public sealed class ResponseValidatorTests
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");

    private static TestServer Signed(bool nsec3) => new(c =>
    {
        c.Zones[0].DnssecSigning = true;
        if (nsec3)
        {
            c.DnssecPolicies["nsec3"] = new DnssecPolicyConfig { Nsec3 = true };
            c.Zones[0].DnssecPolicy = "nsec3";
        }
    }, ("example.test.", TestServer.ExampleZone));

    private static DnsMessage Ask(TestServer server, string name, RecordType type)
    {
        var q = DnsTestClient.Query(name, type, edns: true);
        q.Edns!.DnssecOk = true;
        return DnsMessage.Parse(server.Client().TcpRaw(q.ToWire()));
    }

    /// <summary>The zone's keys validated with its KSK as the trust anchor, for any name in it; every other name insecure.</summary>
    private static Func<DnsName, SignerKeys> Keys(TestServer server)
    {
        var response = Ask(server, "example.test.", RecordType.DNSKEY);
        var keys = response.Answers.Where(r => r.Type == RecordType.DNSKEY).ToList();
        var sigs = response.Answers.Where(r => r.Type == RecordType.RRSIG).ToList();
        var anchor = keys.Where(k => DnsKey.IsSecureEntryPoint(k.Data)).ToList();
        var budget = new ValidationBudget();
        var result = RrsetValidator.ValidateKeys(keys, sigs, Zone, [], anchor, DateTimeOffset.UtcNow, ref budget);
        Assert.Equal(DnssecSecurity.Secure, result.Security);
        return name => name.IsSubdomainOf(Zone) ? new SignerKeys(DnssecSecurity.Secure, keys) : SignerKeys.Insecure;
    }

    private static ResponseVerdict Check(DnsMessage response, string name, RecordType type, Func<DnsName, SignerKeys> keys, DateTimeOffset? at = null)
    {
        var budget = new ValidationBudget();
        var nsec3 = new Nsec3Budget();
        return ResponseValidator.Validate(response, new DnsQuestion(DnsName.Parse(name), type), keys, at ?? DateTimeOffset.UtcNow, ref budget, ref nsec3);
    }

    [Theory]
    [InlineData(false, "www.example.test.", RecordType.A, Rcode.NoError)]
    [InlineData(false, "ftp.example.test.", RecordType.A, Rcode.NoError)]          // CNAME to www
    [InlineData(false, "anything.example.test.", RecordType.A, Rcode.NoError)]     // wildcard answer
    [InlineData(false, "www.example.test.", RecordType.MX, Rcode.NoError)]         // NODATA
    [InlineData(false, "anything.example.test.", RecordType.MX, Rcode.NoError)]    // wildcard NODATA
    [InlineData(false, "nope.ent.example.test.", RecordType.A, Rcode.NXDomain)]
    [InlineData(true, "www.example.test.", RecordType.A, Rcode.NoError)]
    [InlineData(true, "anything.example.test.", RecordType.A, Rcode.NoError)]
    [InlineData(true, "www.example.test.", RecordType.MX, Rcode.NoError)]
    [InlineData(true, "anything.example.test.", RecordType.MX, Rcode.NoError)]
    [InlineData(true, "nope.ent.example.test.", RecordType.A, Rcode.NXDomain)]
    public void Signed_answers_from_a_running_server_validate_as_secure(bool nsec3, string name, RecordType type, Rcode rcode)
    {
        using var server = Signed(nsec3);
        var keys = Keys(server);
        var response = Ask(server, name, type);
        Assert.Equal(rcode, response.Rcode);
        var verdict = Check(response, name, type, keys);
        Assert.True(verdict.IsSecure, $"{verdict.Security} {verdict.Reason}: {verdict.Detail}");
        Assert.InRange(verdict.MaxTtl, 1u, 86400u);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Tampered_stripped_or_expired_responses_are_bogus_with_their_reason(bool nsec3)
    {
        using var server = Signed(nsec3);
        var keys = Keys(server);

        var www = Ask(server, "www.example.test.", RecordType.A);
        for (int i = 0; i < www.Answers.Count; i++)
            if (www.Answers[i].Type == RecordType.A)
                www.Answers[i] = new ResourceRecord(www.Answers[i].Owner, RecordType.A, RecordClass.IN, www.Answers[i].Ttl, [6, 6, 6, 6]);
        var forged = Check(www, "www.example.test.", RecordType.A, keys);
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.DnssecBogus), (forged.Security, forged.Reason));

        var unsigned = Ask(server, "www.example.test.", RecordType.A);
        unsigned.Answers.RemoveAll(r => r.Type == RecordType.RRSIG);
        Assert.Equal(ExtendedDnsErrorCode.RrsigsMissing, Check(unsigned, "www.example.test.", RecordType.A, keys).Reason);

        var nx = Ask(server, "nope.ent.example.test.", RecordType.A);
        nx.Authority.RemoveAll(r => r.Type is RecordType.NSEC or RecordType.NSEC3);
        var stripped = Check(nx, "nope.ent.example.test.", RecordType.A, keys);
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.NsecMissing), (stripped.Security, stripped.Reason));

        // A wildcard answer whose proof is gone: the name might exist, the answer is not proven.
        var wild = Ask(server, "anything.example.test.", RecordType.A);
        wild.Authority.RemoveAll(r => r.Type is RecordType.NSEC or RecordType.NSEC3);
        Assert.Equal(DnssecSecurity.Bogus, Check(wild, "anything.example.test.", RecordType.A, keys).Security);

        var late = Check(Ask(server, "www.example.test.", RecordType.A), "www.example.test.", RecordType.A, keys, DateTimeOffset.UtcNow.AddDays(60));
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.SignatureExpired), (late.Security, late.Reason));
    }

    [Fact]
    public void Unsigned_data_is_insecure_where_the_chain_says_so_and_bogus_where_it_should_be_signed()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));   // not signed
        var response = Ask(server, "www.example.test.", RecordType.A);
        Assert.Equal(DnssecSecurity.Insecure, Check(response, "www.example.test.", RecordType.A, _ => SignerKeys.Insecure).Security);
        var secureParent = Check(response, "www.example.test.", RecordType.A, _ => new SignerKeys(DnssecSecurity.Secure, []));
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.RrsigsMissing), (secureParent.Security, secureParent.Reason));
    }
}
