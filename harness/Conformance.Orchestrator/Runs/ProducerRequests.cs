using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Runs;

/// <summary>What the orchestrator asks a producer for, and on which device; where TorchSharp's TorchScript sources come from.</summary>
public static class ProducerRequests
{
    /// <summary>
    /// Asks <paramref name="producer"/> for the artifact. TorchSharp cannot script or trace a C#
    /// module: for TorchScript routes it retrains a ScriptModule that the oldest available PyTorch
    /// runtime made first (written beside the artifact as *.source.pt).
    /// </summary>
    public static Reply ProduceArtifact(WorkerPool pool, IReadOnlyList<Runtime> runtimes, CaseSpec spec, string route, Runtime producer, string path, RunnerOptions options)
    {
        var args = ProduceArgs(spec, route, path, options.Seed);
        if (Catalogue.IsTorchScript(route) && producer.Kind == RuntimeKinds.TorchSharp)
        {
            // The oldest by parsed version ("1.13" < "2.6", which string order gets wrong for "10.0" < "9.0").
            var maker = runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderBy(r => Runtime.ParseVersion(r.Version)).FirstOrDefault();
            if (maker is null)
                return new Reply.Failed(Reply.StartError, "no PyTorch runtime to make the source ScriptModule that TorchSharp retrains");
            var source = Path.ChangeExtension(path, ".source.pt");
            var made = pool.Send(maker, Ops.Produce, ProduceArgs(spec, route, source, options.Seed), options.RequestTimeout);
            if (made.Result is null) { ArtifactFiles.RemovePartial(source); return made; }
            args["source"] = source;
        }
        return pool.Send(producer, ProduceOp(spec), For(args, producer), options.RequestTimeout);
    }

    /// <summary>
    /// A runtime on a device (<c>pytorch-2.11-cuda</c>) is the same worker asked to act there: <c>device</c> in
    /// its requests; one with a library (<c>torchsharp-0.107+torchcheckpoints</c>) is asked to use it: <c>library</c>.
    /// </summary>
    public static JsonObject For(JsonObject args, Runtime runtime)
    {
        if (Runtime.IsAccelerator(runtime.Device)) args["device"] = runtime.Device;
        if (runtime.Library is { } library) args["library"] = library;
        return args;
    }

    /// <summary>The op that makes a case's artifact: a trained state dict, or a training checkpoint.</summary>
    public static string ProduceOp(CaseSpec c) => c.IsCheckpoint ? Ops.ProduceCheckpoint : Ops.Produce;

    public static JsonObject ProduceArgs(CaseSpec c, string route, string path, long seed) => c.IsCheckpoint
        ? new JsonObject { ["case"] = c.Name, ["route"] = route, ["optimizer"] = c.Optimizer, ["path"] = path, ["seed"] = seed }
        : new JsonObject { ["case"] = c.Name, ["route"] = route, ["path"] = path, ["seed"] = seed };
}
