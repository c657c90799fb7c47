using Portcullis.Protocol.Names;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Server.Policy;

/// <summary>What <see cref="PolicyResponseWriter.Write"/> did.</summary>
public enum PolicyResponse : byte
{
    /// <summary>Nothing written: answer the query as if no policy matched (PASSTHRU, or TCP-only over TCP).</summary>
    Continue,
    /// <summary>Nothing written and nothing to send (DROP).</summary>
    Drop,
    /// <summary>The answer is written (header flags and RCODE set): finish it, add OPT (with <see cref="PolicyHit.Ede"/> when TC is clear), send.</summary>
    Written,
}

/// <summary>
/// Writes the answer a policy hit calls for, after the header and question the caller wrote, with
/// the project's <see cref="DnsMessageWriter"/>; allocation-free. The answers are recursive ones
/// (AA clear; the caller sets RA and echoes RD/CD), as BIND's rewritten answers are:
/// <list type="bullet">
/// <item>NXDOMAIN / NODATA: the policy zone's SOA in the authority section (owner the policy zone,
/// TTL the lesser of its TTL and MINIMUM, RFC 2308 §3) so that downstream caches bound the negative
/// answer; a list has no SOA, so its negative answers carry none.</item>
/// <item>Local data: the records of the question's type (all of them for ANY) with the query name
/// as owner; else the trigger's CNAME (only the CNAME: the target is not chased here); else NODATA
/// with the SOA. Records that do not fit set TC (RFC 2181 §9).</item>
/// <item>TCP-only over UDP: header and question with TC=1, nothing else, so the client retries over TCP.</item>
/// </list>
/// </summary>
public static class PolicyResponseWriter
{
    public static PolicyResponse Write(in PolicyHit hit, ref DnsMessageWriter w, ReadOnlySpan<byte> qname, RecordType qtype, bool tcp)
    {
        w.Header.AuthoritativeAnswer = false;
        switch (hit.Action)
        {
            case PolicyAction.Passthru:
                return PolicyResponse.Continue;
            case PolicyAction.Drop:
                return PolicyResponse.Drop;
            case PolicyAction.TcpOnly:
                if (tcp) return PolicyResponse.Continue;
                w.Header.Truncated = true;
                w.Header.Rcode = (byte)Rcode.NoError;
                return PolicyResponse.Written;
            case PolicyAction.Nxdomain:
                w.Header.Rcode = (byte)Rcode.NXDomain;
                WriteSoa(in hit, ref w);
                return PolicyResponse.Written;
            case PolicyAction.Nodata:
                w.Header.Rcode = (byte)Rcode.NoError;
                WriteSoa(in hit, ref w);
                return PolicyResponse.Written;
            default:
                WriteLocalData(in hit, ref w, qname, qtype);
                return PolicyResponse.Written;
        }
    }

    private static void WriteLocalData(in PolicyHit hit, ref DnsMessageWriter w, ReadOnlySpan<byte> qname, RecordType qtype)
    {
        var policy = hit.Policy;
        int trigger = hit.Trigger;
        int count = policy.RecordCount(trigger);
        w.Header.Rcode = (byte)Rcode.NoError;
        bool any = false;
        for (int i = 0; i < count; i++)
        {
            var type = policy.RecordTypeAt(trigger, i);
            if (type != qtype && qtype != RecordType.ANY) continue;
            any = true;
            bool written = type == RecordType.CNAME
                ? WriteCname(ref w, qname, policy.RecordTtlAt(trigger, i), policy.RecordDataAt(trigger, i))
                : w.TryWriteRecord(qname, type, RecordClass.IN, policy.RecordTtlAt(trigger, i), policy.RecordDataAt(trigger, i), DnsSection.Answer);
            if (!written)
            {
                w.Header.Truncated = true;
                return;
            }
        }
        if (any) return;
        for (int i = 0; i < count; i++)
        {
            if (policy.RecordTypeAt(trigger, i) != RecordType.CNAME) continue;
            if (!WriteCname(ref w, qname, policy.RecordTtlAt(trigger, i), policy.RecordDataAt(trigger, i)))
                w.Header.Truncated = true;
            return;
        }
        WriteSoa(in hit, ref w);   // the name has local data, none of this type: NODATA
    }

    /// <summary>
    /// A local-data CNAME. A target "*.SUFFIX" rewrites to the query name with SUFFIX appended (the
    /// RPZ walled-garden form, BIND's): www.bad.example with "*.garden.example." becomes
    /// www.bad.example.garden.example. A rewritten name longer than 255 octets is answered
    /// YXDOMAIN, as a DNAME substitution that does not fit is (RFC 6672 §2.2). False when the
    /// record did not fit.
    /// </summary>
    private static bool WriteCname(ref DnsMessageWriter w, ReadOnlySpan<byte> qname, uint ttl, ReadOnlySpan<byte> target)
    {
        if (target.Length < 3 || target[0] != 1 || target[1] != (byte)'*')
            return w.TryWriteRecord(qname, RecordType.CNAME, RecordClass.IN, ttl, target, DnsSection.Answer);
        var suffix = target[2..];                 // the labels after "*", with the root
        int nameLength = qname.Length - 1;        // the query name without its root label
        if (nameLength + suffix.Length > DnsName.MaxLength)
        {
            w.Header.Rcode = (byte)Rcode.YXDomain;
            return true;
        }
        Span<byte> rewritten = stackalloc byte[DnsName.MaxLength];
        qname[..nameLength].CopyTo(rewritten);
        suffix.CopyTo(rewritten[nameLength..]);
        return w.TryWriteRecord(qname, RecordType.CNAME, RecordClass.IN, ttl, rewritten[..(nameLength + suffix.Length)], DnsSection.Answer);
    }

    private static void WriteSoa(in PolicyHit hit, ref DnsMessageWriter w)
    {
        var policy = hit.Policy;
        var owner = policy.SoaOwner(hit.Layer);
        if (owner.IsEmpty) return;
        // Left out (not TC) when it does not fit: the answer is complete without it.
        w.TryWriteRecord(owner, RecordType.SOA, RecordClass.IN, policy.SoaTtl(hit.Layer), policy.SoaData(hit.Layer), DnsSection.Authority);
    }
}
