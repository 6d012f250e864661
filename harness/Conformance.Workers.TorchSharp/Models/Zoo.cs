using Conformance.Protocol;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp.Models;

// C# twins of python/torchconformance/models.py, in the same order, with the same field names
// (the field names are the state_dict keys) and the same comments. Zoo.Builders, at the end, names
// each model the catalogue (python/torchconformance/catalogue/cases.json) refers to; models.BUILDERS
// is its Python twin.

/// <summary>The dtype table (catalogue/dtypes.json): wire name -> libtorch's ScalarType member name.</summary>
public static class DtypeTable
{
    /// <summary>Each dtype's wire name and ScalarType member (c10 spelling), in the table's order.</summary>
    public static IReadOnlyList<(string Name, string Member)> Members { get; } =
        CatalogueFiles.Read("dtypes.json")["dtypes"]!.AsArray()
            .Select(d => (d!["name"]!.GetValue<string>(), d["scalar_type"]!.GetValue<string>())).ToList();

    /// <summary>The dtypes this TorchSharp's ScalarType has, by wire name.</summary>
    public static IReadOnlyList<(string Name, ScalarType Type)> Present { get; } =
        Members.Select(d => (d.Name, Ok: Enum.TryParse<ScalarType>(d.Member, out var t), Type: t)).Where(d => d.Ok).Select(d => (d.Name, d.Type)).ToList();

    /// <summary>The ScalarType member name of a wire name.</summary>
    public static string Member(string name) =>
        Members.FirstOrDefault(d => d.Name == name).Member ?? throw new KeyNotFoundException($"dtypes.json has no dtype '{name}'");

    /// <summary>A case's <c>dtypes</c> list in the catalogue (all_dtypes, new_dtypes).</summary>
    public static IReadOnlyList<string> OfCase(string caseName) =>
        CatalogueFiles.Read("cases.json")["cases"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == caseName)!["dtypes"]!.AsArray()
            .Select(d => d!.GetValue<string>()).ToList();
}

/// <summary>
/// The seed's LeNet with its last layer named <c>head</c> and <c>classes</c> wide, for the loads users
/// really do: ("fc4", 10) is a warm start (fc3 unexpected, fc4 missing), ("fc3", 11) a shape
/// mismatch that must be refused naming fc3 and both shapes.
/// </summary>
public sealed class LeNetWithHead : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1 = Conv2d(3, 6, 5);
    private readonly MaxPool2d pool = MaxPool2d(2, 2);
    private readonly Conv2d conv2 = Conv2d(6, 16, 5);
    private readonly Linear fc1 = Linear(16 * 5 * 5, 120);
    private readonly Linear fc2 = Linear(120, 84);
    private readonly Linear head;

    public LeNetWithHead(string headName, long classes) : base(nameof(LeNetWithHead))
    {
        head = Linear(84, classes);
        RegisterComponents();
        // Registered after the fields so the key order matches the Python twin; RegisterComponents
        // would otherwise name it "head".
        _internal_submodules.Remove("head");
        register_module(headName, head);
    }

    public override Tensor forward(Tensor x)
    {
        x = pool.call(functional.relu(conv1.call(x)));
        x = pool.call(functional.relu(conv2.call(x)));
        x = x.view(-1, 16 * 5 * 5);
        return head.call(functional.relu(fc2.call(functional.relu(fc1.call(x)))));
    }
}

/// <summary>An MLP with Dropout: eval() must switch the dropout off.</summary>
public sealed class MlpDropout : Module<Tensor, Tensor>
{
    private readonly Linear fc1 = Linear(20, 32);
    private readonly Dropout drop = Dropout(0.5);
    private readonly Linear fc2 = Linear(32, 10);

    public MlpDropout() : base(nameof(MlpDropout)) => RegisterComponents();

    public override Tensor forward(Tensor x) => fc2.call(drop.call(functional.relu(fc1.call(x))));
}

/// <summary>A CNN with BatchNorm2d: training moves running_mean, running_var and num_batches_tracked.</summary>
public sealed class CnnBatchNorm : Module<Tensor, Tensor>
{
    private readonly Conv2d conv = Conv2d(3, 8, 3, padding: 1);
    private readonly BatchNorm2d bn = BatchNorm2d(8);
    private readonly Linear fc = Linear(8 * 8 * 8, 10);

    public CnnBatchNorm() : base(nameof(CnnBatchNorm)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        x = functional.max_pool2d(functional.relu(bn.call(conv.call(x))), 2);
        return fc.call(torch.flatten(x, 1));
    }
}

/// <summary>BatchNorm1d and LayerNorm with GELU.</summary>
public sealed class NormGelu : Module<Tensor, Tensor>
{
    private readonly Linear fc1 = Linear(16, 32);
    private readonly BatchNorm1d bn = BatchNorm1d(32);
    private readonly LayerNorm ln = LayerNorm(32);
    private readonly Linear fc2 = Linear(32, 4);

    public NormGelu() : base(nameof(NormGelu)) => RegisterComponents();

    public override Tensor forward(Tensor x) => fc2.call(functional.gelu(ln.call(bn.call(fc1.call(x)))));
}

/// <summary>Embedding, then a 2-layer bidirectional LSTM, then Linear on the last step.</summary>
public sealed class EmbeddingBiLstm : Module<Tensor, Tensor>
{
    private readonly Embedding emb = Embedding(50, 16);
    private readonly LSTM lstm = LSTM(16, 24, numLayers: 2, batchFirst: true, bidirectional: true);
    private readonly Linear fc = Linear(48, 5);

    public EmbeddingBiLstm() : base(nameof(EmbeddingBiLstm)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        var (output, _, _) = lstm.call(emb.call(x));
        return fc.call(output.select(1, -1));
    }
}

/// <summary>A GRU, then Linear on the last step.</summary>
public sealed class GruNet : Module<Tensor, Tensor>
{
    private readonly GRU gru = GRU(10, 20, batchFirst: true);
    private readonly Linear fc = Linear(20, 3);

    public GruNet() : base(nameof(GruNet)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        var (output, _) = gru.call(x);
        return fc.call(output.select(1, -1));
    }
}

/// <summary>One TransformerEncoderLayer: its attention keeps q, k, v packed in self_attn.in_proj_weight.</summary>
public sealed class TransformerEncoder : Module<Tensor, Tensor>
{
    private readonly TransformerEncoderLayer layer = TransformerEncoderLayer(d_model: 16, nhead: 4, dim_feedforward: 32, dropout: 0.1);

    public TransformerEncoder() : base(nameof(TransformerEncoder)) => RegisterComponents();

    public override Tensor forward(Tensor x) => layer.call(x);
}

/// <summary>Nesting through Sequential, ModuleList and ModuleDict: keys like seq.2.weight, blocks.1.bias, heads.b.weight.</summary>
public sealed class Nested : Module<Tensor, Tensor>
{
    private readonly Sequential seq = Sequential(Linear(8, 16), ReLU(), Linear(16, 16));
    private readonly ModuleList<Linear> blocks = ModuleList(Linear(16, 16), Linear(16, 16));
    private readonly ModuleDict<Linear> heads = ModuleDict(("a", Linear(16, 2)), ("b", Linear(16, 3)));

    public Nested() : base(nameof(Nested)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        x = seq.call(x);
        foreach (var block in blocks) x = functional.relu(block.call(x));
        return torch.cat([heads["a"].call(x), heads["b"].call(x)], dim: 1);
    }
}

/// <summary>An embedding and an output projection sharing one Parameter, as language models do.</summary>
public sealed class TiedWeights : Module<Tensor, Tensor>
{
    private readonly Embedding emb = Embedding(30, 12);
    private readonly Linear proj = Linear(12, 30, hasBias: false);

    public TiedWeights() : base(nameof(TiedWeights))
    {
        proj.weight = emb.weight!;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => proj.call(emb.call(x)).mean([1]);
}

/// <summary>A non-persistent buffer, which must not appear in the state dict, beside a persistent one.</summary>
public sealed class NonPersistentBuffer : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(6, 4);

    public NonPersistentBuffer() : base(nameof(NonPersistentBuffer))
    {
        RegisterComponents();
        register_buffer("offset", torch.full(4, 0.5f));
        register_buffer("scale", torch.full(4, 2.0f), persistent: false);
    }

    public override Tensor forward(Tensor x) => fc.call(x) * get_buffer("scale")! + get_buffer("offset")!;
}

/// <summary>A buffer of each dtype, plus a 0-dim and a 0-size tensor.</summary>
public sealed class AllDtypes : Module<Tensor, Tensor>
{
    /// <summary>Every dtype both sides have, by wire name: the all_dtypes case's list in the catalogue (python: models.ALL_DTYPES).</summary>
    public static readonly (string Name, ScalarType Type)[] Dtypes =
        DtypeTable.OfCase("all_dtypes").Select(n => (n, Enum.Parse<ScalarType>(DtypeTable.Member(n)))).ToArray();

    private readonly Linear fc = Linear(4, 3);

    public AllDtypes() : base(nameof(AllDtypes))
    {
        RegisterComponents();
        foreach (var (name, type) in Dtypes)
        {
            var values = torch.arange(6).reshape(2, 3);
            register_buffer($"b_{name}", type == ScalarType.Bool ? (values % 2).to(type) : values.to(type));
        }
        register_buffer("scalar", torch.tensor(3.5f));
        register_buffer("empty", torch.zeros(0, 3));
    }

    public override Tensor forward(Tensor x) => fc.call(x);
}

/// <summary>A buffer of each dtype newer PyTorch has and older versions lack, beside a Linear for outputs.</summary>
public sealed class NewDtypes : Module<Tensor, Tensor>
{
    /// <summary>
    /// The dtypes newer PyTorch has and older versions lack (the new_dtypes case's list in the
    /// catalogue; python: models.NEW_DTYPES), by wire name, with the ScalarType member a TorchSharp
    /// that has them would call them (libtorch's c10::ScalarType names, from dtypes.json). Looked up
    /// by name: TorchSharp 0.107's ScalarType has none of them.
    /// </summary>
    public static readonly (string Name, string Member)[] Dtypes =
        DtypeTable.OfCase("new_dtypes").Select(n => (n, DtypeTable.Member(n))).ToArray();

    /// <summary>The dtypes this TorchSharp's ScalarType has.</summary>
    public static IReadOnlyList<(string Name, ScalarType Type)> Present { get; } =
        Dtypes.Select(d => (d.Name, Ok: Enum.TryParse<ScalarType>(d.Member, out var t), Type: t)).Where(d => d.Ok).Select(d => (d.Name, d.Type)).ToList();

    /// <summary>The dtypes this TorchSharp's ScalarType lacks, by wire name.</summary>
    public static IReadOnlyList<string> Missing { get; } = Dtypes.Select(d => d.Name).Except(Present.Select(p => p.Name)).ToList();

    private readonly Linear fc = Linear(4, 3);

    // Built with the dtypes this TorchSharp has (none in 0.107): as a consumer it still loads the
    // file, and whatever the loader says about the others is the finding.
    public NewDtypes() : base(nameof(NewDtypes))
    {
        RegisterComponents();
        foreach (var (name, type) in Present)
            // 0..5 is exact in every one of them (and stays exact after perturb's +1).
            register_buffer($"b_{name}", torch.arange(6).reshape(2, 3).to(type));
    }

    public override Tensor forward(Tensor x) => fc.call(x);
}

/// <summary>
/// The layouts that trip writers and readers: a transposed (non-contiguous) parameter, and two
/// slices of one storage, the second at an offset.
/// </summary>
public sealed class Layouts : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(4, 3);

    public Layouts() : base(nameof(Layouts))
    {
        RegisterComponents();
        register_parameter("wt", new Parameter((torch.arange(12, dtype: ScalarType.Float32) / 10).reshape(3, 4).t()));
        var @base = torch.arange(10, dtype: ScalarType.Float32);
        register_buffer("head", @base[..4]);
        register_buffer("tail", @base[4..]);
    }

    public override Tensor forward(Tensor x) =>
        fc.call(x) + x.matmul(get_parameter("wt")!) + get_buffer("head")!.sum() + get_buffer("tail")!.sum();
}

/// <summary>
/// A child holding only buffers: the root keeps none, so both sides list keys in one order
/// (TorchSharp lists a module's own buffers after its children, PyTorch before).
/// </summary>
public sealed class Buffers : nn.Module
{
    public Buffers(params (string Name, Tensor Tensor)[] buffers) : base(nameof(Buffers))
    {
        foreach (var (name, t) in buffers) register_buffer(name, t);
    }

    public Tensor this[string name] => get_buffer(name)!;
}

/// <summary>
/// Three buffers viewing one storage of 24 floats, as SAM's vit_b checkpoint has them
/// (TorchSharp.PyBridge#18): a contiguous at offset 0, b a column slice (non-contiguous, offset 7),
/// c a transpose (non-contiguous, offset 18).
/// </summary>
public sealed class StorageViews : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(4, 3);
    private readonly Buffers views;

    public StorageViews() : base(nameof(StorageViews))
    {
        var @base = torch.arange(24, dtype: ScalarType.Float32) / 8;
        views = new Buffers(("a", @base[0..6]), ("b", @base[6..18].view(3, 4)[TensorIndex.Colon, TensorIndex.Slice(1, 3)]), ("c", @base[18..24].view(2, 3).t()));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc.call(x) + views["a"].sum() + (views["b"] * views["c"]).sum();
}

/// <summary>
/// Three contiguous buffers viewing one storage of 32 floats at offsets 0, 4 and 20 (12..19 and
/// 26..31 belong to none): offsets alone, with no non-contiguous view to stop a reader first.
/// </summary>
public sealed class StorageOffsets : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(4, 3);
    private readonly Buffers views;

    public StorageOffsets() : base(nameof(StorageOffsets))
    {
        var @base = torch.arange(32, dtype: ScalarType.Float32) / 8;
        views = new Buffers(("a", @base[0..4]), ("b", @base[4..12].view(2, 4)), ("c", @base[20..26]));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc.call(x) + views["a"].sum() + views["b"].sum() * 2 + views["c"].sum() * 3;
}

/// <summary>
/// Buffers whose values exist only through a bit libtorch keeps beside the storage: c a conjugate
/// view of a complex64 tensor, n a negative view of a float32 one, cn the conjugate of a complex64
/// view of a float32 storage. A writer that saves the raw storage without the bit, or a reader that
/// drops the bit, loads other values; the forward reads every buffer's resolved values (each with its
/// own weight, so two dropped bits cannot cancel) and its outputs change too.
/// </summary>
public sealed class ConjNeg : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(4, 3);
    private readonly Buffers views;

    public ConjNeg() : base(nameof(ConjNeg))
    {
        var re = torch.arange(6, dtype: ScalarType.Float32) / 2 - 1;
        var im = torch.arange(6, dtype: ScalarType.Float32) / 4 + 0.5;  // no zero imaginary part: conj changes every element
        var floats = torch.arange(6, dtype: ScalarType.Float32) / 2 + 0.25;  // n = -floats is never 0, before or after perturb's +1
        var pairs = (torch.arange(12, dtype: ScalarType.Float32) / 8 + 0.125).reshape(6, 2);
        views = new Buffers(
            ("c", torch.complex(re, im).reshape(2, 3).conj()),
            // TorchSharp has no negative view (no _neg_view): n is a plain negated tensor, the same
            // values with no neg bit, so this side's files carry none to judge.
            ("n", -floats.reshape(2, 3)),
            ("cn", torch.view_as_complex(pairs).conj()));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var c = views["c"].resolve_conj();
        var n = views["n"].resolve_neg();
        var cn = views["cn"].resolve_conj();
        return fc.call(x) + c.real.sum() + 2 * c.imag.sum() + 3 * n.sum() + 5 * cn.real.sum() + 7 * cn.imag.sum();
    }
}

/// <summary>Quantized buffers beside a Linear: per-tensor qint8, per-channel qint8 (axis 0), per-tensor quint8.</summary>
public sealed class Quantized : Module<Tensor, Tensor>
{
    private readonly Linear fc = Linear(4, 3);
    private readonly Buffers q;

    public Quantized() : base(nameof(Quantized))
    {
        var x = torch.tensor(new float[] { 0.0f, 0.5f, 1.0f, -1.5f, 2.25f, 3.0f }).reshape(2, 3);
        q = new Buffers(
            ("per_tensor", torch.quantize_per_tensor(x, 0.25, 3, ScalarType.QInt8)),
            ("per_channel", torch.quantize_per_channel(x, torch.tensor(new double[] { 0.25, 0.5 }), torch.tensor(new long[] { 1, -2 }), 0, ScalarType.QInt8)),
            ("quint8", torch.quantize_per_tensor(x, 0.5, 10, ScalarType.QUInt8)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        fc.call(x) + q["per_tensor"].dequantize().sum() + q["per_channel"].dequantize().sum() + q["quint8"].dequantize().sum();
}

/// <summary>The small model every training-checkpoint case trains: two Linear layers around tanh.</summary>
public sealed class CheckpointNet : Module<Tensor, Tensor>
{
    private readonly Linear fc1 = Linear(8, 16);
    private readonly Linear fc2 = Linear(16, 4);

    public CheckpointNet() : base(nameof(CheckpointNet)) => RegisterComponents();

    public override Tensor forward(Tensor x) => fc2.call(torch.tanh(fc1.call(x)));
}

/// <summary>
/// The model builders the catalogue names (a case's <c>model</c>, its <c>variants</c>, the checkpoint
/// model); twin: <c>BUILDERS</c> in python/torchconformance/models.py, same names, same order.
/// </summary>
public static class Zoo
{
    public static readonly IReadOnlyDictionary<string, Func<Module<Tensor, Tensor>>> Builders = new Dictionary<string, Func<Module<Tensor, Tensor>>>
    {
        ["lenet"] = () => new TheModelClass(),
        ["lenet_fc4"] = () => new LeNetWithHead("fc4", 10),
        ["lenet_fc3_11_classes"] = () => new LeNetWithHead("fc3", 11),
        ["mlp_dropout"] = () => new MlpDropout(),
        ["cnn_batchnorm"] = () => new CnnBatchNorm(),
        ["norm_gelu"] = () => new NormGelu(),
        ["embedding_bilstm"] = () => new EmbeddingBiLstm(),
        ["gru"] = () => new GruNet(),
        ["transformer_encoder"] = () => new TransformerEncoder(),
        ["nested"] = () => new Nested(),
        ["tied_weights"] = () => new TiedWeights(),
        ["nonpersistent_buffer"] = () => new NonPersistentBuffer(),
        ["all_dtypes"] = () => new AllDtypes(),
        ["layouts"] = () => new Layouts(),
        ["new_dtypes"] = () => new NewDtypes(),
        // Several views of one storage; quantized buffers.
        ["storage_views"] = () => new StorageViews(),
        ["storage_offsets"] = () => new StorageOffsets(),
        ["quantized"] = () => new Quantized(),
        // Conjugate and negative views (bits beside the storage).
        ["conj_neg"] = () => new ConjNeg(),
        // torchvision's resnet18 against TorchSharp's TorchVision resnet18, built from the seed, no download.
        ["resnet18"] = () => torchvision.models.resnet18(num_classes: 10),
        ["checkpoint_net"] = () => new CheckpointNet(),
    };

    public static Module<Tensor, Tensor> Build(string name) =>
        Builders.TryGetValue(name, out var build)
            ? build()
            : throw new KeyNotFoundException($"no model builder '{name}' (this runtime has: {string.Join(", ", Builders.Keys)})");
}
