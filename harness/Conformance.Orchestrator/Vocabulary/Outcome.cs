
namespace Conformance.Orchestrator.Vocabulary;

public enum Outcome { Pass, Fail, KnownFailure, NotApplicable, Skipped }
