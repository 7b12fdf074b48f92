#!/usr/bin/env bash
# Node enrollment with the chart's issuer scripts, swtpm, tsi-issuer and tsi.
exec bash "$(dirname "$0")/chart_test.sh" enroll_test.py
