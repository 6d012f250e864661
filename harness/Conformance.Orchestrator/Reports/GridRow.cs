using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

public sealed record GridRow(string Producer, string Consumer, IReadOnlyList<CellResult?> Cells)
{
    public string Direction => $"{Producer} -> {Consumer}";
}
