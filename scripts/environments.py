"""Reads environments.json for the shell scripts (stdlib only: any python3 will do).

    environments.py rootfs            one line per rootfs: id, path, suite, script, apt options, packages (tab-separated)
    environments.py host-packages     the host's package list, space-separated
    environments.py mirror            the Debian mirror this machine's apt sources name (CONFORMANCE_DEBIAN_MIRROR wins)
"""
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    path = os.environ.get("CONFORMANCE_ENVIRONMENTS", os.path.join(HERE, "..", "environments.json"))
    with open(path) as f:
        return json.load(f)["environments"]


def _mirror():
    if os.environ.get("CONFORMANCE_DEBIAN_MIRROR"):
        return os.environ["CONFORMANCE_DEBIAN_MIRROR"]
    # deb822 .sources files first (Debian 12's default), then one-line sources.list entries;
    # the first Debian archive that is not the security archive.
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for uri in re.findall(r"^URIs:\s*(\S+)", open(path).read(), re.M):
            if "/debian" in uri and "security" not in uri:
                return uri
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if os.path.exists(path):
            for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", open(path).read(), re.M):
                if "/debian" in m.group(1) and "security" not in m.group(1):
                    return m.group(1)
    return "http://deb.debian.org/debian"


def main(cmd):
    envs = _load()
    if cmd == "rootfs":
        for e in envs:
            if e["kind"] != "rootfs":
                continue
            path = e["path"] if e["id"] != "trixie" else os.environ.get("CONFORMANCE_ROOTFS", e["path"])
            print("\t".join([e["id"], path, e["suite"], e.get("debootstrap_script") or "-",
                             " ".join(e.get("apt_options") or []) or "-", " ".join(e["packages"])]))
    elif cmd == "host-packages":
        print(" ".join(next(e for e in envs if e["kind"] == "host")["packages"]))
    elif cmd == "mirror":
        print(_mirror())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
