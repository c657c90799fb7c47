using System.Text.Json;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// A small hand check of the documented JSON schemas (docs/query.schema.json, docs/check.schema.json):
/// the subset of JSON Schema 2020-12 they use. "type" (a name or a list), "required", "properties",
/// "additionalProperties": false, "items", "enum", "const", "minimum", "maximum" and "$ref" to
/// "#/$defs/NAME", recursively. Anything else in a schema is ignored, so a schema must stay within
/// this subset for the check to mean something (<see cref="JsonSchemaCheckTests"/> guards it).
/// </summary>
internal static class JsonSchemaCheck
{
    /// <summary>Asserts that <paramref name="value"/> satisfies docs/<paramref name="schemaFile"/>.</summary>
    public static void AssertValid(string schemaFile, JsonElement value)
    {
        var errors = Errors(schemaFile, value);
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    /// <summary>Every way <paramref name="value"/> breaks docs/<paramref name="schemaFile"/>, as "$.path: problem".</summary>
    public static List<string> Errors(string schemaFile, JsonElement value)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(SchemaPath(schemaFile)));
        var errors = new List<string>();
        Check(schema.RootElement, schema.RootElement, value, "$", errors);
        return errors;
    }

    public static string SchemaPath(string schemaFile)
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "docs", schemaFile))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir, "docs", schemaFile);
    }

    private static void Check(JsonElement root, JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (schema.TryGetProperty("$ref", out var reference))
        {
            const string prefix = "#/$defs/";
            string target = reference.GetString()!;
            Assert.StartsWith(prefix, target);
            Check(root, root.GetProperty("$defs").GetProperty(target[prefix.Length..]), value, path, errors);
        }
        if (schema.TryGetProperty("type", out var type))
        {
            var allowed = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            string actual = value.ValueKind switch
            {
                JsonValueKind.Object => "object", JsonValueKind.Array => "array", JsonValueKind.String => "string",
                JsonValueKind.Number => value.TryGetInt64(out _) ? "integer" : "number", JsonValueKind.Null => "null",
                _ => "boolean",
            };
            if (!(allowed.Contains(actual) || actual == "integer" && allowed.Contains("number")))
            {
                errors.Add($"{path}: {actual}, schema says {string.Join('|', allowed)}");
                return;
            }
        }
        if (schema.TryGetProperty("enum", out var @enum) && !@enum.EnumerateArray().Any(e => JsonElement.DeepEquals(e, value)))
            errors.Add($"{path}: {value.GetRawText()} is not one of {@enum.GetRawText()}");
        if (schema.TryGetProperty("const", out var @const) && !JsonElement.DeepEquals(@const, value))
            errors.Add($"{path}: {value.GetRawText()} is not {@const.GetRawText()}");
        if (value.ValueKind == JsonValueKind.Number)
        {
            if (schema.TryGetProperty("minimum", out var min) && value.GetDouble() < min.GetDouble())
                errors.Add($"{path}: {value.GetRawText()} is below the minimum {min.GetRawText()}");
            if (schema.TryGetProperty("maximum", out var max) && value.GetDouble() > max.GetDouble())
                errors.Add($"{path}: {value.GetRawText()} is above the maximum {max.GetRawText()}");
        }
        if (value.ValueKind == JsonValueKind.Object)
        {
            if (schema.TryGetProperty("required", out var required))
                foreach (var name in required.EnumerateArray())
                    if (!value.TryGetProperty(name.GetString()!, out _)) errors.Add($"{path}: no member {name}");
            schema.TryGetProperty("properties", out var properties);
            bool closed = schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False;
            foreach (var member in value.EnumerateObject())
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(member.Name, out var memberSchema))
                    Check(root, memberSchema, member.Value, $"{path}.{member.Name}", errors);
                else if (closed) errors.Add($"{path}: member {member.Name} is not in the schema");
            }
        }
        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var element in value.EnumerateArray()) Check(root, items, element, $"{path}[{i++}]", errors);
        }
    }
}

/// <summary>The schema check itself: it must reject what the schemas forbid, or the output tests prove nothing.</summary>
public sealed class JsonSchemaCheckTests
{
    private static readonly string[] Understood =
        ["$schema", "$id", "$defs", "$ref", "title", "description", "type", "required", "properties", "additionalProperties",
         "items", "enum", "const", "minimum", "maximum", "format", "examples"];

    [Theory]
    [InlineData("query.schema.json")]
    [InlineData("check.schema.json")]
    public void The_schemas_use_only_keywords_the_check_understands(string file)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(JsonSchemaCheck.SchemaPath(file)));
        Assert.Equal("https://json-schema.org/draft/2020-12/schema", schema.RootElement.GetProperty("$schema").GetString());
        Walk(schema.RootElement);

        static void Walk(JsonElement s)
        {
            foreach (var p in s.EnumerateObject())
            {
                Assert.Contains(p.Name, Understood);
                if (p.Name is "properties" or "$defs") foreach (var child in p.Value.EnumerateObject()) Walk(child.Value);
                else if (p.Name == "items") Walk(p.Value);
            }
        }
    }

    [Fact]
    public void Check_reports_rejects_what_the_schema_forbids()
    {
        const string good = """
            { "target": "127.0.0.1", "port": 53, "zone": null, "reachable": true, "burst": 0,
              "findings": [ { "severity": "ok", "check": "udp", "finding": "UDP port 53 answers", "fix": "" } ],
              "summary": { "critical": 0, "warning": 0, "info": 0, "ok": 1 } }
            """;
        using (var doc = JsonDocument.Parse(good)) JsonSchemaCheck.AssertValid("check.schema.json", doc.RootElement);
        foreach (var (from, to) in new[]
        {
            ("\"ok\", \"check\"", "\"fine\", \"check\""),   // severity outside the enum
            ("\"port\": 53", "\"port\": 70000"),            // above the maximum
            ("\"reachable\": true", "\"reachable\": 1"),    // wrong type
            ("\"burst\": 0,", ""),                          // a required member missing
            ("\"fix\": \"\"", "\"fix\": \"\", \"extra\": 1"),   // a member the schema does not know
        })
        {
            using var bad = JsonDocument.Parse(good.Replace(from, to));
            Assert.NotEmpty(JsonSchemaCheck.Errors("check.schema.json", bad.RootElement));
        }
    }
}
