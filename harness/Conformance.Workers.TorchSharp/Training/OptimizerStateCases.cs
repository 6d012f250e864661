using System.Text.Json.Nodes;
using Conformance.Files;
using TorchCheckpoints;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp.Training;

/// <summary>
/// An optimizer's state dict on its own (the optimizer_state route), TorchSharp side; twin of
/// checkpoints.py's produce_optimizer_state / consume_optimizer_state. The artifact is a folder of
/// the model's state dict and the optimizer's (cases.json's <c>files</c>), each written with the
/// request's library: PyBridge's <c>module.save_py</c> and <c>optimizer.save_py</c>, or
/// TorchCheckpoints' <c>module.save_pytorch</c> and <c>optimizer.save_pytorch</c>. The consumer builds
/// the case's optimizer with the route's lr alone and loads the file into it, as a user resuming
/// does (PyBridge's <c>optimizer.load_py</c>, TorchCheckpoints' <c>optimizer.load_pytorch</c>), so that
/// every other hyperparameter must come from the file.
/// </summary>
public static class OptimizerStateCases
{
    public const string Route = "optimizer_state";

    private static readonly JsonNode Spec = CatalogueFiles.Read("cases.json")["routes"]![Route]!;
    private static readonly string ModelFile = Spec["files"]!["model"]!.GetValue<string>();
    private static readonly string OptimizerFile = Spec["files"]!["optimizer"]!.GetValue<string>();
    private static readonly double ConsumerLr = Spec["consumer_lr"]!.GetValue<double>();

    public static JsonObject Produce(string library, string optimizerName, string folder, long seed)
    {
        if (CheckpointCases.Lacks(optimizerName) is { } lacks) throw new NotApplicableException(lacks);
        var (kind, group) = CheckpointCases.Spec(optimizerName);
        manual_seed(seed);
        var model = CheckpointCases.NewModel();
        var optimizer = PyTorchOptimizers.Build(kind, model.parameters(), group);
        for (int step = 0; step < CheckpointCases.TrainSteps; step++) CheckpointCases.Step(model, optimizer, step);
        Directory.CreateDirectory(folder);
        var (modelPath, optimizerPath) = (Path.Combine(folder, ModelFile), Path.Combine(folder, OptimizerFile));
        if (library == Routes.PyBridge)
        {
            DurableFile.Write(modelPath, s => model.save_py(s, leaveOpen: true));
            DurableFile.Write(optimizerPath, s => ((OptimizerHelper)optimizer).save_py(s, leaveOpen: true));
        }
        else
        {
            model.save_pytorch(modelPath);
            optimizer.save_pytorch(optimizerPath);
        }
        var saved = Describe(model, optimizer, kind);
        for (int step = CheckpointCases.TrainSteps; step < CheckpointCases.TrainSteps + CheckpointCases.ResumeSteps; step++) CheckpointCases.Step(model, optimizer, step);
        saved["resumed"] = CheckpointCases.Parameters(model);
        return saved;
    }

    public static JsonObject Consume(string library, string optimizerName, string folder)
    {
        if (CheckpointCases.Lacks(optimizerName) is { } lacks) throw new NotApplicableException(lacks);
        var (kind, _) = CheckpointCases.Spec(optimizerName);
        var (modelPath, optimizerPath) = (Path.Combine(folder, ModelFile), Path.Combine(folder, OptimizerFile));
        var model = CheckpointCases.NewModel();
        if (library == Routes.PyBridge) model.load_py(modelPath, strict: true);
        else model.load_pytorch(modelPath, strict: true);
        // A parameter the model's load left frozen is reported (fine_tune.frozen), then made trainable again, as a
        // user must before training on: so that the optimizer's own load is still judged by the resumed steps.
        var parameters = model.named_parameters().ToList();
        var frozen = parameters.Where(p => !p.parameter.requires_grad).Select(p => p.name).ToList();
        foreach (var (_, p) in parameters) p.requires_grad = true;
        var optimizer = Blank(kind, model.parameters());
        if (library == Routes.PyBridge) ((OptimizerHelper)optimizer).load_py(optimizerPath);
        else optimizer.load_pytorch(optimizerPath);
        var loaded = Describe(model, optimizer, kind);
        model.train();
        var before = parameters.Select(p => p.parameter.detach().clone()).ToList();
        for (int step = CheckpointCases.TrainSteps; step < CheckpointCases.TrainSteps + CheckpointCases.ResumeSteps; step++) CheckpointCases.Step(model, optimizer, step);
        loaded["resumed"] = CheckpointCases.Parameters(model);
        loaded["fine_tune"] = new JsonObject
        {
            ["parameters"] = Names(parameters.Select(p => p.name)),
            ["frozen"] = Names(frozen),
            // unchanged: a parameter the resumed steps left as it was (the optimizer does not hold it, or it stayed frozen).
            ["unchanged"] = Names(parameters.Zip(before).Where(z => z.First.parameter.detach().eq(z.Second).all().item<bool>()).Select(z => z.First.name)),
        };
        return loaded;
    }

    private static JsonArray Names(IEnumerable<string> names) => new(names.Select(n => (JsonNode)n).ToArray());

    /// <summary>The case's optimizer class over <paramref name="parameters"/> with the route's lr and TorchSharp's defaults, as a user resuming builds it before loading.</summary>
    private static optim.Optimizer Blank(string kind, IEnumerable<Parameter> parameters) => kind switch
    {
        "SGD" => optim.SGD(parameters, ConsumerLr),
        "Adam" => optim.Adam(parameters, ConsumerLr),
        "AdamW" => optim.AdamW(parameters, ConsumerLr),
        "RMSprop" => optim.RMSProp(parameters, ConsumerLr),
        "Adagrad" => optim.Adagrad(parameters, ConsumerLr),
        "Adamax" => optim.Adamax(parameters, ConsumerLr),
        "NAdam" => optim.NAdam(parameters, ConsumerLr),
        "RAdam" => optim.RAdam(parameters, ConsumerLr),
        _ => throw new NotApplicableException($"optimizer class '{kind}' has no TorchSharp twin here"),
    };

    private static JsonObject Describe(nn.Module model, optim.Optimizer optimizer, string kind) => new()
    {
        ["tensors"] = Observe.DescribeStateDict(model.state_dict()),
        ["optimizer"] = CheckpointCases.DescribeOptimizer(optimizer, kind),
    };
}
