using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

/// <summary>
/// One request line from the orchestrator to a worker: <c>{"id":1,"op":"produce","args":{...}}</c>.
/// Requests and responses are single-line JSON documents ("JSON lines") on the worker's stdin and
/// its guarded protocol descriptor.
/// </summary>
public sealed record Request(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("op")] string Op,
    [property: JsonPropertyName("args")] JsonObject? Args = null);

/// <summary>
/// The worker's answer, a tagged union as in protobuf's conformance suite: either
/// <see cref="Result"/> (status "ok") or <see cref="Error"/> (status "error"). An error response is not
/// by itself a failure: some cells are meant to fail, and the orchestrator owns every verdict.
/// </summary>
public sealed record Response(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("result")] JsonNode? Result = null,
    [property: JsonPropertyName("error")] WorkerError? Error = null)
{
    public const string Ok = "ok";
    public const string Failed = "error";

    public static Response Success(long id, JsonNode? result) => new(id, Ok, result);
    public static Response Failure(long id, WorkerError error) => new(id, Failed, null, error);
}

/// <summary>What went wrong inside a worker, in the worker's own words.</summary>
/// <param name="Kind">One of <see cref="ErrorKinds"/>.</param>
/// <param name="Message">The first line a person reads: names the file, key, shape or dtype.</param>
/// <param name="Detail">A stack trace or traceback, for the report's detail view.</param>
public sealed record WorkerError(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("detail")] string? Detail = null);

public static class ErrorKinds
{
    /// <summary>The artifact could not be read back.</summary>
    public const string LoadError = "load_error";
    /// <summary>The artifact could not be written.</summary>
    public const string SaveError = "save_error";
    /// <summary>The runtime lacks the capability the cell needs (a load mode, a dtype, a route).</summary>
    public const string NotApplicable = "not_applicable";
    /// <summary>The request itself was malformed or named an unknown case, route or op.</summary>
    public const string BadRequest = "bad_request";
    /// <summary>Anything else raised inside the worker.</summary>
    public const string RuntimeError = "runtime_error";
}

public static class Ops
{
    public const string Hello = "hello";
    public const string Listing = "listing";
    public const string Produce = "produce";
    public const string Consume = "consume";
    public const string ProduceCheckpoint = "produce_checkpoint";
    public const string ConsumeCheckpoint = "consume_checkpoint";
    public const string Shutdown = "shutdown";
}

public static class Wire
{
    /// <summary>Options shared by every .NET party: compact, one document per line.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Encode<T>(T message) => JsonSerializer.Serialize(message, Options);

    /// <summary>One protocol line; a line that is not the expected JSON is refused with the line quoted.</summary>
    public static T Decode<T>(string line)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(line, Options)
                   ?? throw new JsonException($"protocol line decoded to null: \"{Truncate(line, 200)}\"");
        }
        catch (JsonException e) when (!e.Message.StartsWith("protocol line", StringComparison.Ordinal))
        {
            throw new JsonException($"protocol line is not a {typeof(T).Name}: \"{Truncate(line, 200)}\" ({e.Message})", e);
        }
    }

    public static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";
}
