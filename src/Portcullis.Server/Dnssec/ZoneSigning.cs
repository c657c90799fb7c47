using System.Buffers.Binary;
using System.Security.Cryptography;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Replication;

namespace Portcullis.Server.Dnssec;

/// <summary>
/// Keeps one zone signed in the server (Knot's automatic signing): turns each unsigned version of
/// the zone (file, update, transfer) into the next signed version, asking the zone's keys what
/// each key does now, and keeping every signature of the previous version that is still good
/// (<see cref="ZoneSigningOptions.Previous"/>), so an update costs the signatures of what it
/// changed. Not thread-safe: the server calls it under its zone lock.
/// </summary>
public sealed class ZoneSigning : IDisposable
{
    private readonly TimeProvider _time;

    public ZoneSigning(DnsName origin, DnssecPolicy policy, string keyDirectory, TimeProvider time)
    {
        Origin = origin;
        Policy = policy;
        KeyDirectory = keyDirectory;
        _time = time;
        Keys = ZoneKeys.Open(origin, keyDirectory, policy, time);
    }

    public DnsName Origin { get; }
    public DnssecPolicy Policy { get; }
    public string KeyDirectory { get; }
    public ZoneKeys Keys { get; private set; }
    /// <summary>When the zone must be signed again: the next key event or the first signature due for refresh.</summary>
    public DateTimeOffset NextEvent { get; private set; } = DateTimeOffset.MaxValue;
    /// <summary>Key events of the last signing (for the log).</summary>
    public IReadOnlyList<string> Events { get; private set; } = [];
    /// <summary>Signatures made and kept by the last signing.</summary>
    public SigningCounters LastCounters { get; private set; } = new();

    /// <summary>Re-reads the key states from disk (after `portcullis dnssec ds-seen` and a reload).</summary>
    public void ReopenKeys()
    {
        var fresh = ZoneKeys.Open(Origin, KeyDirectory, Policy, _time);
        Keys.Dispose();
        Keys = fresh;
    }

    public void Dispose() => Keys.Dispose();

    /// <summary>
    /// The types signing makes; they are dropped from an unsigned version (an update or a zone file
    /// cannot set them). A ZONEMD at the apex too: the content changes under it, so the signer
    /// makes it (with the policy's zonemd) or there is none.
    /// </summary>
    public static bool IsSignerMade(RecordType type) => type is RecordType.RRSIG or RecordType.NSEC or RecordType.NSEC3
        or RecordType.NSEC3PARAM or RecordType.DNSKEY or RecordType.CDS or RecordType.CDNSKEY or RecordType.ZONEMD;

    /// <summary>The unsigned content of a signed version: everything but what signing made (at the apex for the key types).</summary>
    public List<ResourceRecord> Strip(IEnumerable<ResourceRecord> records)
    {
        var result = new List<ResourceRecord>();
        foreach (var r in records)
        {
            if (r.Type is RecordType.RRSIG or RecordType.NSEC or RecordType.NSEC3) continue;
            if (IsSignerMade(r.Type) && r.Owner.Equals(Origin)) continue;
            result.Add(r);
        }
        return result;
    }

    /// <summary>
    /// The next signed version from <paramref name="unsigned"/> (no records of the types signing
    /// makes), or null when it would be the same as <paramref name="previous"/>. Its SOA serial is
    /// the unsigned one when that is newer than the previous version's, else the previous one plus
    /// one (BIND's inline signing, Knot's serial-policy increment): a re-signed zone always reaches
    /// secondaries with a higher serial.
    /// </summary>
    public List<ResourceRecord>? Sign(IReadOnlyList<ResourceRecord> unsigned, IReadOnlyList<ResourceRecord>? previous)
    {
        var now = _time.GetUtcNow();
        uint maxTtl = 0;
        foreach (var r in unsigned) maxTtl = Math.Max(maxTtl, r.Ttl);
        var plan = Keys.Plan(TimeSpan.FromSeconds(Math.Max(maxTtl, Policy.DnskeyTtl)));
        Events = plan.Events;

        uint? previousSerial = previous is null ? null : SerialOf(previous);
        uint unsignedSerial = SerialOf(unsigned) ?? throw new InvalidOperationException($"zone {Origin}: no SOA");
        uint serial = previousSerial is { } p && !SerialNumber.IsNewer(unsignedSerial, p) ? p : unsignedSerial;
        var counters = new SigningCounters();
        var options = Options(previous, counters);
        var signed = ZoneSigner.Sign(Origin, WithSerial(unsigned, serial), plan.Keys, now, options);
        if (previous is not null && serial == previousSerial)
        {
            if (Same(signed, previous))
            {
                LastCounters = counters;
                NextEvent = Earliest(plan.NextEvent, counters.EarliestExpiration - Policy.SignatureRefresh);
                return null;
            }
            // Something changed under the same serial: one more, and only the SOA's signature is new.
            var again = new SigningCounters();
            signed = ZoneSigner.Sign(Origin, WithSerial(unsigned, serial + 1), plan.Keys, now, Options(signed, again));
            counters.Made += again.Made;
        }
        LastCounters = counters;
        NextEvent = Earliest(plan.NextEvent, counters.EarliestExpiration - Policy.SignatureRefresh);
        return signed;
    }

    private ZoneSigningOptions Options(IReadOnlyList<ResourceRecord>? previous, SigningCounters counters) => new()
    {
        Validity = Policy.SignatureValidity,
        Refresh = Policy.SignatureRefresh,
        Jitter = Policy.SignatureJitter,
        DnskeyTtl = Policy.DnskeyTtl,
        Nsec3 = Policy.Nsec3,
        Nsec3Iterations = Policy.Nsec3Iterations,
        Nsec3Salt = Salt(previous),
        ZonemdHashAlgorithm = Policy.Zonemd ? Protocol.Dnssec.Zonemd.Sha384 : (byte)0,
        Previous = previous,
        Counters = counters,
    };

    /// <summary>The salt in use (RFC 9276 §3.1: none by default); a new random one only when the length changes.</summary>
    private byte[] Salt(IReadOnlyList<ResourceRecord>? previous)
    {
        if (!Policy.Nsec3 || Policy.Nsec3SaltLength == 0) return [];
        if (previous is not null)
            foreach (var r in previous)
                if (r.Type == RecordType.NSEC3PARAM && r.Owner.Equals(Origin) && r.Data.Length >= 5 && r.Data[4] == Policy.Nsec3SaltLength)
                    return r.Data.AsSpan(5, r.Data[4]).ToArray();
        return RandomNumberGenerator.GetBytes(Policy.Nsec3SaltLength);
    }

    private static DateTimeOffset Earliest(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private uint? SerialOf(IEnumerable<ResourceRecord> records)
    {
        foreach (var r in records)
            if (r.Type == RecordType.SOA && r.Owner.Equals(Origin) && r.Data.Length >= 20) return SerialNumber.Of(r);
        return null;
    }

    private List<ResourceRecord> WithSerial(IReadOnlyList<ResourceRecord> records, uint serial)
    {
        var result = new List<ResourceRecord>(records.Count);
        foreach (var r in records)
        {
            if (r.Type == RecordType.SOA && r.Owner.Equals(Origin) && r.Data.Length >= 20)
            {
                var data = r.Data.ToArray();
                BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(data.Length - 20), serial);
                result.Add(new ResourceRecord(r.Owner, r.Type, r.Class, r.Ttl, data));
            }
            else result.Add(r);
        }
        return result;
    }

    /// <summary>Both lists are in canonical order (the signer's output and a zone's canonical records).</summary>
    private static bool Same(List<ResourceRecord> a, IReadOnlyList<ResourceRecord> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
        {
            var x = a[i];
            var y = b[i];
            if (x.Type != y.Type || x.Ttl != y.Ttl || !x.Owner.Equals(y.Owner) || !x.Data.AsSpan().SequenceEqual(y.Data)) return false;
        }
        return true;
    }
}
