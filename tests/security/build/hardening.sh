#!/bin/sh
# hardening.sh BIN_DIR FORTIFY: every tsi program in BIN_DIR must import at
# least one fortified libc function (__*_chk: _FORTIFY_SOURCE took effect),
# be PIE, have full RELRO (BIND_NOW) and a non-executable stack.
# FORTIFY is the build's TSI_FORTIFY (ON/OFF); OFF (Debug or sanitizer
# builds) skips the test with 77.
set -u
dir=${1:?usage: hardening.sh BIN_DIR FORTIFY}
fortify=${2:-ON}
case $fortify in
ON|on|1|TRUE|true) ;;
*) echo "SKIP: build without _FORTIFY_SOURCE (Debug or sanitizers)"; exit 77 ;;
esac
fails=0
n=0
# The shipped programs (tsi, tsi-*): bench helpers land in the same folder
# when TSI_BENCH is on, and a limit program may call nothing fortifiable.
for exe in "$dir"/tsi "$dir"/tsi-*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	head -c 4 "$exe" | grep -q 'ELF' || continue
	n=$((n + 1))
	name=$(basename "$exe")
	before=$fails
	chk=$(nm -D --undefined-only "$exe" | awk '{print $NF}' | sed 's/@.*//' |
	    grep -c '^__.*_chk$')
	if [ "$chk" -eq 0 ]; then
		echo "FAIL $name: imports no __*_chk function (_FORTIFY_SOURCE is off)"
		fails=$((fails + 1))
	fi
	if ! readelf -h "$exe" | grep -q 'Type:.*DYN'; then
		echo "FAIL $name: not PIE"
		fails=$((fails + 1))
	fi
	if ! readelf -d "$exe" | grep -q 'BIND_NOW\|FLAGS.*NOW'; then
		echo "FAIL $name: no BIND_NOW (partial RELRO)"
		fails=$((fails + 1))
	fi
	if ! readelf -l "$exe" | grep -q 'GNU_RELRO'; then
		echo "FAIL $name: no RELRO segment"
		fails=$((fails + 1))
	fi
	if readelf -lW "$exe" | grep 'GNU_STACK' | grep -q 'RWE'; then
		echo "FAIL $name: executable stack"
		fails=$((fails + 1))
	fi
	[ "$fails" -eq "$before" ] && echo "ok $name: $chk fortified imports"
done
if [ "$n" -eq 0 ]; then
	echo "FAIL: no programs in $dir"
	exit 1
fi
[ "$fails" -eq 0 ] || exit 1
echo "all $n programs hardened"
