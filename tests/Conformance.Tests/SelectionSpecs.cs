using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>--cells, --case, --route, --runtime, --mode and --shard select what they say, and `ledger --fix` rewrites only from a complete run.</summary>
[Trait("Category", "unit")]
public sealed class SelectionSpecs
{
    private static readonly IReadOnlyList<Cell> Plan = Planner.Plan(
        [Runtime.Missing("pytorch-1.13", "t"), Runtime.Missing("pytorch-2.6", "t"), Runtime.Missing("torchsharp-0.107", "t"), Runtime.Missing("torchsharp-0.108", "t")]);

    [Fact]
    public void A_cell_glob_filters_and_double_star_crosses_segments()
    {
        var picked = new Selection(Cells: "lenet/pickle/pytorch-2.6->torchsharp-*/default").Apply(Plan);
        // pickle is a state-dict route: each TorchSharp runtime meets it once per .NET library.
        Assert.Equal(["lenet/pickle/pytorch-2.6->torchsharp-0.107+pybridge/default", "lenet/pickle/pytorch-2.6->torchsharp-0.107+torchcheckpoints/default",
                      "lenet/pickle/pytorch-2.6->torchsharp-0.108+pybridge/default", "lenet/pickle/pytorch-2.6->torchsharp-0.108+torchcheckpoints/default"], picked.Select(c => c.Name));
        Assert.Empty(new Selection(Cells: "lenet/*").Apply(Plan));
        Assert.Equal(Plan.Count(c => c.Case == "lenet"), new Selection(Cells: "lenet/**").Apply(Plan).Count);
    }

    [Fact]
    public void Case_route_and_mode_lists_may_hold_braces()
    {
        var picked = new Selection(Case: "gru,lenet", Route: "torchscript_{script,trace}", Mode: "default").Apply(Plan);
        Assert.NotEmpty(picked);
        Assert.All(picked, c => Assert.True(c.Case is "gru" or "lenet" && c.Route is "torchscript_script" or "torchscript_trace" && c.Mode == "default", c.Name));
        Assert.Equal(["a", "b_{c,d}", "e"], Selection.SplitList("a, b_{c,d} ,e"));
    }

    [Fact]
    public void A_runtime_selection_keeps_cells_whose_producer_and_consumer_both_match()
    {
        var before = new Selection(Runtime: "pytorch-*,torchsharp-0.107").Apply(Plan);
        Assert.NotEmpty(before);
        Assert.DoesNotContain(before, c => c.Producer.Contains("0.108") || c.Consumer.Contains("0.108"));
        Assert.Contains(before, c => c.Producer == "torchsharp-0.107" && c.Consumer == "pytorch-2.6");
    }

    [Fact]
    public void Shards_split_by_artifact_and_together_are_the_whole_plan_once()
    {
        var shards = Enumerable.Range(1, 3).Select(i => new Selection(Shard: $"{i}/3").Apply(Plan)).ToList();
        Assert.Equal(Plan.Select(c => c.Name).Order(), shards.SelectMany(s => s).Select(c => c.Name).Order());
        var artifacts = shards.Select(s => s.Select(c => c.ArtifactKey).ToHashSet()).ToList();
        Assert.Empty(artifacts[0].Intersect(artifacts[1]));
        Assert.All(shards, s => Assert.InRange(s.Count, Plan.Count / 5, Plan.Count / 2));
        Assert.False(new Selection(Shard: "1/3").Complete);
        Assert.True(Selection.All.Complete);
    }

    [Theory]
    [InlineData("0/2")]
    [InlineData("3/2")]
    [InlineData("x")]
    public void A_bad_shard_or_glob_is_refused_before_anything_runs(string shard)
    {
        Assert.Throws<FormatException>(() => new Selection(Shard: shard).Validate());
        Assert.Throws<FormatException>(() => new Selection(Route: "torchscript_{script").Validate());
    }

    private static string LedgerFile(string dir) 
    {
        var path = Path.Combine(dir, "known-failures.json");
        File.WriteAllText(path, """
        {"entries":[
          {"id":"kept","cells":[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["mmap"]}],"problems":[{"code":"bytes","message":"a"},{"code":"outputs","message":"o"}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":5},
          {"id":"dead","cells":[{"cases":["gru"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["mmap"]}],"problems":[{"code":"bytes","message":"a"}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}
        ]}
        """);
        return path;
    }

    private static JsonNode Report(bool complete) => JsonNode.Parse($$$"""
        {"schema":2,"complete":{{{(complete ? "true" : "false")}}},"results":[
          {"cell":"lenet/pickle/a->b/mmap","outcome":"known_failure","message":"a1","problems":[{"code":"bytes","subject":"w","message":"a1"}],"known_failure":{"id":"kept"}},
          {"cell":"lenet/pickle/c->b/mmap","outcome":"known_failure","message":"a2","problems":[{"code":"bytes","subject":"w","message":"a2"}],"known_failure":{"id":"kept"}}
        ]}
        """)!;

    [Fact]
    public void Ledger_fix_drops_dead_entries_and_unused_problems_and_sets_max_cells_from_a_complete_run()
    {
        var dir = Directory.CreateTempSubdirectory("ledger-fix").FullName;
        var path = LedgerFile(dir);
        var (changes, residue) = LedgerFix.Fix(path, Report(complete: true), "r.json");
        Assert.Empty(residue);
        Assert.Contains("removed \"dead\": its cells match no cell of the run", changes);
        Assert.Contains(changes, c => c.StartsWith("\"kept\": dropped expected problem outputs", StringComparison.Ordinal));
        Assert.Contains("\"kept\": max_cells 5 -> 2", changes);
        var fixedLedger = FailureLedger.Load(path);
        var kept = Assert.Single(fixedLedger.Entries);
        Assert.Equal((2, 1), (kept.MaxCells, kept.Problems.Count));
        // Rewritten as a person reviews it: each block of cells on one line.
        Assert.Contains("""
                  "cells": [
                    {"cases": ["lenet"], "routes": ["pickle"], "producers": ["*"], "consumers": ["*"], "modes": ["mmap"]}
                  ],
            """, File.ReadAllText(path));
    }

    [Fact]
    public void Ledger_fix_refuses_a_filtered_run()
    {
        var dir = Directory.CreateTempSubdirectory("ledger-fix").FullName;
        var path = LedgerFile(dir);
        var before = File.ReadAllText(path);
        var e = Assert.Throws<InvalidOperationException>(() => LedgerFix.Fix(path, Report(complete: false), "r.json"));
        Assert.Contains("needs a complete run", e.Message);
        Assert.Equal(before, File.ReadAllText(path));
    }
}
