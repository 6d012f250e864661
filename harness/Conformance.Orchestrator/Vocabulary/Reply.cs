using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>
/// A runtime's reply to one request, as the judge takes it: the worker's own answer (<see cref="Answered"/>:
/// a result, or an error it reported itself), or what the orchestrator saw instead (the worker crashed, hung,
/// broke the protocol or could not start). Workers/ makes it; Judgement/ reads it without knowing workers.
/// </summary>
public abstract record Reply
{
    /// <summary>The worker answered: a result, or an error it reported itself.</summary>
    public sealed record Answered(Response Response) : Reply;

    /// <summary>The worker died or broke the channel; <see cref="Message"/> carries its stderr tail.</summary>
    public sealed record Failed(string Kind, string Message) : Reply;

    public const string Crash = "worker_crash";
    public const string Timeout = "worker_timeout";
    public const string ProtocolError = "protocol_error";
    public const string StartError = "worker_start_error";

    public JsonNode? Result => this is Answered { Response.Status: Response.Ok } a ? a.Response.Result : null;
}
