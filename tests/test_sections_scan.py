"""sections.parse walks lines by offset and takes each body with one find() (issue 15); the
result must be exactly the line-by-line parser's (kept here verbatim as the oracle): on the
fixture trees' real probe output and on generated streams full of the cases the two could
differ on (headers inside bodies, END/BEGIN look-alikes, missing newlines, CRs, empty bodies,
stray lines, truncation, duplicates, caps)."""

from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from nodecheck import sections
from nodecheck.sections import _HEADER, Section, Sections, _status_from_open_error
from nodecheck.transport import local

HOSTS = Path(__file__).parent / "fixtures" / "hosts"


# --- the oracle: sections.parse as it was before issue 15 (commit 373cd7f), unchanged ---
def line_by_line(output: str) -> Sections:
    """Parse a probe run's stdout (already decoded, errors replaced)."""
    result = Sections()
    lines = output.split("\n")
    headers = [i for i, l in enumerate(lines) if l.startswith("@@NODECHECK-") and _HEADER.match(l)]
    if not headers:
        result.problems.append("no probe header in the output (not a nodecheck probe, or it never started)")
        return result
    if len(headers) > 1:
        # One run prints one header. A second one is output forged around the probe (a forced
        # command, ~/.ssh/rc, a crafted file): trusting either could let the forgery override
        # the real sections, so the run is unreadable (probe-error, unknown), never scored.
        result.problems.append(f"{len(headers)} probe headers in the output (expected one): output not trusted")
        return result
    start = headers[0]
    m = _HEADER.match(lines[start])
    boundary, result.version, result.root = m.group(1), int(m.group(2)), m.group(3)
    result.boundary = boundary
    begin, end, done = boundary + " BEGIN ", boundary + " END ", boundary + " DONE"

    current: tuple[str, str, str] | None = None
    body: list[str] = []
    stray = 0
    for line in lines[start + 1:]:
        if current is None:
            if line.startswith(begin):
                rest = line[len(begin):]
                if rest.endswith(" ok"):
                    # A read section: the name is everything before the status, spaces included,
                    # so a file called "os-release ok x" cannot pose as section "os-release".
                    parts = [rest[:-3], "ok"]
                else:
                    parts = rest.split(" ", 2)
                name = parts[0]
                status = parts[1] if len(parts) > 1 else "OPENERR"
                detail = parts[2] if len(parts) > 2 else ""
                if status == "OPENERR":
                    status = _status_from_open_error(detail)
                current, body = (name, status, detail), []
            elif line == done:
                result.done = True
            elif line.strip():
                # Counted, not listed without end: 20 MB of junk must not become 20 MB of problems.
                stray += 1
                if stray <= 20:
                    result.problems.append(f"unexpected line outside a section: {line[:80]!r}")
            continue
        if line.startswith(end):
            name, status, detail = current
            # `END <name> <rc> <cap>`: the numbers are the last two fields (a name may hold spaces);
            # more than 6 digits is no exit code or cap, and int() of 5000 digits is slow.
            parts = line[len(end):].rsplit(" ", 2)
            rc = 0 if len(parts) < 3 or not parts[-2].lstrip("-").isdigit() else (
                int(parts[-2]) if len(parts[-2]) < 7 else 1)  # absurd: treat the read as failed
            # A cap written `N+` means the probe cut the input of a filter (grep, awk, sed) there:
            # the text is what the head of the file gave, whatever its length.
            cap_s = parts[-1] if len(parts) > 2 else ""
            cut = cap_s.endswith("+")
            cap_s = cap_s.removesuffix("+")
            cap = int(cap_s) if cap_s.isdigit() and len(cap_s) < 7 else 0
            # The probe prints one newline between the content and END: the line split
            # consumed it, so joining the body gives back the content exactly.
            text = "\n".join(body)
            # Decoding replaced bad bytes with U+FFFD (3 bytes), so this never under-counts.
            capped = cut or (bool(cap) and len(text.encode("utf-8", "replace")) >= cap * 4096)
            if name in result.by_name:
                # The probe reads each input once: a second section of the same name is forged
                # or garbled, and neither copy can be trusted.
                result.problems.append(f"section {name[:80]!r} appears twice: not trusted")
                result.by_name[name] = Section(name=name, status="EDUP")
            else:
                result.by_name[name] = Section(
                    name=name, status=status, text=text if status == "ok" else None,
                    detail=detail, rc=rc, capped=capped,
                )
            current = None
        else:
            body.append(line)
    if stray > 20:
        result.problems.append(f"... and {stray - 20} more unexpected lines outside sections")
    if current is not None:
        name, status, detail = current
        result.by_name[name] = Section(
            name=name, status=status, text="\n".join(body) if status == "ok" else None,
            detail=detail, truncated=True,
        )
        result.problems.append(f"output ended inside section {name!r}")
    if not result.done:
        result.problems.append("probe did not finish (no DONE line): facts from missing sections are unknown")
    return result


def norm(s: Sections):
    return (s.root, s.boundary, s.version, s.done, s.problems,
            [(k, v.name, v.status, v.text, v.detail, v.rc, v.truncated, v.capped) for k, v in s.by_name.items()])


@pytest.mark.parametrize("profile", sorted(p.name for p in HOSTS.iterdir() if (p / "root").is_dir()))
def test_fixture_output_parses_as_line_by_line(profile):
    out = local.run(str(HOSTS / profile / "root"), timeout=30).stdout
    assert norm(sections.parse(out)) == norm(line_by_line(out))


B = "@@NODECHECK-abc@@"
PIECES = st.sampled_from([
    f"{B} PROBE 1 root=/", f"{B} PROBE 2 root=/x y", "@@NODECHECK-zz@@ PROBE 1 root=/", "@@NODECHECK-abc@@ PROBE x",
    f"{B} BEGIN /etc/os-release ok", f"{B} BEGIN a b ok", f"{B} BEGIN x ENOENT", f"{B} BEGIN y OPENERR sh: y: Permission denied",
    f"{B} BEGIN z", f"{B} END /etc/os-release 0 16", f"{B} END a b 1 2+", f"{B} END x 0", f"{B} END ", f"{B} END z 5 9999999",
    f"{B} DONE", f"{B} DONE ", f" {B} END x 0 1", f"x{B} BEGIN q ok", "ID=ubuntu", "", " ", "\r", "CONFIG_A=y", "junk",
    "@@NODECHECK-", "é", f"{B} BEGIN dup ok", f"{B} END dup 0 1",
])
SEPS = st.sampled_from(["\n", "\n", "\n", "", "\r\n", " "])


@st.composite
def streams(draw):
    parts = draw(st.lists(st.tuples(PIECES, SEPS), max_size=25))
    return "".join(p + s for p, s in parts)


@settings(max_examples=800, deadline=None)
@example("")
@example(f"{B} PROBE 1 root=/")
@example(f"{B} PROBE 1 root=/\n")
@example(f"{B} PROBE 1 root=/\n{B} BEGIN a ok")
@example(f"{B} PROBE 1 root=/\n{B} BEGIN a ok\n")
@example(f"{B} PROBE 1 root=/\n{B} BEGIN a ok\n{B} END a 0 1")
@example(f"{B} PROBE 1 root=/\n{B} BEGIN a ok\nx\n\n{B} END a 0 1\n{B} DONE\n")
@example(f"{B} PROBE 1 root=/\n{B} BEGIN a ok\n{B} PROBE 1 root=/\n{B} END a 0 1\n")
@example(f"x\n{B} PROBE 1 root=/\n{B} BEGIN a ok\nbody\n{B} END a 0 1\n{B} BEGIN a ok\n\n{B} END a 0 1\n")
@given(streams())
def test_generated_streams_parse_as_line_by_line(text):
    assert norm(sections.parse(text)) == norm(line_by_line(text))


@given(st.text(max_size=300))
def test_arbitrary_text_with_a_header_parses_as_line_by_line(junk):
    text = f"{B} PROBE 1 root=/\n{B} BEGIN a ok\n" + junk + f"\n{B} END a 0 1\n" + junk
    assert norm(sections.parse(text)) == norm(line_by_line(text))


@pytest.mark.parametrize("status,text,exists", [
    ("ok", "x", True), ("ok", "", True), ("ENOENT", None, False), ("ENOENT_DANGLING", None, None),
    ("EACCES", None, None), ("EPERM", None, None), ("ENOTREG", None, None), ("EISDIR", None, None),
    ("MISSING", None, None), ("EDUP", None, None), ("ELOOP", None, None), ("OPENERR", None, None),
])
def test_presence_is_three_valued_and_only_enoent_is_absent(status, text, exists):
    from nodecheck.sections import Section
    assert Section("f", status, text).exists is exists
