using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>A fact about the run's surroundings that differs: a runtime's version, a hello field, the machine, the selection.</summary>
public sealed record EnvironmentChange(string Subject, string? Old, string? New);
