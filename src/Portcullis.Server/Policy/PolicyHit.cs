using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Policy;

/// <summary>What a response policy does with a query whose name it matched (the RPZ actions).</summary>
public enum PolicyAction : byte
{
    /// <summary>NXDOMAIN (RPZ: <c>CNAME .</c>).</summary>
    Nxdomain,
    /// <summary>NOERROR with no answer (RPZ: <c>CNAME *.</c>).</summary>
    Nodata,
    /// <summary>No response at all (RPZ: <c>CNAME rpz-drop.</c>).</summary>
    Drop,
    /// <summary>Answered as if no policy matched; later policies are not consulted (RPZ: <c>CNAME rpz-passthru.</c>).</summary>
    Passthru,
    /// <summary>Over UDP a truncated empty answer (TC=1) so the client retries over TCP; over TCP as passthru (RPZ: <c>CNAME rpz-tcp-only.</c>).</summary>
    TcpOnly,
    /// <summary>Answered from the policy's own records (RPZ: any other records at the trigger).</summary>
    LocalData,
}

/// <summary>
/// A query name matched by a <see cref="ResponsePolicy"/>: which action, from which policy (zone or
/// list), and for local data where its records are. A struct over the immutable snapshot: taking
/// one allocates nothing.
/// </summary>
public readonly struct PolicyHit
{
    private readonly ResponsePolicy? _policy;

    internal PolicyHit(ResponsePolicy policy, int trigger, int layer, PolicyAction action)
    {
        _policy = policy;
        Trigger = trigger;
        Layer = layer;
        Action = action;
    }

    public PolicyAction Action { get; }
    /// <summary>The snapshot the hit came from.</summary>
    public ResponsePolicy Policy => _policy!;
    internal int Trigger { get; }
    /// <summary>The policy's position in the configuration (zones first, then lists).</summary>
    public int Layer { get; }

    /// <summary>The policy's name: the RPZ zone ("rpz.example"), or the list's name. Not allocated per hit.</summary>
    public string PolicyName => _policy!.LayerName(Layer);
    /// <summary>Whether the policy logs its hits (<c>log:</c>).</summary>
    public bool Log => _policy!.LayerLogs(Layer);
    /// <summary>The trigger matched by a wildcard (<c>*.name</c>, or a list entry's subdomains) rather than exactly.</summary>
    public bool Wildcard => _policy!.TriggerIsWildcard(Trigger);
    /// <summary>The trigger's name (for a wildcard, the name below which it matches), wire form, lower case.</summary>
    public ReadOnlySpan<byte> TriggerName => _policy!.TriggerName(Trigger);

    /// <summary>The query log's policy value.</summary>
    public QueryPolicy QueryPolicy => Action switch
    {
        PolicyAction.Nxdomain => QueryPolicy.RpzNxdomain,
        PolicyAction.Nodata => QueryPolicy.RpzNodata,
        PolicyAction.Drop => QueryPolicy.RpzDrop,
        PolicyAction.Passthru => QueryPolicy.RpzPassthru,
        PolicyAction.TcpOnly => QueryPolicy.RpzTcpOnly,
        _ => QueryPolicy.RpzLocalData,
    };

    /// <summary>The counter of this action in <see cref="SecurityCounters"/>.</summary>
    public SecurityReason Reason => Action switch
    {
        PolicyAction.Nxdomain => SecurityReason.PolicyNxdomain,
        PolicyAction.Nodata => SecurityReason.PolicyNodata,
        PolicyAction.Drop => SecurityReason.PolicyDrop,
        PolicyAction.Passthru => SecurityReason.PolicyPassthru,
        PolicyAction.TcpOnly => SecurityReason.PolicyTcpOnly,
        _ => SecurityReason.PolicyLocalData,
    };

    /// <summary>
    /// The Extended DNS Error (RFC 8914) a written answer carries when the query had EDNS: 15
    /// (Blocked) for NXDOMAIN and NODATA, 4 (Forged Answer) for local data; -1 for none.
    /// </summary>
    public int Ede => Action switch
    {
        PolicyAction.Nxdomain or PolicyAction.Nodata => ExtendedErrorBlocked,
        PolicyAction.LocalData => ExtendedErrorForged,
        _ => -1,
    };

    /// <summary>RFC 8914 §4.16.</summary>
    public const int ExtendedErrorBlocked = 15;
    /// <summary>RFC 8914 §4.5.</summary>
    public const int ExtendedErrorForged = 4;

    public override string ToString() => _policy is null ? "(none)" : $"{Action} via {PolicyName}";
}
