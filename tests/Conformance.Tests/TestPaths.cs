namespace Conformance.Tests;

internal static class TestPaths
{
    /// <summary>The configuration this test assembly was built in (Release under make, Debug in an IDE).</summary>
#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif
}
