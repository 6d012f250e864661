using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

/// <summary>What went wrong inside a worker, in the worker's own words.</summary>
/// <param name="Kind">One of <see cref="ErrorKinds"/>.</param>
/// <param name="Message">The first line a person reads: names the file, key, shape or dtype.</param>
/// <param name="Detail">A stack trace or traceback, for the report's detail view.</param>
public sealed record WorkerError(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("detail")] string? Detail = null);
