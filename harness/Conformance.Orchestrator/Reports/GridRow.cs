using Conformance.Orchestrator.Ledger;

namespace Conformance.Orchestrator.Reports;

public sealed record GridRow(string Producer, string Consumer, IReadOnlyList<CellResult?> Cells)
{
    public string Direction => $"{Producer} -> {Consumer}";
}
