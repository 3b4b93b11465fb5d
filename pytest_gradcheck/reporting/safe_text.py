"""User text made safe for where the reports put it: a shell command line, a terminal, XML.

Layer: plugin side, report data (the lowest reporting layer).  Standard
library only.

Node ids, check labels and leaf names come from user code and may hold
anything: a quote that ends a shell word (a pasted rerun command then runs
what follows it), an escape sequence that retitles or clears the terminal, a
character XML 1.0 forbids (an ill-formed JUnit file).  Every place that puts
such text into one of those goes through this module.
"""

from __future__ import annotations

import re
import shlex


def rerun_command(nodeid: str) -> str:
    """The shell command that reruns one test: ``pytest`` and the node id as one quoted word."""
    return "pytest " + shlex.quote(str(nodeid))


#: C0 and C1 control characters and DEL (category Cc), and the bidirectional overrides and isolates
#: that reorder what a terminal shows ("Trojan source")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text, multiline: bool = False) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\n``
    as ``\\x0a``): one line, shown as it is, never acted on by the terminal.  With
    ``multiline``, newlines are kept (for a message whose lines are its own)."""
    if multiline:
        return "\n".join(_CONTROL.sub(_escape, line) for line in str(text).split("\n"))
    return _CONTROL.sub(_escape, str(text))


#: what XML 1.0 does not allow at all (escaping as &#...; does not help): the C0 controls
#: but tab, newline and carriage return; lone surrogates; U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text) -> str:
    """``text`` fit for an XML attribute: control characters escaped as by :func:`terminal_text`,
    and anything else XML 1.0 forbids written as ``\\uXXXX``."""
    return _NOT_XML.sub(_escape, terminal_text(text))
