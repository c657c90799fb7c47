using System.Buffers.Binary;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Xunit;

namespace Portcullis.Protocol.Tests.Tsig;

/// <summary>TSIG signing and checking (RFC 8945) on messages we make ourselves; the interop tests
/// check the same code against dig's and kdig's signatures.</summary>
public class TsigTests
{
    // Test-only secret (base64 of 32 octets); never used outside the tests.
    internal const string TestSecret = "dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=";
    private const long Now = 1_780_000_000;

    internal static TsigKey Key(TsigAlgorithm algorithm = TsigAlgorithm.HmacSha256, string name = "transfer.test.") =>
        new(DnsName.Parse(name), algorithm, Convert.FromBase64String(TestSecret));

    private static (byte[] Buffer, int Length) Query(string name = "example.", RecordType type = RecordType.SOA)
    {
        var message = new DnsMessage { Header = new DnsHeader { Id = 0x1234 } };
        message.Questions.Add(new DnsQuestion(DnsName.Parse(name), type, RecordClass.IN));
        var wire = message.ToWire();
        var buffer = new byte[512];
        wire.CopyTo(buffer, 0);
        return (buffer, wire.Length);
    }

    private static (byte[] Message, byte[] Mac) Signed(TsigKey key, long time = Now)
    {
        var (buffer, length) = Query();
        var mac = new byte[TsigAlgorithms.MaxMacSize];
        int signed = Portcullis.Protocol.Tsig.Tsig.Sign(buffer, length, key, default, hasPrior: false, time, Portcullis.Protocol.Tsig.Tsig.DefaultFudge,
            TsigError.NoError, default, timersOnly: false, mac, out int macLength);
        Assert.True(signed > length);
        return (buffer[..signed], mac[..macLength]);
    }

    [Theory]
    [InlineData(TsigAlgorithm.HmacSha1)]
    [InlineData(TsigAlgorithm.HmacSha256)]
    [InlineData(TsigAlgorithm.HmacSha384)]
    [InlineData(TsigAlgorithm.HmacSha512)]
    public void A_signed_request_verifies_with_the_same_key(TsigAlgorithm algorithm)
    {
        var key = Key(algorithm);
        var (message, mac) = Signed(key);
        Assert.Equal(TsigPresence.Found, Portcullis.Protocol.Tsig.Tsig.Find(message, out var record));
        Assert.Equal(TsigAlgorithms.MacSize(algorithm), mac.Length);
        Assert.Equal(mac, record.Mac(message).ToArray());
        Assert.Equal(0x1234, record.OriginalId);
        Assert.Equal(Now, record.TimeSigned);
        Assert.Equal(TsigStatus.Ok, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record, key, default, hasPrior: false));
        Assert.True(message.Length - record.Start <= Portcullis.Protocol.Tsig.Tsig.MaxRecordSize(key));
        // The message decodes, with the TSIG record last in the additional section.
        var decoded = DnsMessage.Parse(message);
        Assert.Equal(RecordType.TSIG, decoded.Additional[^1].Type);
    }

    [Fact]
    public void A_changed_octet_a_wrong_secret_or_another_algorithm_fails()
    {
        var key = Key();
        var (message, _) = Signed(key);
        Portcullis.Protocol.Tsig.Tsig.Find(message, out var record);

        var changed = (byte[])message.Clone();
        changed[13] ^= 0x20;   // a letter of the question's case: the MAC covers it
        Assert.Equal(TsigStatus.BadSig, Portcullis.Protocol.Tsig.Tsig.VerifyMac(changed, record, key, default, false));

        var otherSecret = new TsigKey(key.Name, key.Algorithm, new byte[32]);
        Assert.Equal(TsigStatus.BadSig, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record, otherSecret, default, false));

        Assert.Equal(TsigStatus.BadKey, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record, Key(TsigAlgorithm.HmacSha512), default, false));
    }

    [Fact]
    public void The_ID_covered_is_the_original_ID_so_a_forwarded_request_still_verifies()
    {
        var key = Key();
        var (message, _) = Signed(key);
        BinaryPrimitives.WriteUInt16BigEndian(message, 0x9999);
        Portcullis.Protocol.Tsig.Tsig.Find(message, out var record);
        Assert.Equal(TsigStatus.Ok, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record, key, default, false));
    }

    [Fact]
    public void Time_outside_the_fudge_is_refused_inside_it_accepted()
    {
        var (message, _) = Signed(Key(), time: Now);
        Portcullis.Protocol.Tsig.Tsig.Find(message, out var record);
        Assert.True(Portcullis.Protocol.Tsig.Tsig.TimeIsValid(record, Now + 300));
        Assert.True(Portcullis.Protocol.Tsig.Tsig.TimeIsValid(record, Now - 300));
        Assert.False(Portcullis.Protocol.Tsig.Tsig.TimeIsValid(record, Now + 301));
        Assert.False(Portcullis.Protocol.Tsig.Tsig.TimeIsValid(record, Now - 3600));
    }

    [Fact]
    public void Truncated_MACs_get_BADTRUNC_and_too_short_or_too_long_ones_FORMERR()
    {
        var key = Key();
        var (message, _) = Signed(key);
        Portcullis.Protocol.Tsig.Tsig.Find(message, out var record);
        Assert.Equal(TsigStatus.BadTrunc, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record with { MacLength = 20 }, key, default, false));
        Assert.Equal(TsigStatus.FormErr, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record with { MacLength = 8 }, key, default, false));
        Assert.Equal(TsigStatus.FormErr, Portcullis.Protocol.Tsig.Tsig.VerifyMac(message, record with { MacLength = 33 }, key, default, false));
    }

    [Fact]
    public void A_TSIG_record_that_is_not_last_or_has_the_wrong_class_is_malformed()
    {
        var (message, _) = Signed(Key());
        // Add a record after the TSIG: an empty-named A record with no data (ARCOUNT + 1).
        var longer = message.Concat(new byte[] { 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0 }).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(longer.AsSpan(10), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(longer.AsSpan(10)) + 1));
        Assert.Equal(TsigPresence.Malformed, Portcullis.Protocol.Tsig.Tsig.Find(longer, out _));

        Portcullis.Protocol.Tsig.Tsig.Find(message, out var record);
        var wrongClass = (byte[])message.Clone();
        int classAt = record.Start + "\u0008transfer\u0004test\0".Length + 2;
        wrongClass[classAt + 1] = 1;   // IN, not ANY
        Assert.Equal(TsigPresence.Malformed, Portcullis.Protocol.Tsig.Tsig.Find(wrongClass, out _));

        // Every truncation of a signed message is refused or found missing, never a crash.
        for (int cut = 0; cut < message.Length; cut++)
            Assert.NotEqual(TsigPresence.Found, Portcullis.Protocol.Tsig.Tsig.Find(message.AsSpan(0, cut), out _));
    }

    [Fact]
    public void A_response_stream_signed_message_by_message_verifies_on_the_client_side()
    {
        var key = Key();
        var (request, requestMac) = Signed(key);
        var signer = new TsigStreamSigner(key, requestMac, () => Now + 1);
        var verifier = new TsigResponseVerifier(key, requestMac, Now);
        for (int i = 0; i < 5; i++)
        {
            var (buffer, length) = Query($"m{i}.example.");
            buffer[2] |= 0x80;
            int signed = signer.Sign(buffer, length);
            Assert.True(length + signer.Reserve >= signed);
            Assert.Equal(TsigCheck.Verified, verifier.Check(buffer.AsSpan(0, signed)));
        }
        Assert.True(verifier.EndedSigned);
    }

    [Fact]
    public void A_stream_may_skip_signatures_on_intermediate_messages_which_the_next_MAC_covers()
    {
        var key = Key();
        var (_, requestMac) = Signed(key);
        var signer = new TsigStreamSigner(key, requestMac, () => Now);
        var verifier = new TsigResponseVerifier(key, requestMac, Now);
        var (first, firstLength) = Query("m0.example.");
        int n = signer.Sign(first, firstLength);
        Assert.Equal(TsigCheck.Verified, verifier.Check(first.AsSpan(0, n)));
        Portcullis.Protocol.Tsig.Tsig.Find(first.AsSpan(0, n), out var firstRecord);
        byte[] prior = firstRecord.Mac(first).ToArray();

        // Two unsigned messages, then one signed by an old-style server over all three (RFC 8945
        // §5.3.1): prior MAC, the unsigned messages, this message, the timers. Computed here by hand,
        // independently of the library's digest code.
        var m1 = Query("m1.example."); var m2 = Query("m2.example."); var m3 = Query("m3.example.");
        Assert.Equal(TsigCheck.Unsigned, verifier.Check(m1.Buffer.AsSpan(0, m1.Length)));
        Assert.Equal(TsigCheck.Unsigned, verifier.Check(m2.Buffer.AsSpan(0, m2.Length)));
        Assert.False(verifier.EndedSigned);
        var digest = new List<byte> { 0, (byte)prior.Length };
        digest.AddRange(prior);
        digest.AddRange(m1.Buffer[..m1.Length]);
        digest.AddRange(m2.Buffer[..m2.Length]);
        digest.AddRange(m3.Buffer[..m3.Length]);
        digest.AddRange(new byte[] { 0, 0 });
        digest.AddRange(BitConverter.GetBytes((uint)Now).Reverse());
        digest.AddRange(new byte[] { 1, 44 });   // fudge 300
        byte[] mac = System.Security.Cryptography.HMACSHA256.HashData(key.Secret, digest.ToArray());
        int signed = AppendTsigByHand(m3.Buffer, m3.Length, key, mac, Now);
        Assert.Equal(TsigCheck.Verified, verifier.Check(m3.Buffer.AsSpan(0, signed)));
        Assert.True(verifier.EndedSigned);

        // A wrong MAC over the same run fails.
        var (m4, m4Length) = Query("m4.example.");
        Assert.Equal(TsigCheck.Unsigned, verifier.Check(m4.AsSpan(0, m4Length)));
        var (m5, m5Length) = Query("m5.example.");
        int bad = AppendTsigByHand(m5, m5Length, key, mac, Now);
        Assert.Equal(TsigCheck.BadSignature, verifier.Check(m5.AsSpan(0, bad)));
    }

    [Fact]
    public void The_hundredth_unsigned_message_in_a_row_is_refused()
    {
        var key = Key();
        var (_, requestMac) = Signed(key);
        var signer = new TsigStreamSigner(key, requestMac, () => Now);
        var verifier = new TsigResponseVerifier(key, requestMac, Now);
        var (first, firstLength) = Query();
        Assert.Equal(TsigCheck.Verified, verifier.Check(first.AsSpan(0, signer.Sign(first, firstLength))));
        var (plain, plainLength) = Query();
        for (int i = 0; i < TsigResponseVerifier.MaxUnsignedInARow; i++)
            Assert.Equal(TsigCheck.Unsigned, verifier.Check(plain.AsSpan(0, plainLength)));
        Assert.Equal(TsigCheck.Missing, verifier.Check(plain.AsSpan(0, plainLength)));
    }

    /// <summary>The TSIG record's layout (RFC 8945 §4.2) written out field by field, for the tests.</summary>
    private static int AppendTsigByHand(byte[] buffer, int length, TsigKey key, byte[] mac, long time)
    {
        var rr = new List<byte>();
        rr.AddRange(key.NameWire.ToArray());
        rr.AddRange(new byte[] { 0, 250, 0, 255, 0, 0, 0, 0 });
        var rdata = new List<byte>();
        rdata.AddRange(TsigAlgorithms.WireName(key.Algorithm).ToArray());
        rdata.AddRange(new byte[] { 0, 0 });
        rdata.AddRange(BitConverter.GetBytes((uint)time).Reverse());
        rdata.AddRange(new byte[] { 1, 44, 0, (byte)mac.Length });
        rdata.AddRange(mac);
        rdata.AddRange(new[] { buffer[0], buffer[1], (byte)0, (byte)0, (byte)0, (byte)0 });
        rr.Add((byte)(rdata.Count >> 8));
        rr.Add((byte)rdata.Count);
        rr.AddRange(rdata);
        rr.CopyTo(buffer, length);
        buffer[11]++;
        return length + rr.Count;
    }

    [Fact]
    public void The_first_response_must_be_signed()
    {
        var key = Key();
        var (_, requestMac) = Signed(key);
        var verifier = new TsigResponseVerifier(key, requestMac, Now);
        var (buffer, length) = Query();
        Assert.Equal(TsigCheck.Missing, verifier.Check(buffer.AsSpan(0, length)));
    }

    [Theory]
    [InlineData("transfer.test:hmac-sha512:" + TestSecret, "transfer.test.", TsigAlgorithm.HmacSha512)]
    [InlineData("hmac-sha1:transfer.test:" + TestSecret, "transfer.test.", TsigAlgorithm.HmacSha1)]
    [InlineData("Transfer.Test.:" + TestSecret, "transfer.test.", TsigAlgorithm.HmacSha256)]
    public void Key_specs_are_read_in_either_order(string spec, string name, TsigAlgorithm algorithm)
    {
        Assert.True(TsigKey.TryParseSpec(spec, out var key, out var error), error);
        Assert.Equal(name, key!.Name.ToString());
        Assert.Equal(algorithm, key.Algorithm);
    }

    [Theory]
    [InlineData("transfer.test:hmac-md5:" + TestSecret, "algorithm 'hmac-md5'")]
    [InlineData("transfer.test:hmac-sha256:not*base64", "not base64")]
    [InlineData("transfer.test:hmac-sha256:c2hvcnQ=", "fewer than 16")]
    [InlineData("justaname", "expected name:algorithm:secret")]
    public void Bad_key_specs_say_what_is_wrong(string spec, string expected)
    {
        Assert.False(TsigKey.TryParseSpec(spec, out _, out var error));
        Assert.Contains(expected, error);
    }
}
