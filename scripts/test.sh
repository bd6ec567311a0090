#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need on a fresh Debian machine (PostgreSQL, Redis,
# nginx, Chromium), builds, runs every test project, and ends with one line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/prereqs.sh"

results="$PWD/.ci-out/test-results"
rm -rf "$results"
mkdir -p "$results"

status=0
dotnet build OrleansChat.sln -c Release -warnaserror --nologo -v q || exit $?
# -m:1: one test project at a time. On a 2-core machine, the chaos cluster's processes, Chromium and two
# in-process test clusters at once starve each other and turn timing into flakes.
dotnet test OrleansChat.sln -c Release --no-build --nologo -m:1 \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" || status=$?

python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    counters = ET.parse(path).getroot().find("t:ResultSummary/t:Counters", ns)
    if counters is None:
        continue
    passed += int(counters.get("passed", 0))
    failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0)) + int(counters.get("aborted", 0))
    skipped += int(counters.get("notExecuted", 0))
print(f"tests: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
