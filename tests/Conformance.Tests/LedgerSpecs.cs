using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>Every rule of the failure ledger, each shown failing once with a planted case.</summary>
[Trait("Category", "unit")]
public sealed class LedgerSpecs
{
    private static readonly Cell Mmap = Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap");
    private static readonly Cell Default = Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.6/default");
    private static readonly DateOnly Today = new(2026, 11, 29);

    /// <summary>An entry of one block, <paramref name="cell"/> written as a cell name (<see cref="CellSelector.Of"/>), or of the blocks in <paramref name="cells"/> (JSON).</summary>
    private static string Entry(string id = "e1", string cell = "lenet/pickle/torchsharp-*->pytorch-*/mmap", string problems = """[{"code":"bytes","message":"conv1.weight: bytes differ"}]""",
        int maxCells = 1, string? expires = null, string? awaits = null, string? cells = null) =>
        $$"""{"id":"{{id}}","cells":{{cells ?? $"[{CellSelector.Of(cell)}]"}},"problems":{{problems}},"reason":"r","link":"https://example.org/1","added":"2026-11-01"{{(expires is null ? "" : $",\"expires\":\"{expires}\"")}}{{(awaits is null ? "" : $",\"awaits\":\"{awaits}\"")}},"max_cells":{{maxCells}}}""";

    private const string Any = """{"cases":["*"],"routes":["*"],"producers":["*"],"consumers":["*"],"modes":["*"]}""";

    private static FailureLedger List(params string[] entries) => FailureLedger.Parse($$"""{"entries":[{{string.Join(",", entries)}}]}""", "test.json");

    private static CellResult Failed(Cell cell, params Problem[] problems) =>
        new(cell, Outcome.Fail, string.Join("; ", problems.Select(p => p.Line))) { Problems = problems };

    private static readonly Problem Bytes = new("bytes", "conv1.weight", "conv1.weight: bytes differ (float32 [6]; sha256 aa… became bb…)");

    [Fact]
    public void A_cell_whose_every_problem_the_entry_names_is_a_known_failure()
    {
        var r = List(Entry()).Apply(Failed(Mmap, Bytes));
        Assert.Equal(Outcome.KnownFailure, r.Outcome);
        Assert.Equal("e1", r.Declared!.Id);
    }

    [Fact]
    public void A_declared_cell_that_also_shows_a_problem_the_entry_does_not_name_fails_naming_it()
    {
        // The regression planted next to a known failure: an output difference in a cell declared for its bytes.
        var outputs = new Problem("outputs", "outputs", "outputs: max abs diff 0.5 (max rel 1) at index 0 exceeds atol=1e-05, rtol=0.0001") { Measure = 0.5 };
        var r = List(Entry()).Apply(Failed(Mmap, Bytes, outputs));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.StartsWith("ledger entry \"e1\" does not name these problems: [outputs] outputs: max abs diff 0.5", r.Message);
    }

    [Fact]
    public void A_message_prefix_matches_the_start_of_a_message_never_its_middle()
    {
        var list = List(Entry(problems: """[{"code":"load_error","message":"bytes differ"}]"""));
        Assert.Equal(Outcome.Fail, list.Apply(Failed(Mmap, new Problem("load_error", "", "RuntimeError: bytes differ"))).Outcome);
        Assert.Equal(Outcome.KnownFailure, list.Apply(Failed(Mmap, new Problem("load_error", "", "bytes differ here"))).Outcome);
    }

    [Fact]
    public void A_message_prefix_is_literal_and_the_code_must_match()
    {
        var list = List(Entry(problems: """[{"code":"bytes","message":"*: bytes differ"}]"""));
        Assert.Equal(Outcome.Fail, list.Apply(Failed(Mmap, Bytes)).Outcome);
        var wrongCode = List(Entry(problems: """[{"code":"outputs","message":"conv1.weight"}]"""));
        Assert.Equal(Outcome.Fail, wrongCode.Apply(Failed(Mmap, Bytes)).Outcome);
    }

    [Fact]
    public void A_subject_when_given_must_match_exactly()
    {
        var list = List(Entry(problems: """[{"code":"unexpected_keys","subject":"scale","message":"Unexpected key(s)"}]"""));
        Assert.Equal(Outcome.KnownFailure, list.Apply(Failed(Mmap, new Problem("unexpected_keys", "scale", "Unexpected key(s) in state_dict: \"scale\""))).Outcome);
        // A second unexpected key is a new finding, although the message still starts the same way.
        Assert.Equal(Outcome.Fail, list.Apply(Failed(Mmap, new Problem("unexpected_keys", "scale,zzz", "Unexpected key(s) in state_dict: \"scale\", \"zzz\""))).Outcome);
    }

    [Fact]
    public void A_declared_difference_may_not_grow_past_its_bound()
    {
        var list = List(Entry(problems: """[{"code":"resume","message":"resumed parameters: max abs diff","max_measure":1e-4}]"""));
        Problem Resume(double d) => new("resume", "resumed parameters", $"resumed parameters: max abs diff {d:g4} (max rel 0.01) at index 3 exceeds atol=1e-05, rtol=0.0001") { Measure = d };
        Assert.Equal(Outcome.KnownFailure, list.Apply(Failed(Mmap, Resume(2.6e-5))).Outcome);
        Assert.Equal(Outcome.Fail, list.Apply(Failed(Mmap, Resume(0.3))).Outcome);
    }

    [Fact]
    public void A_declared_cell_that_now_passes_fails_as_stale_and_says_how_to_fix_the_list()
    {
        var r = List(Entry()).Apply(new CellResult(Mmap, Outcome.Pass, ""));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.StartsWith("stale known failure: lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap now passes", r.Message);
        Assert.Contains("conformance ledger --fix", r.Message);
    }

    [Theory]
    [InlineData(Outcome.NotApplicable)]
    [InlineData(Outcome.Skipped)]
    public void A_declared_cell_that_is_not_applicable_or_skipped_fails(Outcome outcome)
    {
        var r = List(Entry()).Apply(new CellResult(Mmap, outcome, "not_applicable: consumer pytorch-2.6: no mmap"));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.Contains($"came out {outcome.Wire()}", r.Message);
    }

    [Fact]
    public void A_cell_matched_by_two_entries_fails_naming_both()
    {
        var list = List(Entry("a"), Entry("b", cell: "lenet/pickle/*->*/mmap"));
        var r = list.Apply(Failed(Mmap, Bytes));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.Contains("declared by 2 entries (\"a\", \"b\")", r.Message);
    }

    [Fact]
    public void A_selector_item_matches_its_whole_field_never_a_part()
    {
        Assert.Empty(List(Entry(cell: "len/pickle/*->*/mmap")).EntriesFor(Mmap));
        Assert.Empty(List(Entry(cell: "lenet/pickle/torchsharp->*/mmap")).EntriesFor(Mmap));
        Assert.Empty(List(Entry(cell: "lenet/pickle/*->pytorch-2.6/mma")).EntriesFor(Mmap));
        Assert.Empty(List(Entry(cell: "lenet/pickle/*->pytorch-2.?/mmap")).EntriesFor(Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.11/mmap")));
        Assert.Single(List(Entry(cell: "len*/pick?e/torchsharp-*->pytorch-2.?/*")).EntriesFor(Mmap));
    }

    [Fact]
    public void A_cell_matches_when_one_block_matches_each_of_its_five_parts()
    {
        // torchsharp -> pytorch in mmap, pytorch -> torchsharp in default only: a union of two products.
        var list = List(Entry(cells: """
            [{"cases":["lenet","gru"],"routes":["pickle"],"producers":["torchsharp-*"],"consumers":["pytorch-*"],"modes":["mmap"]},
             {"cases":["lenet"],"routes":["pickle"],"producers":["pytorch-*"],"consumers":["torchsharp-*"],"modes":["default"]}]
            """));
        Assert.Single(list.EntriesFor(Mmap));
        Assert.Single(list.EntriesFor(Cell.Parse("gru/pickle/torchsharp-0.107->pytorch-1.13/mmap")));
        Assert.Single(list.EntriesFor(Cell.Parse("lenet/pickle/pytorch-2.6->torchsharp-0.107/default")));
        Assert.Empty(list.EntriesFor(Default));  // torchsharp -> pytorch, but not in mmap
        Assert.Empty(list.EntriesFor(Cell.Parse("gru/pickle/pytorch-2.6->torchsharp-0.107/default")));  // the second block has lenet only
        Assert.Empty(list.EntriesFor(Cell.Parse("lenet/pickle/pytorch-2.6->pytorch-2.6/mmap")));
        // A stale cell's message names the block that declares it.
        Assert.Contains("ledger entry \"e1\" (cells[1]) declares it failing",
            list.Apply(new CellResult(Cell.Parse("lenet/pickle/pytorch-2.6->torchsharp-0.107/default"), Outcome.Pass, "")).Message);
    }

    [Fact]
    public void A_selector_matches_exactly_the_cells_its_brace_glob_matched()
    {
        // The shape the ledger's entries were converted from: nested braces, each top-level alternative a row.
        const string glob = "ckpt_radam/checkpoint/{pytorch-1.13->torchsharp-*/default,pytorch-1.13@golden->torchsharp-*/default,torchsharp-*->pytorch-2.*/{default,weights_only,mmap,map_location_cpu},torchsharp-*->pytorch-1.13/{default,map_location_cpu}}";
        var entry = Assert.Single(List(Entry(cells: """
            [{"cases": ["ckpt_radam"], "routes": ["checkpoint"], "producers": ["pytorch-1.13", "pytorch-1.13@golden"], "consumers": ["torchsharp-*"], "modes": ["default"]},
             {"cases": ["ckpt_radam"], "routes": ["checkpoint"], "producers": ["torchsharp-*"], "consumers": ["pytorch-2.*"], "modes": ["default", "weights_only", "mmap", "map_location_cpu"]},
             {"cases": ["ckpt_radam"], "routes": ["checkpoint"], "producers": ["torchsharp-*"], "consumers": ["pytorch-1.13"], "modes": ["default", "map_location_cpu"]}]
            """)).Entries);
        var regex = Glob.ToRegex(glob);
        string[] runtimes = ["pytorch-1.13", "pytorch-2.6", "pytorch-2.14", "pytorch-1.13@golden", "pytorch-2.11@golden", "torchsharp-0.107", "torchsharp-0.107@golden"];
        var cells = (from c in new[] { "ckpt_radam", "ckpt_adam" }
                     from r in new[] { "checkpoint", "pickle" }
                     from p in runtimes
                     from k in runtimes.Where(x => !x.Contains('@'))
                     from m in new[] { "default", "weights_only", "mmap", "map_location_cpu", "strict_false" }
                     select new Cell(c, r, p, k, m)).ToList();
        var byGlob = cells.Where(c => regex.IsMatch(c.Name)).Select(c => c.Name).ToList();
        Assert.Equal(22, byGlob.Count);
        Assert.Equal(byGlob, cells.Where(entry.Matches).Select(c => c.Name));
    }

    [Theory]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["pytorch-{2.6,2.11}"],"consumers":["*"],"modes":["*"]}]""", "cells[0].producers[0] \"pytorch-{2.6,2.11}\" has a brace or comma")]
    [InlineData("""[{"cases":["lenet/pickle"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["*"]}]""", "cells[0].cases[0] \"lenet/pickle\" has a '/'")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["pytorch-*->torchsharp-*"],"consumers":["*"],"modes":["*"]}]""", "cells[0].producers[0] \"pytorch-*->torchsharp-*\" has '->'")]
    [InlineData("""[{"cases":["**"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["*"]}]""", "cells[0].cases[0] \"**\" has \"**\"")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["default",""]}]""", "cells[0].modes[1] \"\" is empty")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["mmap","mmap"]}]""", "cells[0].modes[1] \"mmap\" is listed twice")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":[3]}]""", "cells[0].modes[0] must be a string")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":[]}]""", "cells[0] needs \"modes\", a non-empty list")]
    [InlineData("""[{"cases":["lenet"],"routes":["pickle"],"producers":["*"],"consumers":["*"]}]""", "cells[0] needs \"modes\", a non-empty list")]
    [InlineData("""[{"cases":["lenet"],"route":["pickle"],"routes":["pickle"],"producers":["*"],"consumers":["*"],"modes":["*"]}]""", "cells[0] has unknown field \"route\" (known: cases, routes, producers, consumers, modes)")]
    [InlineData("""[""" + Any + """, "lenet/pickle/*->*/mmap"]""", "cells[1] must be an object")]
    [InlineData("""[]""", "needs \"cells\", a non-empty list of blocks")]
    [InlineData("""{"cases":["*"]}""", "needs \"cells\", a non-empty list of blocks")]
    public void A_malformed_selector_is_refused_naming_the_entry_block_and_field(string cells, string expected)
    {
        var e = Assert.Throws<FormatException>(() => List(Entry("bad-entry", cells: cells)));
        Assert.StartsWith("test.json: entry \"bad-entry\"", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_unknown_field_is_refused_and_the_old_single_glob_says_what_replaced_it()
    {
        var old = Assert.Throws<FormatException>(() => FailureLedger.Parse("""{"entries":[{"id":"x","cell":"lenet/pickle/*/mmap","problems":[{"code":"bytes","message":"x"}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}]}""", "test.json"));
        Assert.StartsWith("test.json: entry \"x\" has unknown field \"cell\" (known: id, library, cells, problems,", old.Message);
        Assert.Contains("is now \"cells\"", old.Message);
        var typo = Assert.Throws<FormatException>(() => List(Entry().Replace("\"max_cells\"", "\"max_cell\":1,\"max_cells\"")));
        Assert.StartsWith("test.json: entry \"e1\" has unknown field \"max_cell\"", typo.Message);
        var problem = Assert.Throws<FormatException>(() => List(Entry(problems: """[{"code":"bytes","mesage":"x","message":"x"}]""")));
        Assert.StartsWith("test.json: entry \"e1\": problems[0] has unknown field \"mesage\"", problem.Message);
    }

    [Fact]
    public void An_entry_matching_no_cell_is_an_error_in_a_complete_run_only()
    {
        var list = List(Entry(cell: "gru/pickle/*->*/mmap"));
        var ran = new[] { Failed(Mmap, Bytes) };
        Assert.Equal("its cells match no cell of the run: remove the entry", Assert.Single(list.Check(ran, complete: true, Today)).Message);
        Assert.Empty(list.Check(ran, complete: false, Today));
    }

    [Fact]
    public void An_entry_that_awaits_a_fixture_set_is_dormant_until_a_cell_matches_then_checked_like_any()
    {
        var cuda = Cell.Parse("lenet/pickle/pytorch-2.11-cuda@golden->pytorch-2.6/default");
        var awaiting = List(Entry(cell: "lenet/pickle/pytorch-*-cuda@golden->pytorch-2.6/default", awaits: "a CUDA fixture set"));
        Assert.Equal("a CUDA fixture set", awaiting.Entries[0].Awaits);
        // No CUDA set yet: the complete run has no such cell, and that is no error.
        Assert.Empty(awaiting.Check([Failed(Mmap, Bytes)], complete: true, Today));
        // The set arrives: its cells are declared, and every other check holds (here max_cells 1, two cells).
        var load = new Problem("load_error", "pytorch-2.6", "RuntimeError: Attempting to deserialize object on a CUDA device");
        var known = awaiting.Apply(Failed(cuda, load));
        Assert.Equal(Outcome.Fail, known.Outcome);  // the entry names bytes, not this problem: still a failure
        var two = List(Entry(cell: "lenet/pickle/pytorch-*-cuda@golden->pytorch-2.6/*", awaits: "a CUDA fixture set",
            problems: """[{"code":"load_error","message":"RuntimeError: Attempting to deserialize object on a CUDA device"}]"""));
        var ran = new[] { two.Apply(Failed(cuda, load)), two.Apply(Failed(cuda with { Mode = "mmap" }, load)) };
        Assert.All(ran, r => Assert.Equal(Outcome.KnownFailure, r.Outcome));
        Assert.StartsWith("matches 2 cells, more than its max_cells 1", Assert.Single(two.Check(ran, complete: true, Today)).Message);
        // A pass in an awaiting entry's cell is stale like any other.
        Assert.StartsWith("stale known failure", two.Apply(new CellResult(cuda, Outcome.Pass, "ok")).Message);
    }

    [Fact]
    public void An_expired_entry_is_an_error()
    {
        var list = List(Entry(expires: "2026-11-28"));
        var ran = new[] { list.Apply(Failed(Mmap, Bytes)) };
        Assert.StartsWith("expired on 2026-11-28", Assert.Single(list.Check(ran, complete: true, Today)).Message);
        Assert.Empty(List(Entry(expires: "2026-11-29")).Check(ran, complete: true, Today));
    }

    [Fact]
    public void An_entry_matching_more_cells_than_its_max_cells_is_an_error()
    {
        var list = List(Entry(cell: "lenet/pickle/torchsharp-*->pytorch-*/*", maxCells: 1));
        var ran = new[] { list.Apply(Failed(Mmap, Bytes)), list.Apply(Failed(Default, Bytes)) };
        Assert.StartsWith("matches 2 cells, more than its max_cells 1", Assert.Single(list.Check(ran, complete: true, Today)).Message);
    }

    [Fact]
    public void An_expected_problem_that_no_declared_cell_shows_is_an_error()
    {
        var list = List(Entry(problems: """[{"code":"bytes","message":"conv1.weight"},{"code":"outputs","message":"outputs:"}]"""));
        var ran = new[] { list.Apply(Failed(Mmap, Bytes)) };
        Assert.Contains("expects outputs: \"outputs:…\", which no cell it declares shows", Assert.Single(list.Check(ran, complete: true, Today)).Message);
        // A filtered run shows only some of an entry's cells: not evidence either way.
        Assert.Empty(list.Check(ran, complete: false, Today));
    }

    [Theory]
    [InlineData("""{"entries":[{"cells":[""" + Any + """],"problems":[{"code":"bytes","message":""}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}]}""", "test.json: entries[0] needs a non-empty \"id\"")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[{"code":"bytes","message":""}],"reason":"r","link":"http://x","added":"2026-01-01","max_cells":1}]}""", "test.json: entry \"x\": \"link\" must be an https:// address")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}]}""", "test.json: entry \"x\" needs at least one expected problem in \"problems\"")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[{"code":"byte","message":""}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}]}""", "test.json: entry \"x\": problems[0] has unknown code \"byte\"")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[{"code":"bytes","message":"x"}],"reason":"r","link":"https://x","added":"2026-01-01"}]}""", "test.json: entry \"x\" needs \"max_cells\"")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[{"code":"bytes","message":"x"}],"reason":"r","link":"https://x","added":"1 Jan","max_cells":1}]}""", "test.json: entry \"x\": \"added\" must be a date")]
    [InlineData("""{"entries":[{"id":"x","cells":[""" + Any + """],"problems":[{"code":"bytes","message":""}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}]}""", "test.json: entry \"x\": problems[0] needs \"message\", the start of the problem's message (empty only with a \"subject\")")]
    public void An_entry_without_its_evidence_is_refused_naming_the_file_and_entry(string json, string expected) =>
        Assert.StartsWith(expected, Assert.Throws<FormatException>(() => FailureLedger.Parse(json, "test.json")).Message);

    [Fact]
    public void Two_entries_with_one_id_are_refused() =>
        Assert.Contains("the id is used twice", Assert.Throws<FormatException>(() => List(Entry("a"), Entry("a", cell: "gru/*/*->*/*"))).Message);

    [Fact]
    public void The_repositorys_ledger_parses_and_every_entry_has_its_evidence()
    {
        var list = FailureLedger.Load(Conformance.Orchestrator.Runtimes.RepoLayout.Find().KnownFailuresFile);
        Assert.NotEmpty(list.Entries);
        Assert.All(list.Entries, e =>
        {
            Assert.StartsWith("https://", e.Link);
            Assert.True(e.Reason.Length > 40, $"{e.Id}: the reason says too little");
            Assert.NotEmpty(e.Cells);
        });
    }

    [Fact]
    public void The_repositorys_ledger_is_written_as_ledger_fix_writes_it_one_line_per_block()
    {
        var path = Conformance.Orchestrator.Runtimes.RepoLayout.Find().KnownFailuresFile;
        var text = File.ReadAllText(path);
        Assert.Equal(text, LedgerWriter.Write(System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject(), path));
    }
}
