from quilt_verify.errors import QuiltAPIError, QuiltTransportError
from quilt_verify.ledger import Ledger, gone_on_404


def not_found():
    raise QuiltAPIError(method="GET", path="/x", status=404, request_id="r")


def test_unwind_follows_dependency_order_then_newest_first():
    deleted = []
    ledger = Ledger()
    for kind, ident in [("cluster", "c1"), ("api_key", "k1"), ("workload", "w1"),
                        ("container", "x1"), ("volume", "v1"), ("node", "n1"),
                        ("container", "x2")]:
        ledger.add(kind, ident, delete=lambda i=ident: deleted.append(i))
    assert ledger.unwind() == []
    assert deleted == ["x2", "x1", "w1", "n1", "c1", "v1", "k1"]
    assert len(ledger) == 0


def test_deletion_is_confirmed_and_failures_are_listed_with_ids():
    ledger = Ledger()
    ledger.add("container", "gone", delete=lambda: None, exists=gone_on_404(not_found))
    ledger.add("container", "stuck", name="qv-r-ctr", delete=lambda: None,
               exists=lambda: True)

    def refuse():
        raise QuiltAPIError(method="DELETE", path="/api/volumes/v", status=409, request_id="r9")

    ledger.add("volume", "busy", delete=refuse)
    ledger.add("cluster", "down", delete=lambda: (_ for _ in ()).throw(
        QuiltTransportError(method="DELETE", path="/c", request_id="r", reason="refused")))
    ledger.add("api_key", "already", delete=not_found)  # 404 on delete counts as deleted
    left = {e["id"]: e for e in ledger.unwind()}
    assert set(left) == {"stuck", "busy", "down"}
    assert left["stuck"] == {"kind": "container", "id": "stuck", "name": "qv-r-ctr",
                             "problem": "still present after delete"}
    assert "409" in left["busy"]["problem"] and "r9" in left["busy"]["problem"]
    assert "refused" in left["down"]["problem"]


def test_discard_forgets_what_the_run_deleted_itself():
    ledger = Ledger()
    ledger.add("cluster", "c", delete=lambda: (_ for _ in ()).throw(AssertionError("no")))
    ledger.discard("cluster", "c")
    assert ledger.unwind() == []
