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
