using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>A cell that passes in both runs but whose outputs moved closer to, or past half of, its tolerance.</summary>
public sealed record ToleranceDrift(string Cell, double OldMaxAbs, double NewMaxAbs, double? Atol, string Why);
