# TorchSharp <-> PyTorch conformance suite.
#   make report   set up everything, run the whole matrix, write reports/compatibility.{json,md,html}
#   make test     set up everything, then `dotnet test Conformance.sln`
#   make worker TORCHSHARP_VERSION=0.108.0 LIBTORCH_VERSION=2.11.0 [TORCHSHARP_FEED=DIR]
#                 builds one more TorchSharp worker, into its own folder: one more runtime in the matrix
# Set-up is idempotent and cached outside the repository: host packages (apt), the Debian 13
# rootfs ($(ROOTFS)), and NuGet packages (~/.nuget/packages).

ROOTFS ?= /var/cache/torch-conformance/rootfs-trixie
CONFIG ?= Release
export CONFORMANCE_ROOTFS := $(ROOTFS)
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

TIMED := scripts/timed.sh

# The TorchSharp worker's packages; empty means the defaults in Directory.Build.props. Given to
# `make report` or `make test`, they build that worker too, beside the default one.
TORCHSHARP_VERSION ?=
LIBTORCH_VERSION ?=
TORCHVISION_VERSION ?=
PYBRIDGE_VERSION ?=
# A folder of .nupkg files for a TorchSharp that is not published (scripts/repack-torchsharp.sh).
TORCHSHARP_FEED ?=
TS_PROPS := $(strip $(if $(TORCHSHARP_VERSION),-p:TorchSharpVersion=$(TORCHSHARP_VERSION)) \
  $(if $(LIBTORCH_VERSION),-p:LibTorchVersion=$(LIBTORCH_VERSION)) \
  $(if $(TORCHVISION_VERSION),-p:TorchVisionVersion=$(TORCHVISION_VERSION)) \
  $(if $(PYBRIDGE_VERSION),-p:PyBridgeVersion=$(PYBRIDGE_VERSION)) \
  $(if $(TORCHSHARP_FEED),-p:TorchSharpFeed=$(abspath $(TORCHSHARP_FEED))))
TS_WORKER := harness/Conformance.Workers.TorchSharp/Conformance.Workers.TorchSharp.csproj
CLI := harness/Conformance.Cli/bin/$(CONFIG)/net10.0/conformance.dll

.PHONY: setup host rootfs restore build worker mount lint test unit report determinism baseline bench runtimes fixtures clean umount pack fuzz fuzz-python gpu-check install

# The rootfs (network and dpkg) and the .NET restore and build are independent: they run side by side.
setup: host
	@$(MAKE) --no-print-directory -j2 rootfs build
	@$(MAKE) --no-print-directory mount

host:
	@$(TIMED) "host packages" scripts/provision-host.sh

rootfs: host
	@$(TIMED) "rootfs" scripts/rootfs.sh provision

restore:
	@$(TIMED) "restore" dotnet restore Conformance.sln --verbosity quiet

build: restore
	@$(TIMED) "build" dotnet build Conformance.sln -c $(CONFIG) --no-restore --nologo --verbosity quiet
	$(if $(TS_PROPS),@$(MAKE) --no-print-directory worker)

# Just the TorchSharp worker, for the versions given: harness/Conformance.Workers.TorchSharp/
# bin/$(CONFIG)/torchsharp-<version>/, with its own obj/torchsharp-<version>/ restore.
worker:
	@$(TIMED) "restore worker" dotnet restore $(TS_WORKER) --verbosity quiet $(TS_PROPS)
	@$(TIMED) "build worker" dotnet build $(TS_WORKER) -c $(CONFIG) --no-restore --nologo --verbosity quiet $(TS_PROPS)

mount: rootfs
	@$(TIMED) "mount" scripts/rootfs.sh mount $(CURDIR)

# Then scripts/failed-tests.py names the slowest tests and, on failure, the failed ones with their
# messages, last, where a log that keeps only its tail still shows them.
TRX := $(CURDIR)/artifacts/tests/results.trx
test: setup
	@$(MAKE) --no-print-directory lint
	@rm -f $(TRX)
	@$(TIMED) "test" dotnet test Conformance.sln -c $(CONFIG) --no-build --nologo \
	  --logger "trx;LogFileName=$(TRX)"; rc=$$?; $$(command -v /usr/bin/python3 || echo python3) scripts/failed-tests.py $(TRX); exit $$rc

# The Python side's linters, ruff and mypy (Debian forky's packages, in its rootfs; settings in
# python/pyproject.toml), over python/torchconformance and python/tests. make test runs it first.
LINT_ROOTFS ?= /var/cache/torch-conformance/rootfs-forky
lint: mount
	@$(TIMED) "lint" chroot $(LINT_ROOTFS) sh -c 'cd "$(CURDIR)/python" && ruff check . && python3 -m mypy'

# The quick loop: the specs that need no runtime (Category=unit: judge, ledger, reports, codec in-process),
# without the rootfs or the matrix. Every spec class has a Category (TestCategorySpecs).
unit: build
	@$(TIMED) "unit" dotnet test tests/Conformance.Tests -c $(CONFIG) --no-build --nologo --filter "Category=unit"

# Then the same report with the GPU rows: the newest real GPU run under gpu-runs/ (an archive, judged by
# judge-gpu, or the retired judge's report, re-judged by the ledger), merged into reports/with-gpu/,
# whose "Device differences" section shows where CUDA and the CPU disagree.
GPU_RUN ?= $(lastword $(sort $(wildcard gpu-runs/*/gpu-check-*.tar.gz gpu-runs/*/gpu-report.run1.json)))
report: setup
	@$(TIMED) "report" dotnet $(CLI) report
	$(if $(GPU_RUN),@$(TIMED) "with GPU rows" dotnet $(CLI) merge reports/compatibility.json $(GPU_RUN) --out reports/with-gpu)

# The determinism gate, after `make test`: the matrix on one core with one thread, compared with the
# tests' run; any changed outcome, new or vanished cell fails (reports/determinism.md says which).
determinism: setup
	@test -f artifacts/tests/matrix-report/compatibility.json || { echo "determinism: run make test first" >&2; exit 2; }
	@mkdir -p reports
	@$(TIMED) "one-core run" taskset -c 0 dotnet $(CLI) run --threads 1 --out reports/one-core > reports/one-core.log 2>&1 || { tail -n 30 reports/one-core.log; exit 1; }
	@grep "^CONFORMANCE SUITE" reports/one-core.log
	@dotnet $(CLI) compare artifacts/tests/matrix-report/compatibility.json reports/one-core/compatibility.json \
	  --fail-on-change --markdown reports/determinism.md > reports/determinism.log; rc=$$?; sed -n '3p' reports/determinism.log; exit $$rc

# The committed baseline: reports/baseline.json (every cell's outcome, problems, ledger id and largest
# difference, under 2 MB) from a full run of HEAD, and the README's overview table from it. Refuses on a
# dirty tree. `compare` and the CI workflow compare new runs with it.
baseline:
	@MAKE="$(MAKE)" $(TIMED) "baseline" scripts/baseline.sh

# The checkpoint codec as a NuGet package: artifacts/packages/TorchCheckpoints.<version>.nupkg. Builds the
# library alone (70 KB), not the solution: no worker, no libtorch copy.
pack:
	@$(TIMED) "pack" dotnet pack harness/TorchCheckpoints -c $(CONFIG) --nologo --verbosity quiet -o artifacts/packages

# Both readers fuzzed for a time (FUZZ_SECONDS each, default 300; make test runs a fixed 1,500 and 3,000 inputs): the C#
# codec (inputs that crash, hang or exceed the memory cap are kept under artifacts/tests/codec/fuzz/)
# and python/torchconformance/formats/tsnative.py (fuzz-python).
FUZZ_SECONDS ?= 300
FUZZ_SEED ?= 1
fuzz: build fuzz-python
	@CONFORMANCE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(TIMED) "fuzz" dotnet test tests/Conformance.Tests -c $(CONFIG) --no-build --nologo \
	  --filter "FullyQualifiedName~Fuzzing" --logger "console;verbosity=detailed"

# The checkpoint codec against torch.save/torch.load like for like, as time ratios (goal 1.5x) beside the
# machine's limits, and peak memory / file. BENCH_SIZES=standard,large (default) or TENSORSxELEMENTS; BENCH_REPEATS=N.
bench: setup
	@$(TIMED) "bench" dotnet $(CLI) bench

# The reader of TorchSharp's native format (python/torchconformance/formats/tsnative.py) under mutation, with
# the host's torch: FUZZ_SECONDS, FUZZ_SEED; writes reports/fuzz-tsnative.json.
fuzz-python: host
	@mkdir -p reports
	PYTHONPATH=python /usr/bin/python3 -m tests.fuzz_tsnative --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) \
	  --json reports/fuzz-tsnative.json --keep reports/fuzz-tsnative-failures

# `conformance` on the PATH: a launcher in $(PREFIX)/bin that runs this checkout's CLI with CONFORMANCE_REPO set,
# so `conformance check FILE` works from any folder (README, "Will my model load in .NET?", says why a launcher).
PREFIX ?= /usr/local
install: setup
	@scripts/install-launcher.sh $(CURDIR) $(CONFIG) $(DESTDIR)$(PREFIX)/bin/conformance

runtimes: setup
	@dotnet $(CLI) runtimes

# Regenerates fixtures/<runtime-id>/ for every runtime present; other versions' folders are kept.
# RUNTIME=pytorch-2.14 writes only that runtime's set.
fixtures: setup
	@dotnet $(CLI) fixtures $(if $(RUNTIME),--runtime $(RUNTIME))

# Leaves the rootfs and NuGet cache in place (they are shared with CI's clones); drops build output.
clean:
	rm -rf artifacts reports */*/bin */*/obj

umount:
	scripts/rootfs.sh umount

# The GPU leg on a machine with CUDA torch and no .NET (README, "The GPU leg"): scripts/gpu-check.sh,
# which needs no make there. It produces fixtures/pytorch-<X.Y>-cuda/, loads every committed fixture
# set onto the GPU, keeps each cell's raw reply (it judges nothing), and packs set and replies into
# $(OUT)/gpu-check-<id>.tar.gz (at most 16 MiB); `conformance judge-gpu ARCHIVE` judges it on a CPU
# machine with the matrix's judge and ledger. DEVICE=cpu simulates the GPU (ids say
# cuda-cpu-simulated); GPU_PYTHON picks the interpreter; GPU_CASES=a,b for a subset; GPU_BUDGET (480 s)
# bounds the run inside a 10-minute command.
OUT ?= reports/gpu-check
gpu-check:
	@DEVICE=$(or $(DEVICE),cuda) GPU_BUDGET=$(or $(GPU_BUDGET),480) GPU_CASES=$(GPU_CASES) GPU_PYTHON="$(GPU_PYTHON)" scripts/gpu-check.sh $(OUT)
