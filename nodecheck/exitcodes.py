"""Exit codes: one table, used by every command and printed in --help and the README."""

PASS = 0  # every node passed
WARN = 1  # the worst node verdict is warn
FAIL = 2  # the worst node verdict is fail
UNKNOWN = 3  # the worst node verdict is unknown, or the scan itself could not run
USAGE = 64  # bad command line or unreadable input file (sysexits EX_USAGE)
INTERRUPTED = 130  # Ctrl-C

BY_VERDICT = {"pass": PASS, "warn": WARN, "fail": FAIL, "unknown": UNKNOWN}

HELP = (
    "Exit codes: 0 every node passed; 1 worst verdict warn; 2 worst verdict fail; "
    "3 worst verdict unknown or the scan could not run; 64 usage error; 130 interrupted."
)
