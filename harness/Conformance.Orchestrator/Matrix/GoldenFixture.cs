using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// A golden artifact kept in the repository, one folder per producer version:
/// <c>fixtures/pytorch-1.13/lenet.pickle.pt</c> with its producer's observation beside it
/// (<c>lenet.pickle.json</c>). Consumers are judged against it exactly as against a live producer,
/// so a consumer upgrade is tested against what older producers really wrote, even where that
/// producer version is no longer installed. Its producer id in cell names is <c>pytorch-1.13@golden</c>.
/// </summary>
public sealed record GoldenFixture(string Producer, string Case, string Route, string ArtifactPath)
{
    public const string Suffix = "@golden";

    public string ProducerId => Producer + Suffix;

    public string ObservationPath => Path.ChangeExtension(ArtifactPath, ".json");

    public JsonNode ExpectedNode()
    {
        var node = JsonNode.Parse(File.ReadAllText(ObservationPath))
                   ?? throw new InvalidDataException($"{ObservationPath}: empty observation");
        return node["observation"] ?? throw new InvalidDataException($"{ObservationPath}: no \"observation\"");
    }

    public Observation Expected() => Observation.FromJson(ExpectedNode());

    public static bool IsGolden(string producer) => producer.EndsWith(Suffix, StringComparison.Ordinal);
}
