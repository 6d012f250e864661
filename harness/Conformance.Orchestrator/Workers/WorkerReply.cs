using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Workers;

/// <summary>
/// What came back for one request: the worker's own answer (<see cref="Answered"/>), or what the
/// orchestrator saw instead (the worker crashed, hung, broke the protocol or could not start).
/// </summary>
public abstract record WorkerReply
{
    /// <summary>The worker answered: a result, or an error it reported itself.</summary>
    public sealed record Answered(Response Response) : WorkerReply;

    /// <summary>The worker died or broke the channel; <see cref="Message"/> carries its stderr tail.</summary>
    public sealed record Failed(string Kind, string Message) : WorkerReply;

    public const string Crash = "worker_crash";
    public const string Timeout = "worker_timeout";
    public const string ProtocolError = "protocol_error";
    public const string StartError = "worker_start_error";

    public JsonNode? Result => this is Answered { Response.Status: Response.Ok } a ? a.Response.Result : null;
}
