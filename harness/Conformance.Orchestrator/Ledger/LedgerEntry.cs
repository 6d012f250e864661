using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// A declared known failure. <see cref="Cells"/> names its cells: a cell matches when one block
/// (<see cref="CellSelector"/>) matches each of its five parts. A cell it matches is a known failure only when every one
/// of the cell's problems is one of <see cref="Problems"/>; anything else in that cell stays a failure.
/// <see cref="Awaits"/>: what must exist before any cell it names can run (a fixture set that only a
/// GPU machine makes): while no cell matches, the entry is dormant instead of an error; once one
/// does, every other check holds as for any entry. <see cref="CpuOnly"/>: the entry declares no cell
/// where a side ran on a device (a finding a device's wider tolerance absorbs, said in its reason).
/// </summary>
public sealed record LedgerEntry(
    string Id,
    IReadOnlyList<CellSelector> Cells,
    IReadOnlyList<ExpectedProblem> Problems,
    string Reason,
    string Link,
    DateOnly Added,
    DateOnly? Expires,
    int MaxCells,
    string? Awaits = null,
    bool CpuOnly = false,
    string? Library = null)
{
    /// <summary>
    /// The cell's name, or for a cell with a device-suffixed runtime its CPU twin's
    /// (<c>pytorch-2.11-cuda@golden-&gt;torchsharp-0.107</c> as <c>pytorch-2.11@golden-&gt;torchsharp-0.107</c>):
    /// a declared file-format failure does not depend on where the tensors lived. An entry may
    /// still name a device's cells alone (<c>pytorch-*-cuda-&gt;*</c>), and such an entry takes a
    /// device cell from the others (<see cref="Ledger.EntriesFor"/>): where a device behaves otherwise
    /// (a file the CPU refuses and CUDA reads wrong), that finding is its own entry.
    /// </summary>
    public bool Matches(Cell cell) => BlockFor(cell) is not null;

    /// <summary>The index in <see cref="Cells"/> of the first block that declares <paramref name="cell"/> (see <see cref="Matches"/>), or null.</summary>
    public int? BlockFor(Cell cell)
    {
        if (CpuOnly && OnDevice(cell)) return null;
        var plain = WithoutDevices(cell);
        for (int i = 0; i < Cells.Count; i++)
            if (Cells[i].Matches(cell) || (plain is not null && Cells[i].Matches(plain))) return i;
        return null;
    }

    /// <summary>A block names a device's runtimes (<c>-cuda</c>): the entry declares what happens there, apart from the CPU.</summary>
    public bool NamesDevice => Cells.Any(c => c.NamesDevice);

    public static bool OnDevice(Cell cell) =>
        Runtimes.Runtime.WithoutDevice(cell.Producer) != cell.Producer || Runtimes.Runtime.WithoutDevice(cell.Consumer) != cell.Consumer;

    private static Cell? WithoutDevices(Cell cell)
    {
        var (p, c) = (Runtimes.Runtime.WithoutDevice(cell.Producer), Runtimes.Runtime.WithoutDevice(cell.Consumer));
        return p == cell.Producer && c == cell.Consumer ? null : cell with { Producer = p, Consumer = c };
    }

    /// <summary>The entry as messages name it: its id and, for an entry of several blocks, which one (<c>"x" (cells[1])</c>).</summary>
    public string Named(Cell cell) => BlockFor(cell) is { } i && Cells.Count > 1 ? $"\"{Id}\" (cells[{i}])" : $"\"{Id}\"";
}
