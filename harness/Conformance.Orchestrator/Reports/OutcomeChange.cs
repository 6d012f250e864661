using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// One cell whose outcome differs between the two runs. Old is null for a new cell, New for a vanished one.
/// Problems: the problem codes and subjects of the run it ended in ("bytes: fc1.weight"), the message's first line when it has none.
/// </summary>
public sealed record OutcomeChange(string Cell, string? Old, string? New, string Message, string Problems = "");
