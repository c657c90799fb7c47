using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Tests.Messages;
using Xunit.Abstractions;

namespace Portcullis.Protocol.Tests.Wire;

/// <summary>
/// Seeded random mutation of valid messages, and random bytes: every case must end either in
/// <see cref="DnsFormatException"/> or in a parse whose re-encoding parses again to an equal
/// message. Any other exception fails the test with the case's octets, for a regression test.
/// </summary>
public class MutationTests(ITestOutputHelper output)
{
    private const int MutationsPerMessage = 400;
    private static readonly byte[] Interesting = [0x00, 0x01, 0x0C, 0x29, 0x3F, 0x40, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xFF];

    private sealed class Tally
    {
        public int Parsed;
        public int Rejected;
        public readonly byte[] Buffer = new byte[ushort.MaxValue];
    }

    private static List<byte[]> ValidMessages()
    {
        var list = SampleMessages.All().Select(s => s.Message.ToWire()).ToList();
        list.Add(SampleMessages.WriterQuery(Rd.Hex("0102030405060708")));
        return list;
    }

    [Theory]
    [InlineData(20240601)]
    [InlineData(7)]
    [InlineData(1035)]
    public void Mutated_valid_messages_parse_or_fail_with_a_format_error(int seed)
    {
        var rng = new Random(seed);
        var tally = new Tally();
        var originals = ValidMessages();
        for (int m = 0; m < originals.Count; m++)
        {
            for (int i = 0; i < MutationsPerMessage; i++)
            {
                var mutated = Mutate(originals[m], rng);
                Check(mutated, tally, $"seed {seed}, message {m}, mutation {i}");
            }
        }
        output.WriteLine($"{tally.Parsed} mutants parsed and round-tripped, {tally.Rejected} rejected");
        // Both outcomes must be common, or the mutations are not reaching the parser's depths.
        Assert.True(tally.Parsed > originals.Count * MutationsPerMessage / 20, $"only {tally.Parsed} mutants parsed");
        Assert.True(tally.Rejected > originals.Count * MutationsPerMessage / 4, $"only {tally.Rejected} mutants rejected");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(42)]
    public void Random_bytes_parse_or_fail_with_a_format_error(int seed)
    {
        var rng = new Random(seed);
        var tally = new Tally();
        for (int i = 0; i < 10_000; i++)
        {
            var bytes = new byte[rng.Next(0, 600)];
            rng.NextBytes(bytes);
            Check(bytes, tally, $"seed {seed}, random {i}");
        }
        // With small counts in the header the walk gets past the count check and into names and RDATA.
        for (int i = 0; i < 10_000; i++)
        {
            var bytes = new byte[rng.Next(12, 300)];
            rng.NextBytes(bytes);
            for (int c = 4; c < 12; c += 2) { bytes[c] = 0; bytes[c + 1] = (byte)rng.Next(0, 3); }
            Check(bytes, tally, $"seed {seed}, random with small counts {i}");
        }
        output.WriteLine($"{tally.Parsed} parsed and round-tripped, {tally.Rejected} rejected");
        Assert.True(tally.Rejected > 10_000);
    }

    private static void Check(byte[] wire, Tally tally, string where)
    {
        DnsMessage message;
        try
        {
            message = DnsMessage.Parse(wire);
        }
        catch (DnsFormatException)
        {
            tally.Rejected++;
            if (DnsMessage.IsWellFormed(wire) || DnsMessage.TryParse(wire, out _))
                Assert.Fail($"{where}: Parse threw but a Try path accepted {Convert.ToHexString(wire)}");
            return;
        }
        catch (Exception e)
        {
            Assert.Fail($"{where}: {e.GetType().Name} instead of DnsFormatException for {Convert.ToHexString(wire)}\n{e}");
            return;
        }
        tally.Parsed++;
        try
        {
            Assert.True(DnsMessage.IsWellFormed(wire));
            Assert.True(OptRecord.TryRead(wire, out var opt));
            Assert.Equal(message.Edns is not null, opt.IsPresent);
            Assert.True(MalformedInputTests.ReaderAccepts(wire));
            Assert.True(message.TryWrite(tally.Buffer, out int written), "a parsed message re-encodes");
            var again = DnsMessage.Parse(tally.Buffer.AsSpan(0, written));
            MessageAssert.Equivalent(message, again);
        }
        catch (Exception e)
        {
            Assert.Fail($"{where}: accepted message did not round-trip: {Convert.ToHexString(wire)}\n{e}");
        }
    }

    private static byte[] Mutate(byte[] original, Random rng)
    {
        var bytes = new List<byte>(original);
        int operations = 1 + rng.Next(4);
        for (int op = 0; op < operations; op++)
        {
            int at = bytes.Count == 0 ? 0 : rng.Next(bytes.Count);
            switch (rng.Next(9))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] = (byte)rng.Next(256);
                    break;
                case 2 when bytes.Count > 0:
                    bytes[at] = Interesting[rng.Next(Interesting.Length)];
                    break;
                case 3:
                    for (int n = rng.Next(1, 5); n > 0; n--) bytes.Insert(at, (byte)rng.Next(256));
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(at, Math.Min(rng.Next(1, 5), bytes.Count - at));
                    break;
                case 5:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 6 when bytes.Count > 1:
                {
                    // Nudge a 16-bit field: a count, a TYPE, an RDLENGTH, an option length...
                    int field = rng.Next(2) == 0 && bytes.Count >= 12 ? 4 + 2 * rng.Next(4) : Math.Min(at, bytes.Count - 2);
                    int value = ((bytes[field] << 8) | bytes[field + 1]) + (rng.Next(2) == 0 ? 1 : -1);
                    bytes[field] = (byte)(value >> 8);
                    bytes[field + 1] = (byte)value;
                    break;
                }
                case 7 when bytes.Count > 1:
                {
                    // A compression pointer to anywhere, backwards or forwards.
                    int target = rng.Next(bytes.Count + 8);
                    int p = Math.Min(at, bytes.Count - 2);
                    bytes[p] = (byte)(0xC0 | ((target >> 8) & 0x3F));
                    bytes[p + 1] = (byte)target;
                    break;
                }
                case 8 when bytes.Count > 0:
                {
                    int length = rng.Next(1, Math.Min(32, bytes.Count - at) + 1);
                    var slice = bytes.GetRange(at, length);
                    bytes.InsertRange(rng.Next(bytes.Count + 1), slice);
                    break;
                }
            }
        }
        return [.. bytes];
    }
}
