#!/usr/bin/env bash
# Tunnel and exfiltration detection, measured (docs/detection.md): generates the labelled traffic
# set (seeded), replays it with any captures under tests/Portcullis.Server.Tests/Detection/Data/*.jsonl
# (e.g. iodine-*.jsonl from bench/detect/capture-iodine.sh) into the detector, and prints per class
# the domains alerted (recall for tunnels and exfiltration, false positives per 10,000 benign
# domains), precision, client alerts, and the detector's cost per query; with and without the
# built-in allow-list. The same run is the test DetectionEvaluationTests, which asserts the aims.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build tests/Portcullis.Server.Tests -c Release -v quiet -nologo >/dev/null
dotnet test tests/Portcullis.Server.Tests -c Release --no-build \
    --filter "FullyQualifiedName~Detection.DetectionEvaluationTests" \
    --logger "console;verbosity=detailed" 2>&1 \
  | sed -n '/Standard Output Messages:/,/^Test Run/p' | sed -e '1d' -e 's/^ //' -e '/^Test Run/d' -e '/^$/d'
