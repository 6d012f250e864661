using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>One run in a history: its label (file, commit, date) and each cell's outcome and ledger id.</summary>
public sealed record HistoryRun(int Index, string Label, string Source, string? Commit, string? Generated, ReportSummary Summary,
                                IReadOnlyDictionary<string, (string Outcome, string? Ledger, string Problems)> Cells);
