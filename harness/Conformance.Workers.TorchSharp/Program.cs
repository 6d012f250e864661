using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Protocol;
using Conformance.Workers.TorchSharp;
using Conformance.Workers.TorchSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

// `builders`: the model builders this side has (Zoo.Builders), one per line, for CatalogueSpecs;
// it touches no libtorch, so it runs on any machine with .NET.
if (args is ["builders"])
{
    foreach (var name in Conformance.Workers.TorchSharp.Models.Zoo.Builders.Keys) Console.WriteLine(name);
    return 0;
}

// `check-samples DIR`: the TorchSharp-made files `conformance check` is pinned on (tests/check-samples/):
// an Adam's optimizer.save_state_dict and a Tensor.Save tensor (python/torchconformance/samples.py writes the rest).
if (args is ["check-samples", var samplesDir])
{
    Check.WriteSamples(samplesDir);
    return 0;
}

// The TorchSharp worker: acts and observes, never judges. Claim stdout before libtorch loads.
var channel = WorkerHost.ClaimProtocolChannel();
// Pin libtorch's thread pools before any parallel work: results change with the thread count.
torch.set_num_threads(EnvInt("CONFORMANCE_THREADS", 1));
torch.set_num_interop_threads(EnvInt("CONFORMANCE_INTEROP_THREADS", 1));
WorkerHost.Serve(channel, Handle);
return 0;

static Response Handle(Request request)
{
    var args = request.Args ?? new JsonObject();
    try
    {
        JsonNode? result = request.Op switch
        {
            Ops.Hello => Hello(),
            Ops.Listing => Listing(args),
            Ops.Produce => Produce(args),
            Ops.Consume => Consume(args),
            Ops.ProduceCheckpoint => ProduceCheckpoint(args),
            "bench" => Bench.Run(Str(args, "dir"), args["tensors"]!.GetValue<int>(), args["elements"]!.GetValue<long>(), args["repeats"]?.GetValue<int>() ?? 3, args["pybridge"]?.GetValue<bool>() ?? true),
            Ops.ConsumeCheckpoint => ConsumeCheckpoint(args),
            "check" => Check.Run(args),
            Ops.Shutdown => new JsonObject(),
            _ => throw new BadRequestException($"unknown op '{request.Op}'"),
        };
        return Response.Success(request.Id, result);
    }
    catch (NotApplicableException e)
    {
        return Response.Failure(request.Id, new WorkerError(ErrorKinds.NotApplicable, e.Message));
    }
    catch (Exception e) when (e is BadRequestException or KeyNotFoundException)
    {
        return Response.Failure(request.Id, new WorkerError(ErrorKinds.BadRequest, e.Message));
    }
    catch (ArtifactException e)
    {
        return Response.Failure(request.Id, new WorkerError(e.Kind, e.Message, e.InnerException?.ToString()));
    }
}

static JsonNode Hello()
{
    var asm = typeof(torch).Assembly;
    var version = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                  ?? asm.GetName().Version?.ToString() ?? "unknown";
    var devices = new JsonArray("cpu");
    if (cuda.is_available()) devices.Add("cuda");
    return new JsonObject
    {
        ["kind"] = "torchsharp",
        ["version"] = version.Split('+')[0],
        ["dotnet"] = Environment.Version.ToString(),
        ["devices"] = devices,
        ["pid"] = Environment.ProcessId,
        ["load_modes"] = new JsonArray(Routes.LoadModes.Select(m => (JsonNode)m).ToArray()),
        ["threads"] = new JsonObject { ["intra_op"] = torch.get_num_threads(), ["inter_op"] = torch.get_num_interop_threads() },
        // TorchSharp exposes no torch.__config__.show(): the packages it was built with are what is known.
        ["packages"] = PackageVersions(),
        ["build_config"] = "not exposed by TorchSharp; libtorch comes from the package listed under packages",
        ["tf32"] = Devices.Tf32(),
    };
}

static int EnvInt(string name, int fallback) =>
    int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

// The versions of TorchSharp, libtorch, TorchVision and PyBridge this worker was built against, from its deps.json.
static JsonObject PackageVersions()
{
    var result = new JsonObject();
    var deps = Path.Combine(AppContext.BaseDirectory, "Conformance.Workers.TorchSharp.deps.json");
    if (!File.Exists(deps)) return result;
    foreach (var (name, _) in JsonNode.Parse(File.ReadAllText(deps))?["libraries"]?.AsObject() ?? [])
    {
        var slash = name.IndexOf('/');
        var id = slash > 0 ? name[..slash] : name;
        if (id.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || id.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase)
            || id.Equals("TorchVision", StringComparison.OrdinalIgnoreCase))
            result[id] = slash > 0 ? name[(slash + 1)..] : "";
    }
    return result;
}

static string Str(JsonObject args, string name) =>
    args[name]?.GetValue<string>() ?? throw new BadRequestException($"missing argument '{name}'");

static JsonNode Listing(JsonObject args)
{
    var c = Cases.Get(Str(args, "case"));
    manual_seed(args["seed"]?.GetValue<long>() ?? 0);
    var model = c.Build();
    var optimizer = c.Optimizer(model);
    var text = new StringBuilder("Model's state_dict:\n");
    var entries = new JsonArray();
    foreach (var (key, value) in model.state_dict())
    {
        text.Append(CultureInfo.InvariantCulture, $"{key} \t torch.Size([{string.Join(", ", value.shape)}])\n");
        entries.Add(new JsonObject { ["key"] = key, ["shape"] = new JsonArray(value.shape.Select(d => (JsonNode)d).ToArray()) });
    }
    var groups = OptimizerListing.ParamGroups(optimizer);
    text.Append("Optimizer's state_dict:\n");
    text.Append("state \t {}\n");
    text.Append("param_groups \t ").Append(OptimizerListing.Format(groups));
    return new JsonObject
    {
        ["text"] = text.ToString(),
        ["model"] = entries,
        ["optimizer"] = new JsonObject { ["state"] = new JsonObject(), ["param_groups"] = groups },
    };
}

static JsonNode Produce(JsonObject args)
{
    var c = Cases.Get(Str(args, "case"));
    var route = Str(args, "route");
    var path = Str(args, "path");
    if (c.Unproducible() is { } lacks) throw new NotApplicableException(lacks);
    if (Devices.Resolve(args).type != DeviceType.CPU)
        throw new NotApplicableException("the TorchSharp worker trains and produces on the CPU; it consumes onto cuda");
    nn.Module model;
    Func<Tensor, Tensor> forward;
    try
    {
        if (TorchScripts.IsTorchScript(route))
        {
            var script = TorchScripts.Retrain(Str(args, "source"), c);
            script.eval();
            TorchScripts.Save(script, path);
            (model, forward) = (script, script.call);
        }
        else
        {
            var trained = Cases.Train(c, args["seed"]?.GetValue<long>() ?? 0);
            trained.eval();
            Routes.Save(route, trained, path, Routes.Library(args));
            (model, forward) = (trained, trained.call);
        }
    }
    catch (Exception e) when (e is not NotApplicableException and not BadRequestException)
    {
        throw ArtifactException.For(ErrorKinds.SaveError, path, e);
    }
    using var noGrad = no_grad();
    var outputs = forward(c.EvalInput());
    var reply = new JsonObject
    {
        ["tensors"] = Observe.DescribeStateDict(StateOf(model, args)),
        ["outputs"] = Observe.DescribeOutputs(outputs),
        ["aliases"] = Observe.Aliases(model.state_dict()),
    };
    if (TorchScripts.IsTorchScript(route)) reply["archive_version"] = ArchiveVersion(path);
    return reply;
}

/// <summary>The 'version' record of a zip archive (TorchScript's file-format version).</summary>
static string ArchiveVersion(string path)
{
    using var zip = System.IO.Compression.ZipFile.OpenRead(path);
    var entry = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/version", StringComparison.Ordinal) || e.FullName.EndsWith("/.data/version", StringComparison.Ordinal));
    if (entry is null) return "none";
    using var reader = new StreamReader(entry.Open());
    return reader.ReadToEnd().Trim();
}

static JsonNode Consume(JsonObject args)
{
    var c = Cases.Get(Str(args, "case"));
    var path = Str(args, "path");
    var mode = args["mode"]?.GetValue<string>() ?? "default";
    var route = Str(args, "route");
    var device = Devices.Resolve(args);
    var loaded = new Dictionary<string, bool>();
    nn.Module model;
    Func<Tensor, Tensor> forward;
    List<string>? twinKeys = null;
    try
    {
        if (TorchScripts.IsTorchScript(route))
        {
            if (mode != "default") throw new NotApplicableException($"TorchScript modules load one way (torch.jit.load); no mode '{mode}'");
            var script = TorchScripts.Load(path);
            if (device.type != DeviceType.CPU) script.to(device);
            (model, forward) = (script, x => script.call(x.to(device)));
        }
        else
        {
            var twin = (c.Variants?.GetValueOrDefault(mode) ?? c.Build)();
            twinKeys = twin.state_dict().Keys.ToList();
            // `check --model-twin` on a training checkpoint: its model entry into the twin, strict, by the codec.
            if (args["entry"]?.GetValue<string>() is { } entry)
                TorchCheckpoints.StateDicts.load_state_dict(twin, TorchCheckpoints.TorchCheckpoint.Load(path)[entry].Value as TorchCheckpoints.PyDict
                    ?? throw new InvalidDataException($"{path}: its '{entry}' entry is not a dict of tensors"));
            else Routes.Load(route, mode, twin, path, loaded, Routes.Library(args));
            // Loaded on the CPU, then moved, as a TorchSharp user with a GPU does (model.to(cuda)).
            if (device.type != DeviceType.CPU) twin.to(device);
            (model, forward) = (twin, x => twin.call(x.to(device)));
        }
    }
    catch (Exception e) when (e is not NotApplicableException)
    {
        // A file of another kind than the route's (a checkpoint dict, TorchScript, a zip given as
        // safetensors) is said so, with the remedy, instead of the reader's bare exception.
        if (FileFormats.Explain(route, path, e, twinKeys) is { } clear) throw new ArtifactException(ErrorKinds.LoadError, clear, e);
        throw ArtifactException.For(ErrorKinds.LoadError, path, e);
    }
    var tensors = Observe.DescribeStateDict(StateOf(model, args));
    var aliases = Observe.Aliases(model.state_dict());
    model.eval();
    using var noGrad = no_grad();
    var input = CheckInput(c, args["input"]?.GetValue<string>());
    var outputs = forward(input);
    // train() after observing: a train-mode forward moves BatchNorm statistics. Its outputs show
    // that the mode switch takes effect (dropout, batch statistics).
    model.train();
    var trainOutputs = forward(input);
    var reply = new JsonObject
    {
        ["tensors"] = tensors,
        ["outputs"] = Observe.DescribeOutputs(outputs),
        ["train_outputs"] = Observe.DescribeOutputs(trainOutputs),
        ["aliases"] = aliases,
    };
    // Last, as it changes the model: one SGD step must move every parameter (requires_grad survived the load).
    reply["fine_tune"] = FineTune.Observe(model, () => c.TrainLoss(forward, 0));
    if (mode == "strict_false")
    {
        var modelKeys = model.state_dict().Keys.ToList();
        reply["missing_keys"] = new JsonArray(modelKeys.Where(k => !loaded.GetValueOrDefault(k)).Order(StringComparer.Ordinal).Select(k => (JsonNode)k).ToArray());
        reply["unexpected_keys"] = new JsonArray(loaded.Where(kv => !kv.Value).Select(kv => kv.Key).Order(StringComparer.Ordinal).Select(k => (JsonNode)k).ToArray());
    }
    return reply;
}

// The eval input: the case's own (null), or `check --input`'s: ones, zeros, seed:N (the case's input pattern with
// salt N, which both twins compute alike), or file:PATH (a tensor saved with torch.save).
static Tensor CheckInput(Case c, string? input)
{
    if (input is null) return c.EvalInput();
    if (input == "ones") return ones_like(c.EvalInput());
    if (input == "zeros") return zeros_like(c.EvalInput());
    if (input.StartsWith("seed:", StringComparison.Ordinal) && long.TryParse(input[5..], out var salt)) return c.Inputs(salt);
    if (input.StartsWith("file:", StringComparison.Ordinal))
        return TorchCheckpoints.TorchCheckpoint.Load(input[5..]).Value as Tensor ?? throw new BadRequestException($"{input[5..]}: not a single tensor saved with torch.save");
    throw new BadRequestException($"input '{input}': expected ones, zeros, seed:N or file:PATH");
}

static JsonNode ProduceCheckpoint(JsonObject args)
{
    var path = Str(args, "path");
    if (Devices.Resolve(args).type != DeviceType.CPU)
        throw new NotApplicableException("the TorchSharp worker trains and produces on the CPU; it consumes onto cuda");
    try
    {
        var optimizer = Str(args, "optimizer");
        if (args["route"]?.GetValue<string>() == OptimizerStateCases.Route)
            return OptimizerStateCases.Produce(Routes.Library(args), optimizer, path, args["seed"]?.GetValue<long>() ?? 0);
        NoPyBridgeCheckpoint(args);
        return optimizer == "gan"
            ? CheckpointCases.ProduceGan(path, args["seed"]?.GetValue<long>() ?? 0)
            : CheckpointCases.Produce(optimizer, path, args["seed"]?.GetValue<long>() ?? 0);
    }
    catch (Exception e) when (e is not KeyNotFoundException and not NotApplicableException)
    {
        throw ArtifactException.For(ErrorKinds.SaveError, path, e);
    }
}

static JsonNode ConsumeCheckpoint(JsonObject args)
{
    var path = Str(args, "path");
    if (Devices.Resolve(args).type != DeviceType.CPU)
        throw new NotApplicableException("the TorchSharp worker resumes training checkpoints on the CPU");
    var mode = args["mode"]?.GetValue<string>() ?? "default";
    if (mode != "default") throw new NotApplicableException($"TorchSharp has no checkpoint load mode '{mode}'");
    try
    {
        var optimizer = Str(args, "optimizer");
        if (args["route"]?.GetValue<string>() == OptimizerStateCases.Route)
            return OptimizerStateCases.Consume(Routes.Library(args), optimizer, path);
        NoPyBridgeCheckpoint(args);
        return optimizer == "gan" ? CheckpointCases.ConsumeGan(path) : CheckpointCases.Consume(optimizer, path);
    }
    catch (Exception e) when (e is not KeyNotFoundException and not NotApplicableException)
    {
        throw ArtifactException.For(ErrorKinds.LoadError, path, e);
    }
}

// A training checkpoint is one torch.save'd dict (epoch, loss, the model's and the optimizer's state dicts):
// PyBridge reads and writes a module's state dict (load_py/save_py) and an optimizer's alone
// (optimizer.load_py/save_py, the optimizer_state route), not a dict that holds both.
static void NoPyBridgeCheckpoint(JsonObject args)
{
    if (args["library"]?.GetValue<string>() == Routes.PyBridge)
        throw new NotApplicableException("TorchSharp.PyBridge has no reader or writer of a training checkpoint (one torch.save'd dict holding epoch, loss and the model's and optimizer's state dicts): " +
                                         "its load_py/save_py take a module's state dict, its optimizer.load_py/save_py an optimizer's alone (the optimizer_state route)");
}

// The state dict as the request's library gives it to its user: TorchCheckpoints' StateDict.Of (PyTorch's key
// order), else TorchSharp's own model.state_dict() (PyBridge's, TorchScript's, the native format's).
static IEnumerable<KeyValuePair<string, Tensor>> StateOf(nn.Module model, JsonObject args) =>
    Routes.Library(args) == Routes.TorchCheckpointsLibrary ? TorchCheckpoints.StateDict.Of(model) : model.state_dict();
