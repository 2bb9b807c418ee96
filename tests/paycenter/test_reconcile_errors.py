"""`paycenter reconcile` explains a failure in one line that says what to do (pure: no services)."""
from __future__ import annotations

from clickhouse_driver import errors

from infra.settings import Settings
from paycenter.commands.reconcile import explain

SETTINGS = Settings(clickhouse_host="127.0.0.1", clickhouse_port=19000)
TRACE = ("DB::Exception: Syntax error: failed at position 262139: 'res:x.1:FAILED', 'res:x.1:PENDING'. "
         "Max query size exceeded. Stack trace:\n\n0. /lib/x86_64-linux-gnu/libclickhouse.so.18.16(StackTrace::"
         "StackTrace()+0x16) [0x7fee93d798a6]\n1. /lib/x86_64-linux-gnu/libclickhouse.so.18.16(+0x18f95d2)\n")


def test_a_server_error_keeps_its_sentence_and_drops_the_stack_trace():
    line = explain(errors.ServerException(TRACE, code=62), SETTINGS)
    assert "\n" not in line and "Stack trace" not in line and "libclickhouse" not in line
    assert "code 62" in line and "Max query size exceeded" in line and "127.0.0.1:19000" in line
    assert "run again" in line


def test_an_unreachable_server_says_how_to_start_it():
    line = explain(errors.NetworkError("Connection refused (127.0.0.1:19000)"), SETTINGS)
    assert "\n" not in line and "does not answer" in line and "make run" in line
    assert "PAYCENTER_CLICKHOUSE_PORT" in line


def test_anything_else_is_its_first_line():
    assert explain(RuntimeError("the broker did not acknowledge\nmore"), SETTINGS) == "the broker did not acknowledge"
