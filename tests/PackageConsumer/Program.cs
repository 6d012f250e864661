using System.Security.Cryptography;
using System.Text.Json.Nodes;
using TorchCheckpoints;
using TorchSharp;
using static TorchSharp.torch;

// Loads a PyTorch training checkpoint as a user would: model state into a module, optimizer state
// into a TorchSharp optimizer, then prints what it holds (SHA-256 of every tensor, the step count,
// every hyperparameter) and takes one more training step, as JSON on stdout.
var path = args[0];
var kind = args.Length > 1 ? args[1] : "Adam";
var checkpoint = TorchCheckpoint.Load(path);                        // torch.load: a typed tree, no casts
var model = new Net();
model.load_state_dict(checkpoint["model_state_dict"].AsStateDict());
var optimizer = PyTorchOptimizers.Load(kind, model.parameters(), checkpoint["optimizer_state_dict"].AsDict());

static string Sha(Tensor t) => Convert.ToHexStringLower(SHA256.HashData(t.contiguous().bytes));

var tensors = new JsonObject();
foreach (var (name, t) in model.state_dict()) tensors[name] = Sha(t);
var state = new JsonObject();
// The optimizer as torch.save(optimizer.state_dict()) writes it, read back as torch.load would give it.
var optimizerPath = Path.Combine(Path.GetTempPath(), $"optimizer-{Environment.ProcessId}.pt");
optimizer.save_pytorch(optimizerPath);
var saved = TorchCheckpoint.Load(optimizerPath);
File.Delete(optimizerPath);
foreach (var (index, entries) in saved["state"].Entries)
    foreach (var (key, value) in entries.Entries)
        state[$"{index}.{key}"] = value.Kind switch
        {
            CheckpointValueKind.Tensor when key is not "step" => Sha(value.AsTensor()),
            CheckpointValueKind.Tensor => value.AsTensor().ToDouble(),  // torch >= 1.12 keeps the step count as a tensor
            _ => value.AsFloat(),
        };
var group = new JsonObject();
static JsonNode? Number(CheckpointValue v) => v.Kind == CheckpointValueKind.Int ? v.AsInt() : v.AsFloat();
foreach (var (key, value) in saved["param_groups"][0].Entries)
    group[$"{key}"] = value.Kind switch
    {
        CheckpointValueKind.Float or CheckpointValueKind.Int => Number(value),
        CheckpointValueKind.Bool => value.AsBool(),
        CheckpointValueKind.None => null,
        CheckpointValueKind.Tuple or CheckpointValueKind.List => new JsonArray(value.Select(Number).ToArray()),
        _ => value.AsString(),
    };

// The same file memory-mapped (torch.load(mmap=True)'s way), with and without the CRC check.
var mapped = new JsonObject();
foreach (var verify in new[] { true, false })
{
    var m = TorchCheckpoint.LoadMapped(path, verifyCrc: verify)["model_state_dict"].AsStateDict();
    foreach (var (name, t) in m) mapped[$"{(verify ? "crc" : "nocrc")}.{name}"] = Sha(t);
}

// A copy with one bit flipped inside a tensor record: the mapped load with the CRC check must refuse it.
var corrupt = Path.Combine(Path.GetTempPath(), $"corrupt-{Environment.ProcessId}.pt");
var bytes = File.ReadAllBytes(path);
bytes[bytes.AsSpan().IndexOf("data/0"u8) + 200] ^= 0x40;
File.WriteAllBytes(corrupt, bytes);
string refusal;
try
{
    TorchCheckpoint.LoadMapped(corrupt, verifyCrc: true);
    refusal = "";
}
catch (CheckpointFormatException e)
{
    refusal = e.Message;
}
File.Delete(corrupt);

// The model's state dict saved as torch.save(model.state_dict()) would, read back as a StateDict and
// loaded into a fresh Net; then into a Net with a wider first layer, which must refuse it in PyTorch's words.
var saved_sd = Path.Combine(Path.GetTempPath(), $"sd-{Environment.ProcessId}.pt");
model.save_pytorch(saved_sd);
var roundtrip = new JsonObject();
foreach (var (name, t) in StateDict.Load(saved_sd)) roundtrip[name] = Sha(t);
var fresh = new Net();
fresh.load_pytorch(saved_sd);
var reloaded = new JsonObject();
foreach (var (name, t) in fresh.state_dict()) reloaded[name] = Sha(t);
string mismatch;
try
{
    new Net(hidden: 32).load_pytorch(saved_sd);
    mismatch = "";
}
catch (StateDictMismatchException e)
{
    mismatch = e.Message;
}
File.Delete(saved_sd);

optimizer.zero_grad();
var loss = model.call(ones(6, 8)).pow(2).mean();
loss.backward();
optimizer.step();
Console.WriteLine(new JsonObject
{
    ["epoch"] = checkpoint["epoch"].AsInt(),
    ["tensors"] = tensors,
    ["mapped"] = mapped,
    ["mapped_corrupt_refusal"] = refusal,
    ["optimizer_state"] = state,
    ["param_group"] = group,
    ["trained_on"] = model.parameters().All(p => p.requires_grad),
    ["state_dict_roundtrip"] = roundtrip,
    ["state_dict_reloaded"] = reloaded,
    ["state_dict_mismatch"] = mismatch,
}.ToJsonString());

/// <summary>The checkpoint's network (fc1: 8 -> 16, fc2: 16 -> 4), as a user would declare it.</summary>
internal sealed class Net : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear fc1;
    private readonly TorchSharp.Modules.Linear fc2;

    public Net(int hidden = 16) : base(nameof(Net))
    {
        fc1 = nn.Linear(8, hidden);
        fc2 = nn.Linear(hidden, 4);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.call(torch.tanh(fc1.call(x)));
}
