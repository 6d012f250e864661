using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Files;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// The cases, routes and load modes the matrix is built from, read from the one catalogue file
/// (python/torchconformance/catalogue/cases.json, <see cref="CatalogueFiles"/>) that both workers read too.
/// </summary>
public static class Catalogue
{
    public const string Pickle = "pickle";
    public const string PickleLegacy = "pickle_legacy";
    public const string Safetensors = "safetensors";
    public const string TorchSharpNative = "torchsharp_native";
    /// <summary>The seed's training checkpoint, torch.save zip+pickle; read and written on the TorchSharp side by this project's codec.</summary>
    public const string Checkpoint = "checkpoint";

    /// <summary>An optimizer's state dict on its own beside the model's (a folder of both), read and written by each library.</summary>
    public const string OptimizerState = "optimizer_state";

    public const string StrictFalse = "strict_false";
    public const string ShapeMismatchMode = "shape_mismatch";

    /// <summary>Full models as TorchScript: torch.jit.script or torch.jit.trace, then torch.jit.save / load.</summary>
    public const string TorchScriptScript = "torchscript_script";
    public const string TorchScriptTrace = "torchscript_trace";

    public static bool IsTorchScript(string route) => route is TorchScriptScript or TorchScriptTrace;

    /// <summary>torch.save(model): the whole module pickled with its Python class (the seed's "entire model").</summary>
    public const string PickledModel = "pickled_model";

    private static JsonObject Document => CatalogueFiles.Read("cases.json");

    /// <summary>The state-dict routes every case crosses by unless it says otherwise (the catalogue's defaults.routes).</summary>
    public static IReadOnlyList<string> Routes { get; } = Strings(Document["defaults"]!["routes"]);

    /// <summary>Each route with its artifact's extension, its load modes per consumer kind ("*": any other) and whether a case's own modes apply on it.</summary>
    private static readonly Dictionary<string, (string Extension, Dictionary<string, IReadOnlyList<string>> Modes, bool CaseModes)> RouteTable =
        CatalogueFiles.Entries(Document["routes"]).ToDictionary(
            r => r.Key,
            r => (r.Value!["extension"]!.GetValue<string>(),
                  CatalogueFiles.Entries(r.Value!["modes"]).ToDictionary(m => m.Key, m => Strings(m.Value)), r.Value!["case_modes"]!.GetValue<bool>()));

    /// <summary>What a route's artifact name ends with (the catalogue's routes.*.extension, gpu-check's too); <c>.hf</c> is a folder.</summary>
    public static string ExtensionOf(string route) =>
        RouteTable.TryGetValue(route, out var r) ? r.Extension : throw new ArgumentException($"route '{route}' is not in cases.json's routes", nameof(route));

    /// <summary>The TorchSharp side's .NET libraries for state dicts (the catalogue's libraries: id, the name a reader sees, its API), in catalogue order.</summary>
    public static IReadOnlyList<(string Id, string Name, string Api)> Libraries { get; } =
        CatalogueFiles.Entries(Document["libraries"]).Select(l => (l.Key, l.Value!["name"]!.GetValue<string>(), l.Value!["api"]!.GetValue<string>())).ToList();

    /// <summary>
    /// The libraries a route's TorchSharp side runs once each with (the route's <c>libraries</c>); empty for a
    /// route that is TorchSharp's own (TorchScript, its native format), which the bare runtime runs.
    /// </summary>
    public static IReadOnlyList<string> LibrariesOf(string route) =>
        CatalogueFiles.Entries(Document["routes"]).FirstOrDefault(r => r.Key == route).Value?["libraries"] is { } l ? Strings(l) : [];

    /// <summary>The routes a case's artifact crosses by.</summary>
    public static IReadOnlyList<string> RoutesOf(CaseSpec c) => c.Routes;

    /// <summary>Optimizer names of the training-checkpoint cases, in catalogue order (the catalogue's optimizers).</summary>
    public static IReadOnlyList<string> Optimizers { get; } = CatalogueFiles.Entries(Document["optimizers"]).Select(o => o.Key).ToList();

    /// <summary>Each optimizer's torch.optim class and its param_group's keys, in catalogue order (LBFGS, which needs a closure, left out).</summary>
    public static IReadOnlyList<(string Class, IReadOnlySet<string> Keys)> OptimizerParamGroupKeys { get; } =
        CatalogueFiles.Entries(Document["optimizers"])
            .Select(o => (o.Value!["class"]!.GetValue<string>(), (IReadOnlySet<string>)CatalogueFiles.Entries(o.Value!["param_group"]).Select(kv => kv.Key).ToHashSet()))
            .Where(o => o.Item1 != "LBFGS")
            .DistinctBy(o => o.Item1)
            .ToList();

    /// <summary>
    /// LR schedulers in the checkpoint ('scheduler_state_dict'), each over the catalogue's
    /// scheduled_optimizer; a case ckpt_&lt;name&gt; each (the catalogue's schedulers).
    /// </summary>
    public static IReadOnlyList<string> Schedulers { get; } = CatalogueFiles.Entries(Document["schedulers"]).Select(o => o.Key).ToList();

    /// <summary>param_groups keys PyTorch's LR schedulers write into the optimizer's groups; TorchSharp keeps them in the scheduler.</summary>
    public static readonly IReadOnlySet<string> SchedulerGroupKeys = Strings(Document["scheduler_group_keys"]).ToHashSet();

    /// <summary>param_groups flags PyTorch keeps for its own kernels, which TorchSharp does not represent.</summary>
    public static readonly IReadOnlySet<string> ImplementationFlags = Strings(Document["implementation_flags"]).ToHashSet();

    /// <summary>The load modes a consumer of this kind offers on a route for a case; each is its own cell.</summary>
    public static IReadOnlyList<string> LoadModes(CaseSpec c, string consumerKind, string route)
    {
        if (!RouteTable.TryGetValue(route, out var r))
            throw new KeyNotFoundException($"unknown route '{route}' (the catalogue has: {string.Join(", ", RouteTable.Keys)})");
        var modes = new List<string>(r.Modes.TryGetValue(consumerKind, out var own) ? own : r.Modes["*"]);
        if (!r.CaseModes) return modes;
        if (c.Partial is not null) modes.Add(StrictFalse);
        if (c.Mismatch is not null) modes.Add(ShapeMismatchMode);
        return modes;
    }

    /// <summary>Every case, in catalogue order: the state-dict zoo, then one training checkpoint per optimizer.</summary>
    public static IReadOnlyList<CaseSpec> All { get; } = Document["cases"]!.AsArray().Select(n => Parse(n!.AsObject())).ToList();

    /// <summary>The state-dict cases (every case that is not a training checkpoint).</summary>
    public static IReadOnlyList<CaseSpec> Cases { get; } = All.Where(c => !c.IsCheckpoint).ToList();

    /// <summary>The checkpoint model's builder (every training-checkpoint case trains it).</summary>
    public static string CheckpointModel { get; } = Document["checkpoint"]!["model"]!.GetValue<string>();

    /// <summary>
    /// How much wider a tolerance is when either side computed on a GPU: cuBLAS and cuDNN kernels (TF32
    /// off, stated by the worker) sum in other orders than the CPU's. Bytes stay exact; outputs and
    /// resumed parameters get this times the case's CPU-to-CPU tolerance. Twin: judge.DEVICE_FACTOR.
    /// </summary>
    public static readonly double DeviceFactor = Document["device_factor"]!.GetValue<double>();

    /// <summary>The case's tolerance for one device pair (<see cref="Runtime.DeviceOf"/> of producer and consumer).</summary>
    public static Tolerance ToleranceFor(CaseSpec c, string producerDevice, string consumerDevice) =>
        Runtime.IsAccelerator(producerDevice) || Runtime.IsAccelerator(consumerDevice)
            ? new Tolerance(c.Tolerance.Atol * DeviceFactor, c.Tolerance.Rtol * DeviceFactor)
            : c.Tolerance;

    /// <summary>The tolerance of a cell: its case's, for its producer's and consumer's devices.</summary>
    public static Tolerance ToleranceFor(CaseSpec c, Cell cell) => ToleranceFor(c, Runtime.DeviceOf(cell.Producer), Runtime.DeviceOf(cell.Consumer));

    public static CaseSpec Case(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"unknown case '{name}'");

    /// <summary>Every model builder the catalogue names: each case's model and variants, then the checkpoint model.</summary>
    public static IReadOnlyList<string> BuilderNames() =>
        All.Where(c => !c.IsCheckpoint).SelectMany(c => c.Variants.Values.Prepend(c.Model)).Append(CheckpointModel).Distinct().ToList();

    private static IReadOnlyList<string> Strings(JsonNode? node) =>
        node?.AsArray().Select(s => s!.GetValue<string>()).ToList() ?? [];

    private static IReadOnlyList<long> Longs(JsonNode? node) =>
        node!.AsArray().Select(s => s!.GetValue<long>()).ToList();

    /// <summary>One case of the file, the catalogue's defaults filled in where it says nothing.</summary>
    private static CaseSpec Parse(JsonObject c)
    {
        var defaults = Document["defaults"]!;
        JsonNode? Field(string key) => c[key] ?? defaults[key];
        var name = c["name"]!.GetValue<string>();
        var tolerances = Document["tolerances"]!;
        var tolName = c["tolerance"]?.GetValue<string>() ?? throw new InvalidDataException($"case '{name}': no tolerance");
        var tol = tolerances[tolName] ?? throw new InvalidDataException($"case '{name}': unknown tolerance '{tolName}'");
        var partial = c["partial_load"];
        var mismatch = c["shape_mismatch"];
        var routes = Strings(Field("routes"));
        foreach (var route in routes)
            if (!RouteTable.ContainsKey(route)) throw new InvalidDataException($"case '{name}': unknown route '{route}'");
        return new CaseSpec(
            name,
            c["description"]!.GetValue<string>(),
            new Tolerance(tol["atol"]!.GetValue<double>(), tol["rtol"]!.GetValue<double>()),
            TrainModeMatters: Field("train_mode_matters")!.GetValue<bool>(),
            Partial: partial is null ? null : new PartialLoad(Strings(partial["missing"]), Strings(partial["unexpected"])),
            Mismatch: mismatch is null ? null : new ShapeMismatch(mismatch["key"]!.GetValue<string>(), Longs(mismatch["file_shape"]), Longs(mismatch["model_shape"])),
            Golden: Field("golden")!.GetValue<bool>(),
            Optimizer: c["optimizer"]?.GetValue<string>())
        {
            Routes = routes,
            Model = c["model"]?.GetValue<string>() ?? name,
            Variants = CatalogueFiles.Entries(c["variants"]).ToDictionary(v => v.Key, v => v.Value!.GetValue<string>()),
        };
    }
}
