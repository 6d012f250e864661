using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>A cell whose outcome changed at least once: when it last changed, from what to what, and every run's outcome.</summary>
public sealed record CellHistory(string Cell, int LastChangedRun, string? From, string? To, IReadOnlyList<string?> Outcomes, string Problems);
