"""Exit codes: one table, used by every command and printed in --help and the README."""

PASS = 0  # every node passed
WARN = 1  # the worst node verdict is warn
FAIL = 2  # the worst node verdict is fail
UNKNOWN = 3  # the worst node verdict is unknown, or the scan itself could not run
# `nodecheck k8s nodes|cluster|scan`: the Kubernetes API could not be asked (unreachable, TLS/wrong CA,
# expired or invalid credentials, RBAC forbidden). Distinct from 3, which a prescan gives routinely
# (most checks need the node probe), so CI can tell "no answer" from "answer: unknown".
API_ERROR = 4
USAGE = 64  # bad command line or unreadable input file (sysexits EX_USAGE)
# An output file (--output-file, --junit, --nfd-features-file) could not be written: disk full,
# read-only, permission. The report on stdout and any lines already written are kept (EX_IOERR).
OUTPUT_ERROR = 74
INTERRUPTED = 130  # Ctrl-C

BY_VERDICT = {"pass": PASS, "warn": WARN, "fail": FAIL, "unknown": UNKNOWN}

HELP = (
    "Exit codes: 0 every node passed; 1 worst verdict warn; 2 worst verdict fail; "
    "3 worst verdict unknown or the scan could not run; 4 the Kubernetes API could not be asked (k8s nodes/cluster/scan); "
    "64 usage error; 74 an output file could not be written; 130 interrupted."
)
