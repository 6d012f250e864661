using System.Text.Json.Nodes;
using Conformance.Workers.TorchSharp.Models;
using TorchCheckpoints;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;
using LRScheduler = TorchSharp.torch.optim.lr_scheduler.LRScheduler;
using OneCycle = TorchSharp.torch.optim.lr_scheduler.impl.OneCycleLR;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp.Training;

/// <summary>
/// LR schedulers inside the checkpoint ('scheduler_state_dict'), TorchSharp side; twin of
/// checkpoints.SCHEDULERS / SCHEDULED_SGD. TorchSharp's schedulers have no state_dict() and no
/// load_state_dict(): the producer writes PyTorch's layout from what it constructed and stepped
/// (hyperparameters, last_epoch, _step_count, base_lrs, _last_lr, and the param_groups keys
/// PyTorch's schedulers add: initial_lr, and OneCycleLR's max_lr, min_lr, base_momentum,
/// max_momentum). The consumer rebuilds the scheduler the one way TorchSharp offers, its
/// constructor's last_epoch, with every hyperparameter from the file.
/// </summary>
public static class ScheduledCheckpoints
{
    // The catalogue's schedulers and scheduled_optimizer (python: checkpoints.SCHEDULERS, SCHEDULED_SGD read the same).
    private static readonly JsonNode Doc = CatalogueFiles.Read("cases.json");
    private static readonly JsonNode SgdGroup = Doc["scheduled_optimizer"]!["param_group"]!;
    private static double Arg(string scheduler, string key) => Doc["schedulers"]![scheduler]!["args"]![key]!.GetValue<double>();

    public static bool Handles(string name) => CatalogueFiles.Entries(Doc["schedulers"]).Any(s => s.Key == name);

    private static readonly double Lr = SgdGroup["lr"]!.GetValue<double>(), Momentum = SgdGroup["momentum"]!.GetValue<double>();
    private static readonly int StepSize = (int)Arg("steplr", "step_size");
    private static readonly double Gamma = Arg("steplr", "gamma"), TMax = Arg("cosine", "T_max"), EtaMin = Arg("cosine", "eta_min");
    private static readonly double MaxLr = Arg("onecycle", "max_lr"), PctStart = Arg("onecycle", "pct_start"), BaseMomentum = Arg("onecycle", "base_momentum"),
        MaxMomentum = Arg("onecycle", "max_momentum"), DivFactor = Arg("onecycle", "div_factor"), FinalDivFactor = Arg("onecycle", "final_div_factor");
    private static readonly int TotalSteps = (int)Arg("onecycle", "total_steps");

    private static Optimizer Sgd(nn.Module model) => SGD(model.parameters(), Lr, Momentum, 0.0, 0.0, false, false);

    private static LRScheduler Fresh(string name, Optimizer o) => name switch
    {
        "steplr" => lr_scheduler.StepLR(o, StepSize, Gamma),
        "cosine" => lr_scheduler.CosineAnnealingLR(o, TMax, EtaMin),
        "onecycle" => lr_scheduler.OneCycleLR(o, MaxLr, total_steps: TotalSteps, pct_start: PctStart, anneal_strategy: OneCycle.AnnealStrategy.Cos,
            cycle_momentum: true, base_momentum: BaseMomentum, max_momentum: MaxMomentum, div_factor: DivFactor, final_div_factor: FinalDivFactor, three_phase: false),
        _ => throw new KeyNotFoundException($"unknown scheduler '{name}'"),
    };

    /// <summary>The keys PyTorch's scheduler writes into each param group, as it would have written them.</summary>
    private static PyDict GroupKeys(string name, Optimizer o)
    {
        var d = new PyDict();
        if (name == "onecycle")
        {
            d.Add("initial_lr", MaxLr / DivFactor);
            d.Add("max_lr", MaxLr);
            d.Add("min_lr", MaxLr / DivFactor / FinalDivFactor);
            d.Add("max_momentum", MaxMomentum);
            d.Add("base_momentum", BaseMomentum);
        }
        else d.Add("initial_lr", o.ParamGroups.First().InitialLearningRate);
        return d;
    }

    /// <summary>PyTorch's scheduler.state_dict() for what this producer built and stepped <paramref name="steps"/> times.</summary>
    private static PyDict StateDict(string name, LRScheduler scheduler, PyDict groupKeys, int steps)
    {
        var d = new PyDict();
        switch (name)
        {
            case "steplr": d.Add("step_size", (long)StepSize); d.Add("gamma", Gamma); break;
            case "cosine": d.Add("T_max", (long)TMax); d.Add("eta_min", EtaMin); break;
            case "onecycle":
                d.Add("total_steps", (long)TotalSteps);
                var phases = new List<object?>
                {
                    Phase(PctStart * TotalSteps - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    Phase(TotalSteps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
                };
                d.Add("_schedule_phases", phases);
                d.Add("_anneal_func_type", "cos");
                d.Add("cycle_momentum", true);
                d.Add("use_beta1", false);
                break;
        }
        d.Add("base_lrs", new List<object?> { groupKeys["initial_lr"] });
        d.Add("last_epoch", (long)steps);
        d.Add("verbose", false);
        d.Add("_step_count", (long)steps + 1);  // the constructor's own step, then one per epoch
        d.Add("_get_lr_called_within_step", false);
        d.Add("_last_lr", scheduler.get_last_lr().Select(v => (object?)v).ToList());
        return d;
    }

    private static PyDict Phase(double endStep, string startLr, string endLr, string startMomentum, string endMomentum)
    {
        var p = new PyDict();
        p.Add("end_step", endStep);
        p.Add("start_lr", startLr);
        p.Add("end_lr", endLr);
        p.Add("start_momentum", startMomentum);
        p.Add("end_momentum", endMomentum);
        return p;
    }

    /// <summary>
    /// The scheduler from the file. TorchSharp has no load_state_dict(); its constructor's last_epoch is
    /// the one way in, and that constructor, like PyTorch's, takes one step: last_epoch - 1 lands on the
    /// file's epoch. The base learning rate is the group's initial_lr from the file.
    /// </summary>
    private static LRScheduler Restore(string name, Optimizer o, PyDict group, PyDict state, string where)
    {
        double D(PyDict d, string key, string what) => d.TryGetValue(key, out var v) ? PyTorchOptimizers.ToDouble(v, $"{what}.{key}")
            : throw new CheckpointFormatException($"{where}: {what} has no '{key}'");
        int lastEpoch = (int)D(state, "last_epoch", "scheduler_state_dict");
        foreach (var pg in o.ParamGroups) pg.InitialLearningRate = D(group, "initial_lr", "param_groups[0]");
        switch (name)
        {
            case "steplr":
                return lr_scheduler.StepLR(o, (int)D(state, "step_size", "scheduler_state_dict"), D(state, "gamma", "scheduler_state_dict"), last_epoch: lastEpoch - 1);
            case "cosine":
                return lr_scheduler.CosineAnnealingLR(o, D(state, "T_max", "scheduler_state_dict"), D(state, "eta_min", "scheduler_state_dict"), last_epoch: lastEpoch - 1);
            case "onecycle":
            {
                var phases = state.TryGetValue("_schedule_phases", out var ph) && ph is List<object?> l && l.All(x => x is PyDict) ? l.Cast<PyDict>().ToList()
                    : throw new CheckpointFormatException($"{where}: scheduler_state_dict._schedule_phases is not a list of dicts");
                var anneal = state.TryGetValue("_anneal_func_type", out var a) ? a as string
                    : throw new CheckpointFormatException($"{where}: scheduler_state_dict has no '_anneal_func_type' (PyTorch before 2.2 pickles the annealing function itself)");
                int total = (int)D(state, "total_steps", "scheduler_state_dict");
                double maxLr = D(group, "max_lr", "param_groups[0]"), initial = D(group, "initial_lr", "param_groups[0]"), min = D(group, "min_lr", "param_groups[0]");
                bool cycle = state.TryGetValue("cycle_momentum", out var c) && c is true;
                try
                {
                    return lr_scheduler.OneCycleLR(o, maxLr, total_steps: total, pct_start: (PyTorchOptimizers.ToDouble(phases[0]["end_step"], "end_step") + 1) / total,
                        anneal_strategy: anneal == "cos" ? OneCycle.AnnealStrategy.Cos : OneCycle.AnnealStrategy.Linear,
                        cycle_momentum: cycle, base_momentum: cycle ? D(group, "base_momentum", "param_groups[0]") : 0.85, max_momentum: cycle ? D(group, "max_momentum", "param_groups[0]") : 0.95,
                        div_factor: maxLr / initial, final_div_factor: initial / min, three_phase: phases.Count == 3, last_epoch: lastEpoch - 1);
                }
                catch (KeyNotFoundException e)
                {
                    // Not the request's fault (the worker reports KeyNotFoundException as a bad request): TorchSharp's own.
                    throw new InvalidOperationException($"TorchSharp's OneCycleLR(cycle_momentum: {cycle}, last_epoch: {lastEpoch - 1}) threw KeyNotFoundException: {e.Message}", e);
                }
            }
            default: throw new KeyNotFoundException($"unknown scheduler '{name}'");
        }
    }

    private static JsonObject Schedule(LRScheduler scheduler) => new()
    {
        ["type"] = scheduler.GetType().Name,
        ["last_lr"] = new JsonArray(scheduler.get_last_lr().Select(v => (JsonNode)v).ToArray()),
    };

    /// <summary>K more steps; the lr and momentum each ran with (PyTorch's order: optimizer.step(), then scheduler.step()).</summary>
    private static void Resume(CheckpointNet model, Optimizer optimizer, LRScheduler scheduler, int epoch, JsonObject described)
    {
        var lrs = new JsonArray();
        var momenta = new JsonArray();
        for (int step = epoch; step < epoch + CheckpointCases.ResumeSteps; step++)
        {
            var group = optimizer.ParamGroups.First();
            lrs.Add(group.LearningRate);
            momenta.Add(group is IMomentum m ? (JsonNode)m.Momentum : null);
            CheckpointCases.Step(model, optimizer, step);
            scheduler.step();
        }
        described["resumed"] = CheckpointCases.Parameters(model);
        described["schedule"]!["lrs"] = lrs;
        described["schedule"]!["momenta"] = momenta;
    }

    public static JsonObject Produce(string name, string path, long seed)
    {
        manual_seed(seed);
        var model = new CheckpointNet();
        var optimizer = Sgd(model);
        var scheduler = Fresh(name, optimizer);
        double loss = 0;
        for (int step = 0; step < CheckpointCases.TrainSteps; step++)
        {
            loss = CheckpointCases.Step(model, optimizer, step);
            scheduler.step();
        }
        var groupKeys = GroupKeys(name, optimizer);
        var osd = PyTorchOptimizers.StateDict(optimizer);
        var group = (PyDict)((List<object?>)osd["param_groups"]!)[0]!;
        foreach (var (k, v) in groupKeys) group[k] = v;
        var checkpoint = new PyDict();
        checkpoint.Add("epoch", (long)CheckpointCases.TrainSteps);
        checkpoint.Add("model_state_dict", model.state_dict_py());
        checkpoint.Add("optimizer_state_dict", osd);
        checkpoint.Add("loss", loss);
        checkpoint.Add("scheduler_state_dict", StateDict(name, scheduler, groupKeys, CheckpointCases.TrainSteps));
        TorchCheckpoint.Save(path, checkpoint);
        var saved = CheckpointCases.Describe(CheckpointCases.TrainSteps, loss, model, optimizer, "SGD", groupKeys);
        saved["schedule"] = Schedule(scheduler);
        Resume(model, optimizer, scheduler, CheckpointCases.TrainSteps, saved);
        return saved;
    }

    public static JsonObject Consume(string name, string path)
    {
        var checkpoint = TorchCheckpoint.LoadDict(path);
        var model = new CheckpointNet();
        CheckpointCases.LoadModel(model, checkpoint["model_state_dict"] as PyDict ?? throw new CheckpointFormatException($"{path}: model_state_dict is not a dict"), path);
        var osd = checkpoint["optimizer_state_dict"] as PyDict ?? throw new CheckpointFormatException($"{path}: optimizer_state_dict is not a dict");
        var optimizer = CheckpointCases.LoadOptimizer("SGD", model, osd, $"{path}: optimizer_state_dict");
        var group = (osd["param_groups"] as List<object?>)?.FirstOrDefault() as PyDict ?? throw new CheckpointFormatException($"{path}: optimizer_state_dict.param_groups[0] is not a dict");
        var state = checkpoint.TryGetValue("scheduler_state_dict", out var s) && s is PyDict sd ? sd
            : throw new CheckpointFormatException($"{path}: the checkpoint has no scheduler_state_dict dict");
        var scheduler = Restore(name, optimizer, group, state, path);
        var epoch = (int)PyTorchOptimizers.ToDouble(checkpoint["epoch"], "epoch");
        var loaded = CheckpointCases.Describe(epoch, PyTorchOptimizers.ToDouble(checkpoint["loss"], "loss"), model, optimizer, "SGD", null);
        loaded["schedule"] = Schedule(scheduler);
        model.train();
        Resume(model, optimizer, scheduler, epoch, loaded);
        return loaded;
    }
}
