using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;

namespace Conformance.Tests;

/// <summary>
/// <c>make bench</c>'s tables, rendered from a recorded result (no timing is measured or asserted):
/// each like-for-like pair against each PyTorch with both times, the ratio, the goal and the limit
/// that bounds it; peak memory against the file; which loads check CRCs; and the sizes BENCH_SIZES picks.
/// </summary>
[Trait("Category", "unit")]
public sealed class BenchReportSpecs
{
    private static JsonObject Op(double seconds, long peak = 0) => new() { ["seconds"] = seconds, ["peak_bytes"] = peak };

    /// <summary>A result as the workers return it, with round numbers: 420,000,000 bytes.</summary>
    private static JsonObject Recorded() => new()
    {
        ["sizes"] = new JsonObject
        {
            ["standard"] = new JsonObject
            {
                ["tensors"] = 100, ["elements"] = 1048576L, ["repeats"] = 3,
                ["results"] = new JsonObject
                {
                    ["pytorch-1.13"] = new JsonObject
                    {
                        ["runtime"] = "torch 1.13.0", ["file_bytes"] = 420_000_000L,
                        ["save"] = Op(0.5), ["save_durable"] = Op(2.4), ["load"] = Op(0.6, 840_000_000L),
                        ["crc_checked"] = new JsonObject { ["load"] = false },
                    },
                    ["pytorch-2.6"] = new JsonObject
                    {
                        ["runtime"] = "torch 2.6.0", ["file_bytes"] = 420_000_000L,
                        ["save"] = Op(0.4), ["save_durable"] = Op(2.2), ["load"] = Op(0.3, 420_000_000L), ["load_mmap_touch"] = Op(0.2, 420_000_000L),
                        ["crc_checked"] = new JsonObject { ["load"] = false, ["load_mmap"] = false },
                    },
                    ["torchsharp-0.107"] = new JsonObject
                    {
                        ["runtime"] = "TorchSharp 0.107.0", ["file_bytes"] = 420_000_000L,
                        ["save"] = Op(0.2), ["save_durable"] = Op(2.0), ["load"] = Op(0.25, 424_200_000L),
                        ["load_mmap_touch"] = Op(0.1, 420_000_000L), ["load_mmap_nocrc_touch"] = Op(0.08),
                        ["crc_checked"] = new JsonObject { ["load"] = true, ["load_mmap"] = true },
                        ["limits"] = new JsonObject
                        {
                            ["read_page_cache"] = Op(0.2), ["read_page_cache_all_cores"] = Op(0.09), ["mmap_read_all_cores"] = Op(0.08), ["read_fresh_memory_all_cores"] = Op(0.1),
                            ["write_page_cache"] = Op(0.15), ["write_fsync"] = Op(1.9), ["memcpy_fresh_memory"] = Op(0.12), ["cores"] = 2,
                        },
                    },
                },
            },
        },
    };

    [Fact]
    public void Each_pair_shows_both_times_the_ratio_the_goal_and_the_limit()
    {
        var md = BenchReport.Markdown(Recorded());
        Assert.Contains("| step | codec | PyTorch | PyTorch's time | PyTorch / codec | goal ≥ 1.50x | limit (same bytes) | limit's time | the limit allows |", md);
        // Durable save: bound by the disk; PyTorch's 2.2 s over the disk's 1.9 s leaves 1.16x at best.
        Assert.Contains("| save, durable: Save (fsyncs the file) / torch.save + os.fsync of the file | 2.00 s | pytorch-2.6 | 2.20 s | 1.10x | not met: out of reach, the limit allows 1.16x | write + fsync of as many bytes (the disk's write bandwidth) | 1.90 s | 1.16x |", md);
        Assert.Contains("| save, not durable: Save(durable: false) / torch.save | 200.0 ms | pytorch-2.6 | 400.0 ms | 2.00x | met | write to the page cache | 150.0 ms | 2.67x |", md);
        Assert.Contains("| load: Load (CRC checked) / torch.load(weights_only=True) | 250.0 ms | pytorch-2.6 | 300.0 ms | 1.20x | not met | read into fresh memory, all cores | 100.0 ms | 3.00x |", md);
        Assert.Contains("| mmap + touch: LoadMapped(verifyCrc: true) / torch.load(mmap=True), then a sum of every tensor | 100.0 ms | pytorch-2.6 | 200.0 ms | 2.00x | met | map the file and read every byte, all cores | 80.0 ms | 2.50x |", md);
        // A PyTorch without torch.load(mmap=True) (before 2.1) gets a row that says so.
        Assert.Contains("| 100.0 ms | pytorch-1.13 | – | – | – (pytorch-1.13 has no such step) |", md);
        Assert.Contains("| load: Load (CRC checked) / torch.load(weights_only=True) | 250.0 ms | pytorch-1.13 | 600.0 ms | 2.40x | met |", md);
        // A limit measured slower than the step it bounds is noise, not a floor: no "out of reach" then.
        var noisy = Recorded();
        noisy["sizes"]!["standard"]!["results"]!["torchsharp-0.107"]!["limits"]!["write_fsync"] = Op(3.0);
        Assert.Contains("| 2.00 s | pytorch-2.6 | 2.20 s | 1.10x | not met (the limit measured slower than the step itself: a noisy run) |", BenchReport.Markdown(noisy));
    }

    [Fact]
    public void Peak_memory_of_a_load_is_read_against_the_file_and_the_CRC_checks_are_named()
    {
        var md = BenchReport.Markdown(Recorded());
        Assert.Contains("| TorchSharp codec | 1.01 | met | 1.00 |", md);
        Assert.Contains("| pytorch-1.13 | 2.00 | not met | – |", md);
        Assert.Contains("codec: load yes, mmap yes; pytorch-1.13: load no, mmap –; pytorch-2.6: load no, mmap no.", md);
        // The throughput table keeps its shape, with the durable save beside the plain one.
        Assert.Contains("| TorchSharp codec (TorchCheckpoints) | 2.10 | 0.21 | 1.68 | 4.20 | 0.00 | 1.01 |", md);
        Assert.Contains("| write and fsync (the disk) | 0.22 | save, durable | 0.95 |", md);
    }

    [Fact]
    public void BENCH_SIZES_and_BENCH_REPEATS_pick_what_is_measured()
    {
        Assert.Equal(["standard", "large"], BenchReport.Sizes(null).Select(s => s.Name));
        Assert.Equal(["standard"], BenchReport.Sizes("", large: false).Select(s => s.Name));
        var small = Assert.Single(BenchReport.Sizes("8x262144", "2"));
        Assert.Equal(new BenchReport.Size("8x262144", 8, 262144, 2, PyBridge: false), small);
        Assert.Equal([3, 1], BenchReport.Sizes("standard, large").Select(s => s.Repeats));
        Assert.Throws<ArgumentException>(() => BenchReport.Sizes("huge"));
        Assert.Throws<ArgumentException>(() => BenchReport.Sizes("standard", "0"));
    }
}
