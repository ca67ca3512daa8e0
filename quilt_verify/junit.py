"""JUnit XML from the run's results (redacted messages; behaviour IDs as properties)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def junit_xml(results: list[dict[str, Any]], *, suite_name: str = "quilt-verify") -> bytes:
    counts = {k: sum(1 for r in results if r["outcome"] in v) for k, v in {
        "failures": ("failed",), "errors": ("error",), "skipped": ("blocked", "skipped")}.items()}
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(results)),
                       time=f"{sum(r.get('duration_s', 0) for r in results):.3f}",
                       **{k: str(v) for k, v in counts.items()})
    for r in results:
        module, _, name = r["nodeid"].partition("::")
        case = ET.SubElement(suite, "testcase", classname=module.removesuffix(".py")
                             .replace("/", "."), name=name or r["name"],
                             time=f"{r.get('duration_s', 0):.3f}")
        props = ET.SubElement(case, "properties")
        for key in ("behavior_id", "capability", "evidence"):
            if r.get(key):
                ET.SubElement(props, "property", name=key, value=str(r[key]))
        message = r.get("message", "")
        if r["outcome"] == "failed":
            ET.SubElement(case, "failure", message=message).text = r.get("behavior", "")
        elif r["outcome"] == "error":
            ET.SubElement(case, "error", message=message).text = r.get("behavior", "")
        elif r["outcome"] == "blocked":
            ET.SubElement(case, "skipped", message=f"blocked by {r.get('blocked_by')}")
        elif r["outcome"] == "skipped":
            ET.SubElement(case, "skipped", message=r.get("reason", ""))
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
