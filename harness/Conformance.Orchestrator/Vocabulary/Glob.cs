using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>
/// Cell patterns of the CLI's filters: <c>*</c> (any run of characters but <c>/</c>), <c>?</c> (one such), <c>{a,b}</c>;
/// with <c>crossSegments</c> <c>**</c> also crosses <c>/</c>. The ledger names cells with its CellSelector instead.
/// </summary>
public static class Glob
{
    public static Regex ToRegex(string glob, bool crossSegments = false)
    {
        if (!crossSegments && glob.Contains("**", StringComparison.Ordinal))
            throw new FormatException($"\"**\" in cell pattern \"{glob}\": this pattern names each segment (case/route/producer->consumer/mode)");
        var sb = new StringBuilder("^");
        int depth = 0;
        for (int i = 0; i < glob.Length; i++)
        {
            var ch = glob[i];
            switch (ch)
            {
                case '*' when crossSegments && i + 1 < glob.Length && glob[i + 1] == '*': sb.Append(".*"); i++; break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '{': depth++; sb.Append("(?:"); break;
                case '}' when depth > 0: depth--; sb.Append(')'); break;
                case ',' when depth > 0: sb.Append('|'); break;
                default: sb.Append(Regex.Escape(ch.ToString())); break;
            }
        }
        if (depth != 0) throw new FormatException($"unbalanced braces in cell pattern \"{glob}\"");
        return new Regex(sb.Append('$').ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
    }

}
