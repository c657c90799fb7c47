using Portcullis.Server.Telemetry;
using YamlDotNet.Serialization;

namespace Portcullis.Server.Configuration;

/// <summary>
/// The configuration types, described at build time by YamlDotNet's static generator, so that
/// reading the configuration needs no reflection (and works in the Native AOT build).
/// </summary>
[YamlStaticContext]
[YamlSerializable(typeof(ServerConfig))]
[YamlSerializable(typeof(ZoneConfig))]
[YamlSerializable(typeof(KeyConfig))]
[YamlSerializable(typeof(LimitsConfig))]
[YamlSerializable(typeof(ChaosConfig))]
[YamlSerializable(typeof(LoggingConfig))]
[YamlSerializable(typeof(RateLimitConfig))]
[YamlSerializable(typeof(ClientLimitConfig))]
[YamlSerializable(typeof(CookiesConfig))]
[YamlSerializable(typeof(RecursionConfig))]
[YamlSerializable(typeof(DnssecPolicyConfig))]
[YamlSerializable(typeof(Detection.DetectionConfig))]
[YamlSerializable(typeof(MetricsConfig))]
[YamlSerializable(typeof(DnstapConfig))]
[YamlSerializable(typeof(QueryLogConfig))]
[YamlSerializable(typeof(Policy.ResponsePolicyConfig))]
[YamlSerializable(typeof(Policy.PolicyZoneConfig))]
[YamlSerializable(typeof(Policy.PolicyListConfig))]
public partial class ConfigYamlContext : StaticContext
{
}
