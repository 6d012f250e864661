using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Diagnosis;

/// <summary>Every finding of one examination, in the order a person would fix them.</summary>
public sealed record DoctorReport(IReadOnlyList<DoctorCheck> Checks)
{
    public bool Healthy => Checks.All(c => c.Status != CheckStatus.Fail);

    public DoctorCheck? this[string name] => Checks.FirstOrDefault(c => c.Name == name);

    /// <summary>A table: status, check, what was found; each problem's remedy on the line below it.</summary>
    public string Text()
    {
        var width = Checks.Count == 0 ? 5 : Checks.Max(c => c.Name.Length);
        var sb = new StringBuilder();
        foreach (var c in Checks)
        {
            sb.Append(Word(c.Status).PadRight(6)).Append(c.Name.PadRight(width + 2)).AppendLine(c.Found);
            if (c.Remedy is not null && c.Status != CheckStatus.Ok)
                sb.Append(new string(' ', 6 + width + 2)).Append("-> ").AppendLine(c.Remedy);
        }
        int Count(CheckStatus s) => Checks.Count(c => c.Status == s);
        sb.AppendLine($"doctor: {Count(CheckStatus.Ok)} ok, {Count(CheckStatus.Warn)} warnings, {Count(CheckStatus.Fail)} failures");
        return sb.ToString();
    }

    private static string Word(CheckStatus s) => s switch { CheckStatus.Ok => "ok", CheckStatus.Warn => "warn", _ => "FAIL" };
}
