using System.Reflection;

namespace Conformance.Orchestrator.Diagnosis;

public enum CheckStatus { Ok, Warn, Fail }
