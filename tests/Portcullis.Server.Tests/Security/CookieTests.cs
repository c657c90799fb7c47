using System.Net;
using Portcullis.Server.Security;

namespace Portcullis.Server.Tests.Security;

/// <summary>SipHash-2-4 against the reference vectors of the SipHash paper.</summary>
public sealed class SipHashTests
{
    // The 64 outputs of the reference implementation (the table of the SipHash paper's appendix and
    // of its reference code, as reproduced in the Linux and FreeBSD test suites): key 00 01 .. 0f,
    // message 00 01 .. (n-1) for n = 0..63, each output as the 64-bit word (bytes little-endian).
    private static readonly ulong[] Reference =
    [
        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
        0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
        0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
        0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
        0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
        0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
        0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
        0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
        0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
        0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
        0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
        0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
        0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
        0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
        0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
    ];

    private static byte[] Counting(int n)
    {
        var bytes = new byte[n];
        for (int i = 0; i < n; i++) bytes[i] = (byte)i;
        return bytes;
    }

    [Theory]
    [InlineData(0)] // empty: only the length word
    [InlineData(1)]
    [InlineData(7)] // longest message with no whole word
    [InlineData(8)] // one whole word, empty tail
    [InlineData(15)] // the paper's worked example: a129ca6149be45e5
    [InlineData(63)] // seven words and a 7-byte tail
    public void Matches_the_reference_vector(int length) =>
        Assert.Equal(Reference[length], SipHash.Hash(Counting(16), Counting(length)));

    [Fact]
    public void Matches_all_64_reference_vectors()
    {
        byte[] key = Counting(16), message = Counting(63);
        for (int n = 0; n < 64; n++)
            Assert.Equal(Reference[n], SipHash.Hash(key, message.AsSpan(0, n)));
    }

    [Fact]
    public void Reads_unaligned_input()
    {
        var shifted = new byte[64];
        Counting(63).CopyTo(shifted, 1);
        Assert.Equal(Reference[63], SipHash.Hash(Counting(16), shifted.AsSpan(1, 63)));
    }

    [Fact]
    public void A_key_that_is_not_16_bytes_is_refused()
    {
        Assert.Throws<ArgumentException>(() => SipHash.Hash(new byte[15], []));
        Assert.Throws<ArgumentException>(() => SipHash.Hash(new byte[17], []));
    }
}

/// <summary>DNS cookies: RFC 7873 lengths, the RFC 9018 server cookie, its lifetime and rollover.</summary>
public sealed class CookieTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static byte[] Ip(string address) => IPAddress.Parse(address).GetAddressBytes();

    private static byte[] Option(ReadOnlySpan<byte> clientCookie, ReadOnlySpan<byte> serverCookie) =>
        [.. clientCookie, .. serverCookie];

    // RFC 9018 Appendix A, taken as printed there.
    private const string SecretA = "e5e973e5a6b2a43f48e7dc849e37bfcf";
    private const string OldSecretA4 = "dd3bdf9344b678b185a6f5cb60fca715";
    private const string NewSecretA4 = "445536bcd2513298075a5d379663c962";

    private static string Issue(CookieAuthority authority, string clientCookie, string address, uint now)
    {
        var cookie = new byte[16];
        authority.WriteServerCookie(cookie, Hex(clientCookie), Ip(address), now);
        return clientCookie + Convert.ToHexStringLower(cookie);
    }

    [Fact]
    public void Rfc9018_A1_learning_a_new_server_cookie()
    {
        var authority = new CookieAuthority(Hex(SecretA));
        Assert.Equal(CookieStatus.ClientOnly, authority.Check(Hex("2464c4abcf10c957"), Ip("198.51.100.100"), 1559731985));
        Assert.Equal("2464c4abcf10c957010000005cf79f111f8130c3eee29480",
            Issue(authority, "2464c4abcf10c957", "198.51.100.100", 1559731985));
    }

    [Fact]
    public void Rfc9018_A2_the_same_client_renewing_40_minutes_later()
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var query = Hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        // Valid at issue time; 40 minutes later still valid but past half an hour: renew.
        Assert.Equal(CookieStatus.Valid, authority.Check(query, Ip("198.51.100.100"), 1559731985));
        Assert.Equal(CookieStatus.ValidNeedsRefresh, authority.Check(query, Ip("198.51.100.100"), 1559734385));
        Assert.Equal("2464c4abcf10c957010000005cf7a871d4a564a1442aca77",
            Issue(authority, "2464c4abcf10c957", "198.51.100.100", 1559734385));
    }

    [Fact]
    public void Rfc9018_A3_reserved_bytes_set_by_another_server_are_hashed_as_received()
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var query = Hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        Assert.Equal(CookieStatus.Valid, authority.Check(query, Ip("203.0.113.203"), 1559727985 + 600));

        var tampered = (byte[])query.Clone();
        tampered[11] ^= 1; // last Reserved byte: covered by the hash
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(tampered, Ip("203.0.113.203"), 1559727985 + 600));

        // The example's reply comes 1 h 52 min after that cookie was issued: past the one hour of
        // RFC 9018 §4.3, so here it is refused, and the fresh reply has Reserved back at zero.
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(query, Ip("203.0.113.203"), 1559734700));
        Assert.Equal("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e",
            Issue(authority, "fc93fc62807ddb86", "203.0.113.203", 1559734700));
    }

    [Fact]
    public void Rfc9018_A4_ipv6_query_with_rolled_over_secret()
    {
        const string client = "2001:db8:220:1:59de:d0f4:8769:82b8";
        var query = Hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");

        var rolled = new CookieAuthority(Hex(NewSecretA4), Hex(OldSecretA4));
        Assert.Equal(CookieStatus.Valid, rolled.Check(query, Ip(client), 1559741961));
        Assert.Equal("22681ab97d52c298010000005cf7c609a6bb79d16625507a",
            Issue(rolled, "22681ab97d52c298", client, 1559741961));

        Assert.Equal(CookieStatus.Valid, new CookieAuthority(Hex(OldSecretA4)).Check(query, Ip(client), 1559741961));
        Assert.Equal(CookieStatus.BadServerCookie, new CookieAuthority(Hex(NewSecretA4)).Check(query, Ip(client), 1559741961));

        // The same rollover done with Rotate.
        var rotated = new CookieAuthority(Hex(OldSecretA4));
        rotated.Rotate(Hex(NewSecretA4));
        Assert.Equal(CookieStatus.Valid, rotated.Check(query, Ip(client), 1559741961));
        Assert.Equal("22681ab97d52c298010000005cf7c609a6bb79d16625507a",
            Issue(rotated, "22681ab97d52c298", client, 1559741961));
    }

    [Theory]
    [InlineData("192.0.2.1")]
    [InlineData("2001:db8::53")]
    public void A_cookie_written_is_accepted_back(string address)
    {
        var authority = CookieAuthority.CreateRandom();
        var clientCookie = Hex("0102030405060708");
        var server = new byte[16];
        authority.WriteServerCookie(server, clientCookie, Ip(address), 1_700_000_000);
        Assert.Equal(1, server[0]);
        Assert.Equal([0, 0, 0], server[1..4]);
        Assert.Equal(CookieStatus.Valid, authority.Check(Option(clientCookie, server), Ip(address), 1_700_000_000));
        Assert.Equal(CookieStatus.Valid, authority.Check(Option(clientCookie, server), Ip(address), 1_700_000_000 + 1800));
    }

    [Fact]
    public void Two_random_authorities_do_not_accept_each_others_cookies()
    {
        var a = CookieAuthority.CreateRandom();
        var b = CookieAuthority.CreateRandom();
        var clientCookie = Hex("0102030405060708");
        var server = new byte[16];
        a.WriteServerCookie(server, clientCookie, Ip("192.0.2.1"), 1000);
        Assert.Equal(CookieStatus.BadServerCookie, b.Check(Option(clientCookie, server), Ip("192.0.2.1"), 1000));
    }

    [Fact]
    public void The_previous_secret_survives_one_rotation_and_not_two()
    {
        byte[] s1 = Hex("00112233445566778899aabbccddeeff"), s2 = Hex("0f0e0d0c0b0a09080706050403020100"),
            s3 = Hex("ffeeddccbbaa99887766554433221100");
        var authority = new CookieAuthority(s1);
        var clientCookie = Hex("a1a2a3a4a5a6a7a8");
        var address = Ip("198.51.100.7");
        var fromS1 = new byte[16];
        authority.WriteServerCookie(fromS1, clientCookie, address, 5000);

        authority.Rotate(s2);
        Assert.Equal(CookieStatus.Valid, authority.Check(Option(clientCookie, fromS1), address, 5000));
        // New cookies come from the new secret only.
        var fromS2 = new byte[16];
        authority.WriteServerCookie(fromS2, clientCookie, address, 5000);
        Assert.NotEqual(fromS1, fromS2);
        Assert.Equal(CookieStatus.Valid, new CookieAuthority(s2).Check(Option(clientCookie, fromS2), address, 5000));

        authority.Rotate(s3);
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(Option(clientCookie, fromS1), address, 5000));
        Assert.Equal(CookieStatus.Valid, authority.Check(Option(clientCookie, fromS2), address, 5000));
    }

    [Theory]
    [InlineData(0, CookieStatus.Valid)]
    [InlineData(29 * 60, CookieStatus.Valid)]
    [InlineData(30 * 60, CookieStatus.Valid)]
    [InlineData(30 * 60 + 1, CookieStatus.ValidNeedsRefresh)]
    [InlineData(31 * 60, CookieStatus.ValidNeedsRefresh)]
    [InlineData(60 * 60, CookieStatus.ValidNeedsRefresh)] // exactly one hour: still accepted
    [InlineData(60 * 60 + 1, CookieStatus.BadServerCookie)]
    [InlineData(61 * 60, CookieStatus.BadServerCookie)]
    [InlineData(-5 * 60, CookieStatus.Valid)] // exactly five minutes ahead: still accepted
    [InlineData(-5 * 60 - 1, CookieStatus.BadServerCookie)]
    [InlineData(-6 * 60, CookieStatus.BadServerCookie)]
    [InlineData(int.MaxValue, CookieStatus.BadServerCookie)]
    [InlineData(int.MinValue, CookieStatus.BadServerCookie)]
    public void The_timestamp_window_is_one_hour_back_and_five_minutes_ahead(int ageSeconds, CookieStatus expected)
    {
        var authority = new CookieAuthority(Hex(SecretA));
        const uint issued = 1_600_000_000;
        var option = Hex(Issue(authority, "0102030405060708", "192.0.2.1", issued));
        Assert.Equal(expected, authority.Check(option, Ip("192.0.2.1"), unchecked(issued + (uint)ageSeconds)));
    }

    [Theory]
    [InlineData(0xFFFFFF00u, 0x00000100u, CookieStatus.Valid)] // issued before the wrap, checked 512 s later
    [InlineData(0xFFFFF800u, 0x00000100u, CookieStatus.ValidNeedsRefresh)] // 2304 s old across the wrap
    [InlineData(0xFFFFF000u, 0x00000100u, CookieStatus.BadServerCookie)] // 4352 s old across the wrap
    [InlineData(0x00000010u, 0xFFFFFFF0u, CookieStatus.Valid)] // 32 s in the future across the wrap
    [InlineData(0x00000200u, 0xFFFFFF00u, CookieStatus.BadServerCookie)] // 768 s in the future
    public void Serial_arithmetic_works_across_the_wrap(uint issued, uint now, CookieStatus expected)
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var option = Hex(Issue(authority, "0102030405060708", "192.0.2.1", issued));
        Assert.Equal(expected, authority.Check(option, Ip("192.0.2.1"), now));
    }

    [Theory]
    [InlineData("192.0.2.2")] // neighbour
    [InlineData("::ffff:192.0.2.1")] // same IPv4 address written as IPv6: other bytes
    [InlineData("2001:db8::1")]
    public void A_cookie_from_another_address_is_refused(string other)
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var option = Hex(Issue(authority, "0102030405060708", "192.0.2.1", 1000));
        Assert.Equal(CookieStatus.Valid, authority.Check(option, Ip("192.0.2.1"), 1000));
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(option, Ip(other), 1000));
    }

    [Fact]
    public void Flipping_any_bit_of_a_valid_cookie_makes_it_bad()
    {
        // Every bit of client cookie, version, reserved, timestamp and hash is covered: by the
        // version check, the hash, or both (a timestamp changed by a few seconds is still inside
        // the window, so the hash is what catches it).
        var authority = new CookieAuthority(Hex(SecretA));
        var option = Hex(Issue(authority, "0102030405060708", "2001:db8::7", 1_600_000_000));
        for (int bit = 0; bit < option.Length * 8; bit++)
        {
            var mutated = (byte[])option.Clone();
            mutated[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Equal(CookieStatus.BadServerCookie, authority.Check(mutated, Ip("2001:db8::7"), 1_600_000_000));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(15)]
    [InlineData(41)]
    [InlineData(64)]
    public void Lengths_other_than_8_and_16_to_40_are_malformed(int length)
    {
        var authority = new CookieAuthority(Hex(SecretA));
        Assert.Equal(CookieStatus.Malformed, authority.Check(new byte[length], Ip("192.0.2.1"), 1000));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(23)]
    [InlineData(25)]
    [InlineData(40)]
    public void Well_formed_server_cookies_not_in_rfc9018_format_are_bad(int length)
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var option = new byte[length];
        option[8] = 1; // version 1, but the wrong size
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(option, Ip("192.0.2.1"), 1000));
    }

    [Fact]
    public void A_version_other_than_1_is_bad()
    {
        var authority = new CookieAuthority(Hex(SecretA));
        var option = Hex(Issue(authority, "0102030405060708", "192.0.2.1", 1000));
        option[8] = 2;
        Assert.Equal(CookieStatus.BadServerCookie, authority.Check(option, Ip("192.0.2.1"), 1000));
    }

    [Fact]
    public void Caller_bugs_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new CookieAuthority(new byte[15]));
        Assert.Throws<ArgumentException>(() => new CookieAuthority(new byte[16], new byte[8]));
        var authority = new CookieAuthority(new byte[16]);
        Assert.Throws<ArgumentException>(() => authority.Rotate(new byte[17]));
        Assert.Throws<ArgumentException>(() => authority.Check(new byte[8], new byte[5], 0));
        Assert.Throws<ArgumentException>(() => authority.WriteServerCookie(new byte[15], new byte[8], new byte[4], 0));
        Assert.Throws<ArgumentException>(() => authority.WriteServerCookie(new byte[16], new byte[7], new byte[4], 0));
        Assert.Throws<ArgumentException>(() => authority.WriteServerCookie(new byte[16], new byte[8], new byte[6], 0));
    }

    [Fact]
    public void Check_and_write_allocate_nothing()
    {
        var authority = new CookieAuthority(Hex(SecretA), Hex(OldSecretA4));
        var option = Hex(Issue(authority, "0102030405060708", "2001:db8::7", 1000));
        var foreign = Hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        var address = Ip("2001:db8::7");
        var destination = new byte[16];
        var clientCookie = option[..8];
        // Warm up (JIT, tiering) before measuring.
        for (int i = 0; i < 100; i++)
        {
            authority.Check(option, address, 1000);
            authority.Check(foreign, address, 1000);
            authority.WriteServerCookie(destination, clientCookie, address, 1000);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        int valid = 0;
        for (int i = 0; i < 1000; i++)
        {
            if (authority.Check(option, address, 1000) == CookieStatus.Valid) valid++;
            authority.Check(foreign, address, 1000);
            authority.WriteServerCookie(destination, clientCookie, address, (uint)i);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(1000, valid);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Random_option_payloads_never_throw()
    {
        // Property: for any payload, any address length the server can pass and any time, Check
        // returns, and Malformed exactly when RFC 7873 §5.2.2 says so. Payloads are mostly random,
        // with some built on a valid cookie so that the hash and window paths are reached too.
        var authority = new CookieAuthority(Hex(SecretA), Hex(OldSecretA4));
        var random = new Random(7873);
        var valid = Hex(Issue(authority, "0102030405060708", "192.0.2.1", 1_600_000_000));
        for (int iteration = 0; iteration < 20_000; iteration++)
        {
            byte[] payload;
            if (iteration % 4 == 0)
            {
                payload = (byte[])valid.Clone();
                payload[random.Next(payload.Length)] = (byte)random.Next(256);
            }
            else
            {
                payload = new byte[random.Next(0, 49)];
                random.NextBytes(payload);
                if (payload.Length > 8 && random.Next(2) == 0) payload[8] = 1;
            }
            var address = new byte[random.Next(2) == 0 ? 4 : 16];
            random.NextBytes(address);
            uint now = iteration % 4 == 0 ? 1_600_000_000u + (uint)random.Next(-4000, 4000) : (uint)random.NextInt64(0, 1L << 32);

            CookieStatus status = authority.Check(payload, address, now);

            bool malformed = payload.Length != 8 && (payload.Length < 16 || payload.Length > 40);
            Assert.Equal(malformed, status == CookieStatus.Malformed);
            Assert.True(Enum.IsDefined(status));
            if (payload.Length == 8) Assert.Equal(CookieStatus.ClientOnly, status);
            if (payload.Length != 24 && !malformed && payload.Length != 8) Assert.Equal(CookieStatus.BadServerCookie, status);
        }
    }
}
