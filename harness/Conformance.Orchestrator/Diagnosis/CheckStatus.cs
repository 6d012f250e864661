using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Diagnosis;

public enum CheckStatus { Ok, Warn, Fail }
