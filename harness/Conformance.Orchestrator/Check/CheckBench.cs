using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Check;

/// <summary>
/// How long `conformance check` takes a user on one small state dict, warm: the full answer (every runtime)
/// and `--dotnet` (TorchSharp and the codec only), each the median wall time of <c>runs</c> runs of the CLI as
/// a user starts it, from a folder outside the checkout, after one run that warms the page cache.
/// </summary>
public static class CheckBench
{
    public static readonly (string Name, string Args, double LimitS)[] Modes = [("full", "", 4.0), ("dotnet", "--dotnet", 1.5)];

    public static JsonObject Run(string cliDll, string sample, int runs, Action<string> log)
    {
        var here = Path.Combine(Path.GetTempPath(), $"conformance-check-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(here);
        try
        {
            var file = Path.Combine(here, Path.GetFileName(sample));
            File.Copy(sample, file, overwrite: true);
            var result = new JsonObject { ["sample"] = sample, ["bytes"] = new FileInfo(sample).Length, ["runs"] = runs, ["cores"] = Environment.ProcessorCount };
            foreach (var (name, args, limit) in Modes)
            {
                Once(cliDll, here, file, args); // warm
                var times = Enumerable.Range(0, runs).Select(_ => Once(cliDll, here, file, args)).ToList();
                var sorted = times.Order().ToList();
                var median = sorted[sorted.Count / 2];
                log($"check {name}: median {median:0.00} s of {string.Join(", ", times.Select(t => t.ToString("0.00", CultureInfo.InvariantCulture)))} (limit {limit} s)");
                result[name] = new JsonObject
                {
                    ["median_s"] = Math.Round(median, 2), ["limit_s"] = limit, ["within"] = median <= limit,
                    ["all_s"] = new JsonArray(times.Select(t => (JsonNode)Math.Round(t, 2)).ToArray()),
                };
            }
            return result;
        }
        finally { Directory.Delete(here, recursive: true); }
    }

    private static double Once(string cliDll, string cwd, string file, string args)
    {
        var psi = new ProcessStartInfo("dotnet", $"\"{cliDll}\" check \"{Path.GetFileName(file)}\" {args}")
        {
            WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        var seconds = clock.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException($"check {args} on {file} exited {p.ExitCode}: {stderr.Result}{stdout.Result}");
        return seconds;
    }

    public static string Markdown(JsonObject bench)
    {
        var sb = new StringBuilder();
        sb.AppendLine().AppendLine("## `conformance check`, warm").AppendLine();
        sb.AppendLine($"One small state dict (`{Path.GetFileName(bench["sample"]!.GetValue<string>())}`, {bench["bytes"]} bytes), checked from a folder outside the checkout; the median of {bench["runs"]} runs after one warm-up, on {bench["cores"]} cores.").AppendLine();
        sb.AppendLine("| answer | median | limit | runs (s) |").AppendLine("|---|---|---|---|");
        foreach (var (name, args, _) in Modes)
        {
            var m = bench[name]!;
            sb.AppendLine($"| {(args.Length == 0 ? "full (every runtime)" : "`--dotnet` (TorchSharp, the codec)")} | {(m["within"]!.GetValue<bool>() ? "" : "**")}{m["median_s"]} s{(m["within"]!.GetValue<bool>() ? "" : "**")} | {m["limit_s"]} s | {string.Join(", ", m["all_s"]!.AsArray().Select(t => t!.ToString()))} |");
        }
        return sb.ToString();
    }
}
