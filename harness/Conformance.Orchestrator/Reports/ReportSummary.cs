using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>A report's outcome counts, as it states them (or counted from its results when it has no summary).</summary>
public sealed record ReportSummary(int Pass, int KnownFailure, int Fail, int Skipped, int NotApplicable, string? Line);
