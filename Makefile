# TorchSharp <-> PyTorch conformance suite.
#   make report   set up everything, run the whole matrix, write reports/compatibility.{json,md,html}
#   make test     set up everything, then `dotnet test Conformance.sln`
# Set-up is idempotent and cached outside the repository: host packages (apt), the Debian 13
# rootfs ($(ROOTFS)), and NuGet packages (~/.nuget/packages).

ROOTFS ?= /var/cache/torch-conformance/rootfs-trixie
CONFIG ?= Release
export CONFORMANCE_ROOTFS := $(ROOTFS)
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

TIMED := scripts/timed.sh
CLI := harness/Conformance.Cli/bin/$(CONFIG)/net10.0/Conformance.Cli.dll

.PHONY: setup host rootfs restore build mount test report bench runtimes fixtures clean umount

setup: host rootfs build mount

host:
	@$(TIMED) "host packages" scripts/provision-host.sh

rootfs: host
	@$(TIMED) "rootfs" scripts/rootfs.sh provision

restore:
	@$(TIMED) "restore" dotnet restore Conformance.sln --verbosity quiet

build: restore
	@$(TIMED) "build" dotnet build Conformance.sln -c $(CONFIG) --no-restore --nologo --verbosity quiet

mount: rootfs
	@$(TIMED) "mount" scripts/rootfs.sh mount $(CURDIR)

test: setup
	@$(TIMED) "test" dotnet test Conformance.sln -c $(CONFIG) --no-build --nologo

report: setup
	@$(TIMED) "report" dotnet $(CLI) report

# The checkpoint codec against torch.save/torch.load, as throughput and memory ratios.
bench: setup
	@$(TIMED) "bench" dotnet $(CLI) bench

runtimes: setup
	@dotnet $(CLI) runtimes

# Regenerates fixtures/<runtime-id>/ for every runtime present; other versions' folders are kept.
fixtures: setup
	@dotnet $(CLI) fixtures

# Leaves the rootfs and NuGet cache in place (they are shared with CI's clones); drops build output.
clean:
	rm -rf artifacts reports */*/bin */*/obj

umount:
	scripts/rootfs.sh umount
