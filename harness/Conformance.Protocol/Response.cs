using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

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
