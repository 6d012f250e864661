using System.Text.Json.Nodes;
using Conformance.Files;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// The shapes real checkpoints come in, as routes. Hugging Face's layouts (the
/// artifact is a folder, written as transformers' save_pretrained names it) and state dicts whose
/// keys carry a wrapper's prefix. Which cases cross by them is data (cases.json: each case's routes).
/// </summary>
public static class RealLayouts
{
    /// <summary>pytorch_model-0000k-of-0000n.bin shards with pytorch_model.bin.index.json ({"metadata": {"total_size"}, "weight_map"}).</summary>
    public const string HfBinSharded = "hf_bin_sharded";
    /// <summary>One model.safetensors with __metadata__ {"format": "pt"}; tied weights stored once, the alias in the metadata (safetensors.torch.save_model).</summary>
    public const string HfSafetensors = "hf_safetensors";
    /// <summary>model-0000k-of-0000n.safetensors shards with model.safetensors.index.json.</summary>
    public const string HfSafetensorsSharded = "hf_safetensors_sharded";
    /// <summary>A pickled state dict whose keys start with "module." (saved from DataParallel / DistributedDataParallel).</summary>
    public const string PrefixModule = "prefix_module";
    /// <summary>A pickled state dict whose keys start with "_orig_mod." (saved from a torch.compile'd model).</summary>
    public const string PrefixOrigMod = "prefix_orig_mod";

    /// <summary>The load mode that strips the route's prefix before a strict load; "default" is the plain load, which must refuse the file.</summary>
    public const string StripPrefix = "strip_prefix";

    /// <summary>The Hugging Face layouts (cases.json: a route whose artifact is a <c>.hf</c> folder), in the file's order.</summary>
    public static readonly IReadOnlyList<string> HfRoutes = Routes().Where(r => r.Value?["extension"]?.GetValue<string>() == HfExtension).Select(r => r.Key).ToList();

    /// <summary>The extension of a Hugging Face folder; optimizer_state's folder (<c>.optim</c>) is another kind.</summary>
    public const string HfExtension = ".hf";

    /// <summary>The routes whose artifact is a folder (cases.json: a route's <c>folder</c>): the Hugging Face layouts and optimizer_state.</summary>
    public static readonly IReadOnlyList<string> FolderRoutes = Routes().Where(r => r.Value?["folder"]?.GetValue<bool>() == true).Select(r => r.Key).ToList();

    /// <summary>The routes whose producer puts a wrapper's prefix before every key (cases.json: <c>key_prefix</c>).</summary>
    public static readonly IReadOnlyList<string> PrefixRoutes = Routes().Where(r => r.Value?["key_prefix"] is not null).Select(r => r.Key).ToList();

    /// <summary>Routes whose artifact is a folder.</summary>
    public static bool IsFolder(string route) => FolderRoutes.Contains(route);

    /// <summary>The prefix a route's producer puts before every key, or null.</summary>
    public static string? KeyPrefix(string route) => Routes().FirstOrDefault(r => r.Key == route).Value?["key_prefix"]?.GetValue<string>();

    /// <summary>What saves files with the route's prefix (DataParallel/DistributedDataParallel, torch.compile), or null.</summary>
    public static string? PrefixSource(string route) => Routes().FirstOrDefault(r => r.Key == route).Value?["prefix_source"]?.GetValue<string>();

    private static IEnumerable<KeyValuePair<string, JsonNode?>> Routes() => CatalogueFiles.Entries(CatalogueFiles.Read("cases.json")["routes"]);
}
