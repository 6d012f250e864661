using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Diagnosis;

/// <summary>One finding: what was looked at, how it stands, what was found, and the one-line fix when it is not ok.</summary>
public sealed record DoctorCheck(string Name, CheckStatus Status, string Found, string? Remedy = null);
